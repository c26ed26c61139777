package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
	"gopkg.in/yaml.v3"
)

const basePipeline = `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 20000}
filters:
  - {name: f, class: MockFilter, mode: modify, suffix: "%s", match: gen}
outputs:
  - {name: out, class: Rec, match: f}
`

type harness struct {
	t    *testing.T
	reg  *engine.Registry
	rec  *mock.Recorder
	sup  *engine.Supervisor
	srv  *admin.Server
	base string
	tok  string
	path string
	stop func() error
}

type hopts struct {
	pipeline string                     // default basePipeline with suffix "a"
	section  string                     // admin: section body (YAML), default "{}"
	file     bool                       // write the pipeline to a file (ConfigPath)
	register func(reg *engine.Registry) // extra plugin classes
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func newRegistry(t testing.TB, rec *mock.Recorder) *engine.Registry {
	reg := engine.NewRegistry()
	mock.Register(reg)
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	return reg
}

func start(t *testing.T, o hopts) *harness {
	t.Helper()
	if o.pipeline == "" {
		o.pipeline = fmt.Sprintf(basePipeline, "a")
	}
	if o.section == "" {
		o.section = "{}"
	}
	h := &harness{t: t, rec: mock.NewRecorder()}
	h.reg = newRegistry(t, h.rec)
	if o.register != nil {
		o.register(h.reg)
	}
	full := o.pipeline + "admin: " + o.section + "\n"
	if o.file {
		h.path = filepath.Join(t.TempDir(), "dbus.yaml")
		if err := os.WriteFile(h.path, []byte(full), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := engine.Parse("test.yaml", []byte(full), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	store := engine.NewMemoryStore()
	h.sup, err = engine.NewSupervisor(cfg, engine.Options{Registry: h.reg, Store: store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.sup.Run(ctx) }()
	h.srv, err = admin.Start(ctx, admin.Options{Supervisor: h.sup, Registry: h.reg, ConfigPath: h.path, Logger: testLogger(t),
		Version: "v-test", Section: cfg.Sections["admin"], ListenOverride: "127.0.0.1:0"})
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	h.base = "http://" + h.srv.Addr()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			h.srv.Close()
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})
	return h
}

// do sends a request and returns the status and body.
func (h *harness) do(method, path, body string, hdr ...string) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.tok != "" {
		req.Header.Set("Authorization", "Bearer "+h.tok)
	}
	// What dbc sends; tests of the cross-origin rules override or delete them.
	req.Header.Set(admin.RequestHeader, "1")
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON GETs path, expects 200 and decodes into v.
func (h *harness) getJSON(path string, v any) {
	h.t.Helper()
	code, b := h.do("GET", path, "")
	if code != 200 {
		h.t.Fatalf("GET %s = %d: %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		h.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// wantError checks a 4xx answer with a JSON {"error"} body containing substr.
func (h *harness) wantError(code int, body []byte, wantCode int, substr string) {
	h.t.Helper()
	if code != wantCode {
		h.t.Fatalf("status %d, want %d: %s", code, wantCode, body)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		h.t.Fatalf("error body is not {\"error\": ...}: %s", body)
	}
	if !strings.Contains(e.Error, substr) {
		h.t.Fatalf("error %q does not mention %q", e.Error, substr)
	}
}

func (h *harness) node(name string) engine.NodeSnapshot {
	h.t.Helper()
	for _, s := range h.sup.Stats() {
		if s.Name == name {
			return s
		}
	}
	h.t.Fatalf("no node %s", name)
	return engine.NodeSnapshot{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, cond, "waiting for %s", what)
}

// settled waits until get has returned the same value for 50ms (a paused
// pipeline draining what it had in hand) and returns that value.
func settled(t *testing.T, what string, get func() uint64) uint64 {
	t.Helper()
	var last uint64
	var since time.Time
	waitFor(t, what, func() bool {
		if v := get(); v != last || since.IsZero() {
			last, since = v, time.Now()
			return false
		}
		return time.Since(since) >= 50*time.Millisecond
	})
	return last
}

func TestAPIReadEndpoints(t *testing.T) {
	h := start(t, hopts{})
	waitFor(t, "packets", func() bool { return h.node("out").Out > 100 })

	var st admin.Status
	h.getJSON("/api/v1/status", &st)
	if st.Version != "v-test" || st.Generation != 1 || st.Plugins != 3 || st.UptimeSeconds <= 0 || st.PID == 0 {
		t.Fatalf("status %+v", st)
	}

	var pl struct{ Plugins []admin.SpecView }
	h.getJSON("/api/v1/plugins", &pl)
	classes := map[string]admin.SpecView{}
	for _, p := range pl.Plugins {
		classes[p.Class] = p
	}
	mi, ok := classes["MockInput"]
	if !ok || mi.Kind != "input" || len(mi.Fields) == 0 || len(mi.Instances) != 1 || mi.Instances[0] != "gen" {
		t.Fatalf("MockInput spec %+v", mi)
	}
	h.getJSON("/api/v1/plugins?kind=output", &pl)
	for _, p := range pl.Plugins {
		if p.Kind != "output" {
			t.Fatalf("kind filter let %s through", p.Class)
		}
	}
	var one admin.SpecView
	h.getJSON("/api/v1/plugins/MockFilter", &one)
	if one.Class != "MockFilter" || one.Fields[0].Name != "mode" || len(one.Fields[0].Enum) == 0 {
		t.Fatalf("MockFilter spec %+v", one)
	}
	code, b := h.do("GET", "/api/v1/plugins/NoSuchThing", "")
	h.wantError(code, b, 404, `no plugin class "NoSuchThing"`)
	code, b = h.do("GET", "/api/v1/plugins?kind=sideways", "")
	h.wantError(code, b, 400, "kind")

	// Rates need two samples of the counters: wait until every node has one.
	var d admin.DAG
	waitFor(t, "every node's out rate", func() bool {
		d = admin.DAG{}
		h.getJSON("/api/v1/dag", &d)
		for _, n := range d.Nodes {
			if n.OutRate <= 0 {
				return false
			}
		}
		return len(d.Nodes) > 0
	})
	if len(d.Nodes) != 3 || len(d.Edges) != 2 {
		t.Fatalf("dag %+v", d)
	}
	cols := map[string]int{}
	for _, n := range d.Nodes {
		cols[n.Name] = n.Column
		if n.OutRate <= 0 {
			t.Errorf("node %s has no out rate: %+v", n.Name, n)
		}
	}
	if cols["gen"] != 0 || cols["f"] != 1 || cols["out"] != 2 || d.RateWindowSeconds <= 0 {
		t.Fatalf("columns %v window %v", cols, d.RateWindowSeconds)
	}
	if e := d.Edges[0]; e.From != "f" || e.To != "out" || e.Kind != "match" {
		t.Fatalf("edge %+v", e)
	}

	var q struct {
		InFlight int `json:"in_flight"`
		Nodes    []admin.QueueView
	}
	h.getJSON("/api/v1/queues", &q)
	found := false
	for _, n := range q.Nodes {
		if n.Name == "gen" && n.PoolCap > 0 {
			found = true
		}
		if n.Name == "out" && n.QueueCap == 0 {
			t.Fatalf("output without a ring: %+v", n)
		}
	}
	if !found {
		t.Fatalf("queues %+v", q)
	}

	var cp struct {
		Inputs  []admin.InputCheckpoint
		Streams []struct {
			Stream string
			Offset int64
		}
	}
	waitFor(t, "a checkpoint", func() bool { return h.node("gen").CkptOffset > 0 })
	h.getJSON("/api/v1/checkpoints", &cp)
	if len(cp.Inputs) != 1 || cp.Inputs[0].Name != "gen" || cp.Inputs[0].Offset <= 0 || cp.Inputs[0].CommittedAt == nil {
		t.Fatalf("checkpoints %+v", cp)
	}
	if len(cp.Streams) != 1 || cp.Streams[0].Stream != "gen" || cp.Streams[0].Offset <= 0 {
		t.Fatalf("streams %+v", cp.Streams)
	}
}

func TestAPIBadRequestsAreJSON4xx(t *testing.T) {
	h := start(t, hopts{})
	for _, c := range []struct {
		method, path, body string
		code               int
		substr             string
	}{
		{"GET", "/api/v1/nothing", "", 404, "no API endpoint"},
		{"GET", "/api/v2/status", "", 404, "no API endpoint"},
		{"POST", "/api/v1/status", "", 405, "not allowed"},
		{"DELETE", "/api/v1/reload", "", 405, "not allowed"},
		{"GET", "/api/v1/inputs/gen/pause", "", 405, "not allowed"},
		{"POST", "/api/v1/inputs/nope/pause", "", 404, `"nope"`},
		{"POST", "/api/v1/inputs/f/pause", "", 400, "only inputs"},
		{"POST", "/api/v1/inputs/out/resume", "", 400, "only inputs"},
		{"POST", "/api/v1/inputs/gen/pause?x=1", "", 400, "unexpected query"},
		{"GET", "/api/v1/tap/gen", "", 403, "tap is off"},
		{"GET", "/debug/pprof/", "", 404, "pprof is off"},
		{"GET", "/nothing", "", 404, "not found"},
		{"POST", "/api/v1/reload", "inputs: [", 400, "invalid YAML"},
		{"POST", "/api/v1/reload", "", 400, "no config file"},
		{"POST", "/api/v1/reload?force=1", "x", 400, "unexpected query"},
	} {
		code, b := h.do(c.method, c.path, c.body)
		h.wantError(code, b, c.code, c.substr)
	}
	code, b := h.do("POST", "/api/v1/reload", "a: b", "Content-Type", "image/png")
	h.wantError(code, b, 415, "application/yaml")
	code, b = h.do("POST", "/api/v1/reload", strings.Repeat("#", admin.MaxReloadBody+1))
	h.wantError(code, b, 413, "limit")
	if g := h.sup.Generation(); g != 1 {
		t.Fatalf("bad requests changed the generation to %d", g)
	}
	if h.node("gen").Paused {
		t.Fatalf("bad requests paused the input")
	}
}

func TestAPIAuth(t *testing.T) {
	h := start(t, hopts{section: "{token: s3cret, pprof: true}"})
	for _, p := range []string{"/api/v1/status", "/metrics", "/debug/pprof/", "/api/v1/nothing"} {
		code, b := h.do("GET", p, "")
		h.wantError(code, b, 401, "authorization required")
		code, b = h.do("GET", p, "", "Authorization", "Bearer wrong")
		h.wantError(code, b, 401, "invalid token")
	}
	code, b := h.do("POST", "/api/v1/inputs/gen/pause", "")
	h.wantError(code, b, 401, "authorization")
	if h.node("gen").Paused {
		t.Fatalf("unauthenticated pause took effect")
	}
	// The page's static assets are public (they hold no data).
	if code, _ := h.do("GET", "/ui/", ""); code != 200 {
		t.Fatalf("ui without token: %d", code)
	}
	h.tok = "s3cret"
	for _, p := range []string{"/api/v1/status", "/metrics", "/debug/pprof/"} {
		if code, b := h.do("GET", p, ""); code != 200 {
			t.Fatalf("GET %s with token = %d: %s", p, code, b)
		}
	}

	// Token from a file; auth off accepts anything.
	tf := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tf, []byte("filetoken\n"), 0o600)
	h2 := start(t, hopts{section: fmt.Sprintf("{token_file: %q}", tf)})
	code, b = h2.do("GET", "/api/v1/status", "", "Authorization", "Bearer filetoken")
	if code != 200 {
		t.Fatalf("token_file: %d %s", code, b)
	}
	h3 := start(t, hopts{})
	if code, b := h3.do("GET", "/api/v1/status", ""); code != 200 {
		t.Fatalf("auth off: %d %s", code, b)
	}
}

func TestAPIPauseResumeObservableInStats(t *testing.T) {
	h := start(t, hopts{pipeline: `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 20000}
  - {name: other, class: MockInput, payload: 32, rate: 20000}
outputs:
  - {name: out, class: Rec, match: [gen, other]}
`})
	waitFor(t, "packets", func() bool { return h.node("gen").Out > 0 && h.node("other").Out > 0 })
	for _, name := range []string{"gen", "other"} {
		code, b := h.do("POST", "/api/v1/inputs/"+name+"/pause", "")
		if code != 200 || !strings.Contains(string(b), `"paused": true`) {
			t.Fatalf("pause %s: %d %s", name, code, b)
		}
		if !h.node(name).Paused {
			t.Fatalf("%s not paused in stats", name)
		}
	}
	// A batch in hand when the pause came may still be emitted: wait for
	// the counters to stand still, then watch that they stay so.
	g1 := settled(t, "gen to go quiet", func() uint64 { return h.node("gen").Out })
	o1 := settled(t, "other to go quiet", func() uint64 { return h.node("other").Out })
	testenv.Never(t, 150*time.Millisecond, func() bool {
		return h.node("gen").Out > g1+512 || h.node("other").Out > o1+512
	}, "paused inputs kept emitting: gen from %d, other from %d", g1, o1)
	var q struct{ Nodes []admin.QueueView }
	h.getJSON("/api/v1/queues", &q)
	for _, n := range q.Nodes {
		if n.Kind == "input" && !n.Paused {
			t.Fatalf("queues shows %s running", n.Name)
		}
	}
	code, b := h.do("POST", "/api/v1/inputs/gen/resume", "")
	if code != 200 || !strings.Contains(string(b), `"paused": false`) {
		t.Fatalf("resume: %d %s", code, b)
	}
	g1 = h.node("gen").Out
	waitFor(t, "gen to flow again", func() bool { return h.node("gen").Out > g1+100 })
	if !h.node("other").Paused {
		t.Fatalf("resuming gen resumed other")
	}
}

func TestAPIReloadChangesGeneration(t *testing.T) {
	h := start(t, hopts{file: true})
	waitFor(t, "packets", func() bool { return h.rec.Len() > 10 })
	code, b := h.do("POST", "/api/v1/reload", fmt.Sprintf(basePipeline, "b"), "Content-Type", "application/yaml")
	if code != 200 {
		t.Fatalf("reload: %d %s", code, b)
	}
	var res admin.ReloadResult
	json.Unmarshal(b, &res)
	if res.Generation != 2 || res.PreviousGeneration != 1 || !res.Applied || h.sup.Generation() != 2 {
		t.Fatalf("reload result %+v, generation %d", res, h.sup.Generation())
	}
	if res.At.IsZero() || time.Since(res.At) > time.Minute {
		t.Fatalf("reload reply time %v, want now", res.At)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "admin") {
		t.Fatalf("dropping the admin section should warn: %+v", res)
	}
	waitFor(t, "suffix b", func() bool {
		p := h.rec.Payloads()
		return len(p) > 0 && p[len(p)-1][len(p[len(p)-1])-1] == 'b'
	})

	// A config that does not validate: 400 with the located error, nothing changes.
	bad := strings.Replace(fmt.Sprintf(basePipeline, "c"), "MockFilter", "MockFilterr", 1)
	code, b = h.do("POST", "/api/v1/reload", bad)
	h.wantError(code, b, 400, `reload request>:6: `)
	if !strings.Contains(string(b), `"generation": 2`) || h.sup.Generation() != 2 {
		t.Fatalf("failed reload changed the generation: %s", b)
	}
	// One that validates but does not build (constructor error).
	bad = strings.Replace(fmt.Sprintf(basePipeline, "c"), "mode: modify", "mode: emit, emit: 0", 1)
	code, b = h.do("POST", "/api/v1/reload", bad)
	h.wantError(code, b, 400, "pipeline unchanged")
	if h.sup.Generation() != 2 {
		t.Fatalf("failed build changed the generation")
	}
	var st admin.Status
	h.getJSON("/api/v1/status", &st)
	if st.LastReload == nil || st.LastReload.Applied || st.LastReload.Error == "" || st.Generation != 2 {
		t.Fatalf("status last reload %+v", st.LastReload)
	}
	// Empty body: re-read the file (suffix a again).
	code, b = h.do("POST", "/api/v1/reload", "")
	if code != 200 || h.sup.Generation() != 3 {
		t.Fatalf("reload from file: %d %s", code, b)
	}
	h.getJSON("/api/v1/status", &st)
	if st.LastReload == nil || !st.LastReload.Applied || st.LastReload.File != h.path {
		t.Fatalf("status last reload %+v", st.LastReload)
	}
}

// slowPipeline drains slowly: its output takes 300ms per batch.
const slowPipeline = `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 2000}
outputs:
  - {name: out, class: MockOutput, latency: %s, match: gen}
`

func TestAPIReloadConcurrentIs409(t *testing.T) {
	h := start(t, hopts{pipeline: fmt.Sprintf(slowPipeline, "300ms")})
	waitFor(t, "a write", func() bool { return h.node("out").Batches > 0 })
	first := make(chan int, 1)
	go func() {
		code, _ := h.do("POST", "/api/v1/reload", fmt.Sprintf(slowPipeline, "301ms"))
		first <- code
	}()
	waitFor(t, "the first reload to start", func() bool {
		var st admin.Status
		h.getJSON("/api/v1/status", &st)
		return st.Reloading
	})
	code, b := h.do("POST", "/api/v1/reload", fmt.Sprintf(slowPipeline, "302ms"))
	h.wantError(code, b, 409, "already in progress")
	// Pausing while the component may be stopping is refused too.
	code, b = h.do("POST", "/api/v1/inputs/gen/pause", "")
	h.wantError(code, b, 409, "reload is in progress")
	if c := <-first; c != 200 {
		t.Fatalf("first reload: %d", c)
	}
	if g := h.sup.Generation(); g != 2 {
		t.Fatalf("generation %d after one applied reload", g)
	}
	if h.node("gen").Paused {
		t.Fatalf("the refused pause took effect")
	}
}

func TestAPIReloadsLoseNoPacket(t *testing.T) {
	store := engine.NewMemoryStore()
	rec := mock.NewRecorder()
	reg := newRegistry(t, rec)
	cfg, err := engine.Parse("r.yaml", []byte(fmt.Sprintf(basePipeline, "a")+"admin: {}\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	srv, err := admin.Start(ctx, admin.Options{Supervisor: sup, Registry: reg, Logger: testLogger(t),
		Section: cfg.Sections["admin"], ListenOverride: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, base: "http://" + srv.Addr()}
	// Each generation must deliver something before the next reload (the
	// test checks that all five were seen, in order).
	delivered := func(suffix byte) func() bool {
		return func() bool {
			ps := rec.Payloads()
			return len(ps) > 0 && ps[len(ps)-1][len(ps[len(ps)-1])-1] == suffix
		}
	}
	waitFor(t, "generation a to deliver", delivered('a'))
	for i, suffix := range []string{"b", "c", "d", "e"} {
		code, b := h.do("POST", "/api/v1/reload", fmt.Sprintf(basePipeline, suffix)+"admin: {}\n")
		if code != 200 {
			t.Fatalf("reload %d: %d %s", i, code, b)
		}
		if sup.Generation() != int64(i+2) {
			t.Fatalf("generation %d after reload %d", sup.Generation(), i)
		}
		// A bad one in between changes nothing.
		code, _ = h.do("POST", "/api/v1/reload", "inputs: []\n")
		if code != 400 || sup.Generation() != int64(i+2) {
			t.Fatalf("bad reload: %d, generation %d", code, sup.Generation())
		}
		waitFor(t, "generation "+suffix+" to deliver", delivered(suffix[0]))
	}
	srv.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp, ok, _ := store.Load("gen")
	if !ok || cp.Offset == 0 {
		t.Fatalf("no checkpoint")
	}
	seen := make([]int, cp.Offset)
	var suffixes []byte
	for _, p := range rec.Payloads() {
		s, seq, ok := mock.ParsePayload(p)
		if !ok || s != "0" || seq < 0 || seq >= cp.Offset {
			t.Fatalf("unexpected payload %q (checkpoint %d)", p, cp.Offset)
		}
		seen[seq]++
		if sfx := p[len(p)-1]; len(suffixes) == 0 || suffixes[len(suffixes)-1] != sfx {
			suffixes = append(suffixes, sfx)
		}
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("seq %d delivered %d times across reloads", i, c)
		}
	}
	if string(suffixes) != "abcde" {
		t.Fatalf("generations seen in order %q, want abcde", suffixes)
	}
	t.Logf("%d packets across 4 API reloads, none lost or duplicated", cp.Offset)
}

func TestAPITap(t *testing.T) {
	h := start(t, hopts{section: "{tap: {enabled: true, max_packets: 50, max_payload_bytes: 64, max_concurrent: 1}}"})
	// NDJSON.
	code, b := h.do("GET", "/api/v1/tap/f?max=5&every=3&payload_bytes=8", "")
	if code != 200 {
		t.Fatalf("tap: %d %s", code, b)
	}
	var recs []engine.TapRecord
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var r engine.TapRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("tap line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 5 {
		t.Fatalf("tap returned %d records, want 5: %s", len(recs), b)
	}
	for _, r := range recs {
		if r.Node != "f" || len(r.Payload) != 8 || r.Size <= 8 {
			t.Fatalf("tap record %+v", r)
		}
	}
	// SSE.
	code, b = h.do("GET", "/api/v1/tap/out?max=2", "", "Accept", "text/event-stream")
	if code != 200 || strings.Count(string(b), "event: packet\ndata: {") != 2 || !strings.Contains(string(b), `event: end`) {
		t.Fatalf("sse tap: %d %s", code, b)
	}
	// Oversized and malformed requests.
	for _, c := range []struct {
		q      string
		code   int
		substr string
	}{
		{"/api/v1/tap/f?max=51", 400, "over the limit 50"},
		{"/api/v1/tap/f?max=100000", 400, "admin.tap.max_packets"},
		{"/api/v1/tap/f?payload_bytes=65", 400, "max_payload_bytes"},
		{"/api/v1/tap/f?timeout=2h", 400, "max_duration"},
		{"/api/v1/tap/f?max=0", 400, "at least 1"},
		{"/api/v1/tap/f?max=x", 400, "positive integer"},
		{"/api/v1/tap/f?max=1&max=2", 400, "2 times"},
		{"/api/v1/tap/f?colour=red", 400, "unknown query parameter"},
		{"/api/v1/tap/f?format=xml", 400, "ndjson or sse"},
		{"/api/v1/tap/nope", 404, "no running plugin"},
	} {
		code, b := h.do("GET", c.q, "")
		h.wantError(code, b, c.code, c.substr)
	}
	// A paused input emits nothing: the tap ends at its timeout, with what it got.
	h.do("POST", "/api/v1/inputs/gen/pause", "")
	settled(t, "the paused input to go quiet", func() uint64 { return h.node("gen").Out })
	started := time.Now()
	result := make(chan int, 1)
	taps := h.srv.TapsStarted()
	go func() {
		code, _ := h.do("GET", "/api/v1/tap/gen?max=50&timeout=400ms", "")
		result <- code
	}()
	waitFor(t, "the tap to start", func() bool { return h.srv.TapsStarted() > taps })
	// max_concurrent is 1.
	code, b = h.do("GET", "/api/v1/tap/f?max=1", "")
	h.wantError(code, b, 429, "max_concurrent")
	if c := <-result; c != 200 || time.Since(started) > 3*time.Second {
		t.Fatalf("timed-out tap: %d after %s", c, time.Since(started))
	}
}

func TestAPITapOneAtATimePerNode(t *testing.T) {
	h := start(t, hopts{section: "{tap: {enabled: true}}"})
	// The input is paused, so the first tap stays open until it is
	// resumed (the long timeout only bounds a broken run; a short one made
	// the test flaky on a loaded machine: the first tap could end before
	// the second request came).
	h.do("POST", "/api/v1/inputs/gen/pause", "")
	// Packets emitted before the pause may still be on their way (a tap
	// would see them and end early).
	settled(t, "the paused pipeline to go quiet", func() uint64 { return uint64(h.rec.Len()) })
	result := make(chan int, 1)
	go func() {
		// Retried while a probe below holds the node's tap slot.
		var code int
		testenv.WaitFor(5*time.Second, func() bool {
			code, _ = h.do("GET", "/api/v1/tap/out?max=10&timeout=20s", "")
			return code != 409
		})
		result <- code
	}()
	waitFor(t, "the first tap", func() bool {
		code, b := h.do("GET", "/api/v1/tap/out?max=1&timeout=50ms", "")
		if code == 409 {
			h.wantError(code, b, 409, "already active")
			return true
		}
		return false
	})
	h.do("POST", "/api/v1/inputs/gen/resume", "")
	select {
	case c := <-result:
		if c != 200 {
			t.Fatalf("first tap: %d", c)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the first tap did not end after the input resumed")
	}
}

func TestAPIMetricsEndpointMoves(t *testing.T) {
	h := start(t, hopts{})
	scrape := func() string {
		code, b := h.do("GET", "/metrics", "")
		if code != 200 {
			t.Fatalf("metrics: %d", code)
		}
		return string(b)
	}
	sample := func(text, series string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, series+" ") {
				return strings.TrimPrefix(l, series+" ")
			}
		}
		t.Fatalf("no series %s in:\n%.3000s", series, text)
		return ""
	}
	series := `dbus_plugin_packets_out_total{class="Rec",kind="output",plugin="out"}`
	a := sample(scrape(), series)
	var text string
	waitFor(t, series+" to move from "+a, func() bool {
		text = scrape()
		return sample(text, series) != a
	})
	for _, n := range []string{"dbus_config_generation 1", "go_goroutines", "process_resident_memory_bytes", "dbus_build_info{"} {
		if !strings.Contains(text, n) {
			t.Fatalf("metrics lack %s", n)
		}
	}
}

func TestAPIPprofOptIn(t *testing.T) {
	h := start(t, hopts{section: "{pprof: true}"})
	code, b := h.do("GET", "/debug/pprof/", "")
	if code != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("pprof index: %d", code)
	}
	code, _ = h.do("GET", "/debug/pprof/cmdline", "")
	if code != 200 {
		t.Fatalf("pprof cmdline: %d", code)
	}
}

func TestAPIUIServedAndRootRedirects(t *testing.T) {
	h := start(t, hopts{})
	code, b := h.do("GET", "/ui/", "")
	if code != 200 || !strings.Contains(string(b), `<script src="app.js">`) {
		t.Fatalf("ui: %d %s", code, b)
	}
	code, b = h.do("GET", "/ui/app.js", "")
	if code != 200 || !strings.Contains(string(b), "/api/v1/") && !strings.Contains(string(b), "api/v1/") {
		t.Fatalf("app.js: %d", code)
	}
	if strings.Contains(string(b), "https://") || strings.Contains(string(b), "//cdn") {
		t.Fatalf("the page must not fetch from the internet")
	}
	for _, f := range []string{"/ui/", "/ui/style.css"} {
		if _, b := h.do("GET", f, ""); strings.Contains(string(b), "http:") || strings.Contains(string(b), "https:") {
			t.Fatalf("%s refers to another site", f)
		}
	}
	req, _ := http.NewRequest("GET", h.base+"/", nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("root: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAPIWatchReloadsOnFileChange(t *testing.T) {
	section := "{watch: true, watch_interval: 20ms}"
	h := start(t, hopts{file: true, section: section})
	testenv.Never(t, 60*time.Millisecond, func() bool { return h.sup.Generation() != 1 },
		"watcher reloaded an unchanged file: generation %d", h.sup.Generation())
	write := func(s string) {
		// Write to a temp file and rename, as editors and config management do.
		tmp := h.path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, h.path); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(basePipeline, "w") + "admin: " + section + "\n")
	waitFor(t, "the watcher to reload", func() bool { return h.sup.Generation() == 2 })
	write("inputs: [\n")
	waitFor(t, "the rejected reload to be recorded", func() bool {
		var st admin.Status
		h.getJSON("/api/v1/status", &st)
		return st.LastReload != nil && st.LastReload.Source == "watch" && st.LastReload.Error != ""
	})
	testenv.Never(t, 100*time.Millisecond, func() bool { return h.sup.Generation() != 2 },
		"a bad file changed the generation")
	write(fmt.Sprintf(basePipeline, "x") + "admin: " + section + "\n")
	waitFor(t, "the fixed file to load", func() bool { return h.sup.Generation() == 3 })
}

func TestAPIStartAndSection(t *testing.T) {
	rec := mock.NewRecorder()
	reg := newRegistry(t, rec)
	cfg, err := engine.Parse("s.yaml", []byte(fmt.Sprintf(basePipeline, "a")), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// No admin: section and no override: off.
	srv, err := admin.Start(context.Background(), admin.Options{Supervisor: sup, Registry: reg})
	if srv != nil || err != nil {
		t.Fatalf("admin without a section: %v %v", srv, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	node := func(s string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte("admin: "+s), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0].Content[1]
	}
	for _, c := range []struct{ section, substr string }{
		{"{listen: 1.2.3.4}", "want host:port"},
		{"{lisen: ':1'}", "field lisen not found"},
		{"{token: a, token_file: b}", "not both"},
		{"{token_file: /nonexistent/tok}", "token_file"},
		{"{tap: {max_packets: 20000}}", "tap.max_packets 20000 out of range"},
		{"{tap: {max_payload_bytes: 0}}", "max_payload_bytes"},
		{"{watch_interval: 1ms}", "watch_interval"},
		{"{pprof: maybe}", "cannot unmarshal !!str `maybe` into bool"},
		{"[1, 2]", "must be a mapping"},
	} {
		_, err := admin.Start(context.Background(), admin.Options{Supervisor: sup, Registry: reg, ConfigPath: "d.yaml", Section: node(c.section)})
		if err == nil || !strings.Contains(err.Error(), c.substr) || !strings.HasPrefix(err.Error(), "d.yaml:1: admin:") {
			t.Errorf("section %s: error %v, want one located at d.yaml:1 mentioning %q", c.section, err, c.substr)
		}
	}
	c, err := admin.ParseSection("d.yaml", node("{listen: '127.0.0.1:0', tap: {enabled: true, max_duration: 5s}}"))
	if err != nil || c.Listen != "127.0.0.1:0" || !c.Tap.Enabled || c.Tap.MaxDuration != 5*time.Second || c.Tap.MaxPackets != 1000 || !c.Metrics {
		t.Fatalf("parsed %+v %v", c, err)
	}
	// Closing via the context.
	ctx, cancel := context.WithCancel(context.Background())
	srv, err = admin.Start(ctx, admin.Options{Supervisor: sup, Registry: reg, ListenOverride: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	cancel()
	waitFor(t, "the listener to close", func() bool {
		_, err := http.Get("http://" + addr + "/api/v1/status")
		return err != nil
	})
	srv.Close()
}
