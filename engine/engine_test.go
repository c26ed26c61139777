package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/mock"
)

// testRegistry returns a registry with the mock plugins and a recorder
// output class "Rec" per recorder given.
func testRegistry(t testing.TB, recs map[string]*mock.Recorder) *engine.Registry {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	for class, r := range recs {
		if err := mock.RegisterRecorder(reg, class, r); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// newEngine parses yaml with reg and builds an engine with opts (Registry
// and, unless set, Logger filled in), failing t on any error.
func newEngine(t testing.TB, reg *engine.Registry, yaml string, opts engine.Options) *engine.Engine {
	t.Helper()
	cfg, err := engine.Parse("test.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	opts.Registry = reg
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	e, err := engine.New(cfg, opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return e
}

func run(t testing.TB, reg *engine.Registry, yaml string, store engine.CheckpointStore, timeout time.Duration) (*engine.Engine, error) {
	t.Helper()
	e := newEngine(t, reg, yaml, engine.Options{Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return e, e.Run(ctx)
}

// checkSeqs asserts that payloads hold every sequence 0..n-1 of stream
// exactly once (dups allowed when allowDup) and nothing else.
func checkSeqs(t *testing.T, payloads [][]byte, stream string, n int64, allowDup bool) {
	t.Helper()
	seen := make([]int, n)
	for _, p := range payloads {
		s, seq, ok := mock.ParsePayload(p)
		if !ok || s != stream {
			continue
		}
		if seq < 0 || seq >= n {
			t.Fatalf("unexpected seq %d (n=%d)", seq, n)
		}
		seen[seq]++
	}
	for i, c := range seen {
		if c == 0 {
			t.Fatalf("seq %d of stream %s never delivered", i, stream)
		}
		if c > 1 && !allowDup {
			t.Fatalf("seq %d delivered %d times", i, c)
		}
	}
}

func TestEngineDeliversAllAndCheckpoints(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	store := engine.NewMemoryStore()
	const n = 50000
	_, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 64}
filters:
  - {name: f, class: MockFilter, match: gen}
outputs:
  - {name: out, class: Rec, match: [f]}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len() != n {
		t.Fatalf("recorded %d packets, want %d", rec.Len(), n)
	}
	checkSeqs(t, rec.Payloads(), "0", n, false)
	// In order, too: a single input and a single output keep order.
	for i, p := range rec.Payloads() {
		_, seq, _ := mock.ParsePayload(p)
		if seq != int64(i) {
			t.Fatalf("packet %d has seq %d: order broken", i, seq)
		}
	}
	cp, ok, _ := store.Load("gen")
	if !ok || cp.Offset != n {
		t.Fatalf("checkpoint = %+v %v, want offset %d", cp, ok, n)
	}
}

func TestEngineFanOutCopyOnWrite(t *testing.T) {
	a, b := mock.NewRecorder(), mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"RecA": a, "RecB": b})
	store := engine.NewMemoryStore()
	const n = 20000
	e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
filters:
  - {name: mod, class: MockFilter, mode: modify, suffix: "!", match: gen}
outputs:
  - {name: plain, class: RecA, match: gen}
  - {name: modified, class: RecB, match: mod}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != n || b.Len() != n {
		t.Fatalf("plain got %d, modified got %d, want %d each", a.Len(), b.Len(), n)
	}
	for _, p := range a.Payloads() {
		if strings.HasSuffix(string(p), "!") {
			t.Fatalf("plain branch saw the other branch's modification: %q", p)
		}
	}
	for _, p := range b.Payloads() {
		if !strings.HasSuffix(string(p), "!") {
			t.Fatalf("modified branch lacks the suffix: %q", p)
		}
	}
	cp, _, _ := store.Load("gen")
	if cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d", cp.Offset, n)
	}
	var copies uint64
	for _, s := range e.Stats() {
		if s.Name == "mod" {
			copies = s.Copies
		}
	}
	if copies == 0 {
		t.Fatalf("expected copy-on-write copies on the shared branch")
	}
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLogger logs through t, shown only for failing tests.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
