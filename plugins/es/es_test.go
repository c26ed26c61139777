package es

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/bytebufferpool"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/file"
	"github.com/dbus-project/dbus/plugins/mock"
	"github.com/dbus-project/dbus/plugins/parse"
)

// bulkServer is a strict fake of the bulk API: it checks the request
// format and answers with per-item results decided by fail.
type bulkServer struct {
	t  testing.TB
	mu sync.Mutex
	// docs by index/id (the last version indexed).
	docs     map[string]map[string]map[string]any
	requests int
	items    int
	attempts map[string]int // per doc key "n"
	// fail returns the item status for a document (0: 201).
	fail func(doc map[string]any, attempt int) int
	// refuse returns an HTTP status for the whole request (0: 200).
	refuse  func(req int) int
	badReqs []string
}

func newBulkServer(t testing.TB) (*bulkServer, *httptest.Server) {
	bs := &bulkServer{t: t, docs: map[string]map[string]map[string]any{}, attempts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(bs.handle))
	t.Cleanup(srv.Close)
	return bs, srv
}

func (bs *bulkServer) bad(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	bs.badReqs = append(bs.badReqs, msg)
	http.Error(w, msg, http.StatusBadRequest)
}

func (bs *bulkServer) handle(w http.ResponseWriter, r *http.Request) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.requests++
	if r.Method != http.MethodPost || r.URL.Path != "/_bulk" {
		bs.bad(w, "want POST /_bulk, got %s %s", r.Method, r.URL.Path)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		bs.bad(w, "content type %q", ct)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			bs.bad(w, "gzip: %v", err)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		bs.bad(w, "read: %v", err)
		return
	}
	if bs.refuse != nil {
		if st := bs.refuse(bs.requests); st != 0 {
			http.Error(w, `{"error":"refused"}`, st)
			return
		}
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		bs.bad(w, "body does not end with a newline")
		return
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	if len(lines)%2 != 0 {
		bs.bad(w, "odd number of lines: %d", len(lines))
		return
	}
	type result struct {
		Status int            `json:"status"`
		ID     string         `json:"_id,omitempty"`
		Index  string         `json:"_index"`
		Error  map[string]any `json:"error,omitempty"`
	}
	var items []map[string]result
	anyErr := false
	for i := 0; i < len(lines); i += 2 {
		dec := json.NewDecoder(bytes.NewReader(lines[i]))
		dec.DisallowUnknownFields()
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := dec.Decode(&action); err != nil || len(action) != 1 {
			bs.bad(w, "line %d: bad action %q: %v", i, lines[i], err)
			return
		}
		var name string
		for k := range action {
			name = k
		}
		a := action[name]
		if (name != "index" && name != "create") || a.Index == "" {
			bs.bad(w, "line %d: bad action %q", i, lines[i])
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(lines[i+1], &doc); err != nil {
			bs.bad(w, "line %d: document is not a JSON object: %q: %v", i+1, lines[i+1], err)
			return
		}
		key := fmt.Sprint(doc["n"])
		bs.attempts[key]++
		st := 201
		if bs.fail != nil {
			if s := bs.fail(doc, bs.attempts[key]); s != 0 {
				st = s
			}
		}
		res := result{Status: st, ID: a.ID, Index: a.Index}
		if st >= 300 {
			anyErr = true
			res.Error = map[string]any{"type": "test_error", "reason": fmt.Sprintf("status %d for n=%s", st, key)}
		} else {
			bs.items++
			if bs.docs[a.Index] == nil {
				bs.docs[a.Index] = map[string]map[string]any{}
			}
			bs.docs[a.Index][a.ID] = doc
		}
		items = append(items, map[string]result{name: res})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": anyErr, "items": items})
}

func newTestOutput(t testing.TB, vals map[string]any) *Output {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "es", "ESOutput", vals)
	if err != nil {
		t.Fatal(err)
	}
	o, err := newOutput(c)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*Output)
}

