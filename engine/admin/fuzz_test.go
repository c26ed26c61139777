package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/mock"
	"gopkg.in/yaml.v3"
)

// fakeBackend is a pipeline gen -> f -> out that records calls.
type fakeBackend struct {
	mu      sync.Mutex
	gen     int64
	paused  bool
	reloads int
}

func (f *fakeBackend) Stats() []engine.NodeSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []engine.NodeSnapshot{
		{Name: "f", Kind: "filter", Class: "MockFilter", In: 10, Out: 9, Drops: map[string]uint64{"x": 1}, QueueCap: 8},
		{Name: "gen", Kind: "input", Class: "MockInput", Out: 10, PoolCap: 16, Paused: f.paused, CkptOffset: 5, CkptUnixNano: 1},
		{Name: "out", Kind: "output", Class: "MockOutput", In: 9, Out: 9, Batches: 3, WriteNanos: 3e6, QueueCap: 8},
	}
}
func (f *fakeBackend) Generation() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}
func (f *fakeBackend) Uptime() time.Duration { return time.Minute }
func (f *fakeBackend) Graph() []engine.Edge {
	return []engine.Edge{{From: "f", To: "out", Kind: "match"}, {From: "gen", To: "f", Kind: "match"}}
}
func (f *fakeBackend) Checkpoints() map[string]engine.Checkpoint {
	return map[string]engine.Checkpoint{"gen": {Offset: 5}}
}
func (f *fakeBackend) Pause(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = true
	return nil
}
func (f *fakeBackend) Resume(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = false
	return nil
}
func (f *fakeBackend) Reload(cfg *engine.Config) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.gen++
	return f.gen, nil
}
func (f *fakeBackend) Config() *engine.Config { return nil }
func (f *fakeBackend) InFlight() int          { return 0 }
func (f *fakeBackend) Tap(ctx context.Context, node string, o engine.TapOptions) (<-chan engine.TapRecord, error) {
	ch := make(chan engine.TapRecord, 1)
	ch <- engine.TapRecord{Node: node, Payload: "p", Size: 1}
	close(ch)
	return ch, nil
}

func (f *fakeBackend) Query(name string, params map[string]string) (any, error) {
	return nil, fmt.Errorf("%s: %w", name, engine.ErrNotQueryable)
}

func fuzzServer(t testing.TB) (*Server, *fakeBackend) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	cfg := DefaultConfig()
	cfg.Token = "tok"
	cfg.Tap.Enabled = true
	cfg.Tap.MaxDuration = time.Second
	fb := &fakeBackend{gen: 1}
	s := newServer(cfg, fb, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return s, fb
}

// FuzzAPIRequest sends arbitrary requests through the whole handler: it
// never panics or answers 5xx, every error is a JSON {"error"}, and only a
// well-formed authenticated request changes the (fake) pipeline.
func FuzzAPIRequest(f *testing.F) {
	f.Add("GET", "/api/v1/status", "", "", true)
	f.Add("POST", "/api/v1/inputs/gen/pause", "", "", true)
	f.Add("POST", "/api/v1/inputs/f/pause", "", "", true)
	f.Add("POST", "/api/v1/reload", "application/yaml", "inputs: [{name: a, class: MockInput}]\noutputs: [{name: o, class: MockOutput, match: a}]\n", true)
	f.Add("POST", "/api/v1/reload", "text/yaml; charset=\x00", "x", true)
	f.Add("GET", "/api/v1/tap/gen?max=3&every=2", "", "", true)
	f.Add("GET", "/api/v1/tap/gen?max=99999999999999999999", "", "", true)
	f.Add("GET", "/api/v1/plugins/%2e%2e", "", "", false)
	f.Add("GET", "/api/v1/dag", "", "", false)
	s, fb := fuzzServer(f)
	f.Fuzz(func(t *testing.T, method, path, ctype, body string, auth bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://127.0.0.1:8714"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if auth {
			req.Header.Set("Authorization", "Bearer tok")
		}
		fb.mu.Lock()
		gen0, paused0 := fb.gen, fb.paused
		fb.mu.Unlock()
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, w.Code, w.Body)
		}
		fb.mu.Lock()
		changed := fb.gen != gen0 || fb.paused != paused0
		fb.mu.Unlock()
		if w.Code >= 400 {
			var e ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %q: %d with a body that is not {\"error\"}: %q", method, path, w.Code, w.Body)
			}
			if changed {
				t.Fatalf("%s %q failed with %d but changed the pipeline", method, path, w.Code)
			}
		}
		if changed && !auth {
			t.Fatalf("unauthenticated %s %q changed the pipeline", method, path)
		}
	})
}

// FuzzAPITapQuery checks the tap query parser: no panic, and an accepted
// request is within the limits.
func FuzzAPITapQuery(f *testing.F) {
	for _, s := range []string{"", "max=10", "max=10&every=2&payload_bytes=100&timeout=5s&format=sse",
		"max=-1", "max=1e3", "timeout=-5s", "every=0", "max=1&max=1", "%zz", "format=ndjson&timeout=1h"} {
		f.Add(s)
	}
	lim := DefaultConfig().Tap
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := parseTapQuery(q, lim)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error for %q", raw)
			}
			return
		}
		if req.Max < 1 || req.Max > lim.MaxPackets || req.Every < 1 || req.PayloadBytes < 1 ||
			req.PayloadBytes > lim.MaxPayloadBytes || req.Timeout <= 0 || req.Timeout > lim.MaxDuration {
			t.Fatalf("%q accepted out of limits: %+v", raw, req)
		}
	})
}

// FuzzAPIAdminSection checks the admin: section decoder: no panic, and an
// accepted section is valid.
func FuzzAPIAdminSection(f *testing.F) {
	for _, s := range []string{"{}", "{listen: ':0'}", "{tap: {enabled: true, max_packets: 5}}", "{token: x, pprof: true, watch: true}",
		"{watch_interval: 1ms}", "[1]", "{listen: 1}", "{tap: [1]}", "~", "{tap: {max_duration: 1y}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		var doc yaml.Node
		if yaml.Unmarshal([]byte("admin: "+src), &doc) != nil || len(doc.Content) == 0 || len(doc.Content[0].Content) < 2 {
			return
		}
		c, err := ParseSection("f.yaml", doc.Content[0].Content[1])
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("unlocated error %v", err)
			}
			return
		}
		if c.TokenFile == "" {
			if verr := c.validate(); verr != nil {
				t.Fatalf("accepted an invalid section %q: %v", src, verr)
			}
		}
	})
}