func TestESWritePartialFailuresAndClassification(t *testing.T) {
	bs, srv := newBulkServer(t)
	bs.fail = func(doc map[string]any, attempt int) int {
		switch doc["n"].(float64) {
		case 3:
			return 429
		case 4:
			return 503
		case 7:
			return 400 // mapping error
		}
		return 0
	}
	o := newTestOutput(t, map[string]any{"urls": []string{srv.URL}, "index": "logs-%{+2006.01.02}", "document": "both"})
	var batch []*pack.Packet
	for i := 0; i < 10; i++ {
		p := &pack.Packet{Payload: []byte(fmt.Sprintf("line \"%d\"\n\x01", i)), Ts: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).UnixNano()}
		p.Attrs.SetInt("n", int64(i))
		p.Attrs.SetString("file", "/var/log/a.log")
		p.Pos.Offset = int64(100 * (i + 1))
		batch = append(batch, p)
	}
	err := o.Write(context.Background(), batch)
	var be *engine.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want a BatchError, got %v (bad requests %v)", err, bs.badReqs)
	}
	for i, e := range be.Errs {
		switch i {
		case 3, 4:
			if e == nil || errors.Is(e, ErrPermanent) {
				t.Fatalf("item %d: want a retryable error, got %v", i, e)
			}
		case 7:
			if !errors.Is(e, ErrPermanent) || !strings.Contains(e.Error(), "status 400") {
				t.Fatalf("item 7: want a permanent error, got %v", e)
			}
		default:
			if e != nil {
				t.Fatalf("item %d failed: %v", i, e)
			}
		}
	}
	docs := bs.docs["logs-2024.05.01"]
	if len(docs) != 7 {
		t.Fatalf("indexed %d docs in logs-2024.05.01: %v", len(docs), bs.docs)
	}
	for id, d := range docs {
		if !strings.HasSuffix(id, fmt.Sprintf("-%d", int(d["n"].(float64)+1)*100)) || len(id) < 18 {
			t.Fatalf("id %q of doc %v not derived from the position", id, d)
		}
		if d["@timestamp"] != "2024-05-01T10:00:00Z" || !strings.HasPrefix(d["message"].(string), "line \"") || d["file"] != "/var/log/a.log" {
			t.Fatalf("doc %v", d)
		}
	}
}

func TestESSplitsByBytesAndRefusedRequests(t *testing.T) {
	bs, srv := newBulkServer(t)
	o := newTestOutput(t, map[string]any{"urls": []string{srv.URL}, "index": "x-%{app}", "max_bytes": 2048, "gzip": false})
	var batch []*pack.Packet
	for i := 0; i < 100; i++ {
		p := &pack.Packet{}
		p.Attrs.SetInt("n", int64(i))
		p.Attrs.SetString("app", "web")
		p.Attrs.SetString("pad", strings.Repeat("p", 100))
		batch = append(batch, p)
	}
	if err := o.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if bs.requests < 6 || len(bs.docs["x-web"]) != 1 || bs.items != 100 {
		// No position: ids are cluster-chosen (empty here).
		t.Fatalf("requests %d items %d docs %v", bs.requests, bs.items, len(bs.docs["x-web"]))
	}
	// The second request of a batch refused with 429: the first request's
	// items succeeded, the rest are reported failed.
	bs.requests, bs.items = 0, 0
	bs.refuse = func(n int) int {
		if n == 2 {
			return 429
		}
		return 0
	}
	err := o.Write(context.Background(), batch)
	var be *engine.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("want BatchError, got %v", err)
	}
	ok := 0
	for _, e := range be.Errs {
		if e == nil {
			ok++
		} else if errors.Is(e, ErrPermanent) {
			t.Fatalf("a refused request is not permanent: %v", e)
		}
	}
	if ok != bs.items || ok == 0 || ok == 100 {
		t.Fatalf("%d acked, server indexed %d", ok, bs.items)
	}
}

func TestESEncodeNoAllocsAndEscaping(t *testing.T) {
	o := newTestOutput(t, map[string]any{"urls": []string{"http://127.0.0.1:1"}, "index": "logs-%{+2006.01}"})
	p := &pack.Packet{Payload: []byte("x"), Ts: 1}
	p.Attrs.SetString("msg", "tab\there \"q\" \\ \x00 \xff é")
	p.Attrs.SetFloat("f", 1.5)
	p.Attrs.SetBool("b", true)
	p.Pos.Offset = 10
	o.body = bytebufferpool.Get() // as Write does
	defer bytebufferpool.Put(o.body)
	o.encode([]*pack.Packet{p}, 0)
	lines := strings.Split(strings.TrimSuffix(o.body.String(), "\n"), "\n")
	var doc map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &doc); err != nil {
		t.Fatalf("doc %q: %v", lines[1], err)
	}
	if doc["msg"] != "tab\there \"q\" \\ \x00 \ufffd é" || doc["f"] != 1.5 || doc["b"] != true {
		t.Fatalf("doc %v", doc)
	}
	n := testing.AllocsPerRun(100, func() {
		o.body.Reset()
		o.ids, o.idxs = o.ids[:0], o.idxs[:0]
		o.encodeOne(p)
	})
	// The id and index strings kept for error messages.
	if n > 2 {
		t.Fatalf("%v allocations per encoded item", n)
	}
}

func TestESConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"urls": []string{"localhost:9200"}, "index": "a"}, "not an http"},
		{map[string]any{"urls": []string{"http://x"}, "index": "a-%{+2006"}, "unclosed"},
		{map[string]any{"urls": []string{"http://x"}, "index": "Logs"}, "lower case"},
		{map[string]any{"urls": []string{"http://x"}, "index": "a", "id": "random"}, "position, none"},
	} {
		c, err := engine.NewConf(reg, "es", "ESOutput", tc.vals)
		if err == nil {
			_, err = newOutput(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
}

// TestESPipelineRetriesDeadLettersAndReplaysWithoutDuplicates runs
// FileInput (historical) -> ParseFilter -> ESOutput against the fake bulk
// server: 429/503 items are retried until they succeed, mapping failures
// reach the dead-letter output, and a second replay of the same file
// indexes the same ids (no duplicates).
func TestESPipelineRetriesDeadLettersAndReplaysWithoutDuplicates(t *testing.T) {
	bs, srv := newBulkServer(t)
	bs.fail = func(doc map[string]any, attempt int) int {
		n := int(doc["n"].(float64))
		switch {
		case n%10 == 3 && attempt < 3:
			return 429
		case n%10 == 5 && attempt < 2:
			return 502
		case n%100 == 7:
			return 400
		}
		return 0
	}
	bs.refuse = func(req int) int {
		if req == 2 {
			return 503
		}
		return 0
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, _ := os.Create(path)
	w := bufio.NewWriter(f)
	const n = 2000
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"n":%d,"ts":"2024-05-0%dT10:00:00Z","msg":"hello %d"}`+"\n", i, 1+i%3, i)
	}
	w.Flush()
	f.Close()

	reg := engine.NewRegistry()
	mock.Register(reg)
	file.Register(reg)
	parse.Register(reg)
	Register(reg)
	dlq := mock.NewRecorder()
	mock.RegisterRecorder(reg, "Dead", dlq)
	yaml := fmt.Sprintf(`
inputs:
  - {name: logs, class: FileInput, mode: historical, paths: [%q]}
filters:
  - {name: json, class: ParseFilter, format: json, time_field: ts, match: logs}
outputs:
  - {name: es, class: ESOutput, urls: [%q], index: "app-%%{+2006.01.02}", match: json, batch: 128, retries: 5, retry_backoff: 1ms, dead_letter: dlq}
  - {name: dlq, class: Dead}
`, path, srv.URL)
	run := func(store engine.CheckpointStore) {
		cfg, err := engine.Parse("t.yaml", []byte(yaml), reg)
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	store := engine.NewMemoryStore()
	run(store)
	if len(bs.badReqs) > 0 {
		t.Fatalf("malformed requests: %v", bs.badReqs)
	}
	count := func() int {
		c := 0
		for _, m := range bs.docs {
			c += len(m)
		}
		return c
	}
	if got := count(); got != n-n/100 {
		t.Fatalf("indexed %d docs, want %d", got, n-n/100)
	}
	if dlq.Len() != n/100 {
		t.Fatalf("dead-lettered %d, want %d", dlq.Len(), n/100)
	}
	for _, a := range dlq.Attrs() {
		if !strings.Contains(a["dbus_error"], "status 400") {
			t.Fatalf("dead letter without the item error: %v", a)
		}
	}
	if len(bs.docs["app-2024.05.01"]) == 0 || len(bs.docs["app-2024.05.03"]) == 0 {
		t.Fatalf("index template by event time not applied: %v", len(bs.docs))
	}
	if cp, _, _ := store.Load("logs/" + path); cp.Token != "eof" {
		t.Fatalf("checkpoint %+v: replay not finished", cp)
	}
	// Replay from scratch: same ids, nothing duplicated.
	bs.fail, bs.refuse = nil, nil
	run(engine.NewMemoryStore())
	if got := count(); got != n {
		t.Fatalf("after the replay: %d docs, want %d (ids must be stable)", got, n)
	}
}
