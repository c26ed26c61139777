package enginetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// OutputCase describes an output under test.
type OutputCase struct {
	// Registry holds the output's class; the suite's generator
	// (SeqClass) is added.
	Registry *engine.Registry
	// Output is the output's YAML flow mapping body without name and
	// match, e.g. `class: StreamOutput, path: /tmp/x`.
	Output string
	// Received returns how many times the sink holds each sequence
	// (payloads are JSON documents made by SeqPayload: parse them with
	// ParseSeq).
	Received func(t testing.TB) map[int64]int
	// N is the number of packets per round (default 2000).
	N int
	// Timeout bounds each round (default 60s).
	Timeout time.Duration
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func runOnce(t testing.TB, reg *engine.Registry, conf string, store engine.CheckpointStore, timeout time.Duration) {
	t.Helper()
	cfg, err := engine.Parse("conformance.yaml", []byte(conf), reg)
	if err != nil {
		t.Fatalf("conformance config: %v\n%s", err, conf)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: store, Logger: quiet()})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := sup.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("round did not finish within %s", timeout)
	}
}

// TestOutput runs the output conformance suite: a round of N packets is
// delivered exactly once and checkpointed; a second round resumes after
// the checkpoint (N more packets, none of the first re-sent).
func TestOutput(t *testing.T, c OutputCase) {
	t.Helper()
	if c.N == 0 {
		c.N = 2000
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if err := registerSeq(c.Registry); err != nil {
		t.Fatal(err)
	}
	store := engine.NewMemoryStore()
	conf := func(count int) string {
		return fmt.Sprintf("inputs:\n  - {name: gen, class: %s, count: %d}\noutputs:\n  - {name: out, match: gen, %s}\n",
			SeqClass, count, strings.TrimSpace(c.Output))
	}
	t.Run("delivers-all-once", func(t *testing.T) {
		runOnce(t, c.Registry, conf(c.N), store, c.Timeout)
		checkExactly(t, c.Received(t), 0, int64(c.N))
		if cp, ok, _ := store.Load("gen"); !ok || cp.Offset != int64(c.N) {
			t.Fatalf("checkpoint %+v, want offset %d", cp, c.N)
		}
	})
	t.Run("resumes-after-restart", func(t *testing.T) {
		runOnce(t, c.Registry, conf(2*c.N), store, c.Timeout)
		checkExactly(t, c.Received(t), 0, int64(2*c.N))
		if cp, _, _ := store.Load("gen"); cp.Offset != int64(2*c.N) {
			t.Fatalf("checkpoint %d, want %d", cp.Offset, 2*c.N)
		}
	})
}

// checkExactly asserts got holds every sequence in [from, to) exactly
// once and nothing else.
func checkExactly(t testing.TB, got map[int64]int, from, to int64) {
	t.Helper()
	for seq := from; seq < to; seq++ {
		switch n := got[seq]; {
		case n == 0:
			t.Fatalf("sequence %d never reached the sink", seq)
		case n > 1:
			t.Fatalf("sequence %d reached the sink %d times after orderly runs", seq, n)
		}
	}
	if len(got) != int(to-from) {
		t.Fatalf("sink holds %d distinct sequences, want %d", len(got), to-from)
	}
}

// InputCase describes an input under test.
type InputCase struct {
	Registry *engine.Registry
	// Input is the input's YAML flow mapping body without name, e.g.
	// `class: StreamInput, source: file, path: /tmp/in`.
	Input string
	// Produce appends records with ids [from, to) to the source.
	Produce func(t testing.TB, from, to int)
	// ID extracts a record id from a delivered payload.
	ID func(payload []byte) (int, bool)
	// Finite inputs stop at the end of the source; others are stopped
	// once every expected record arrived.
	Finite bool
	// N is the records per round (default 1000); Timeout per round (60s).
	N       int
	Timeout time.Duration
	// AllowDuplicates tolerates re-delivery after a restart (sources whose
	// position commits lag, such as Kafka groups); missing records always
	// fail.
	AllowDuplicates bool
}

// TestInput runs the input conformance suite: every record of the source
// is delivered; after a restart, records produced meanwhile arrive and
// none is lost.
func TestInput(t *testing.T, c InputCase) {
	t.Helper()
	if c.N == 0 {
		c.N = 1000
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	rec, class, err := registerCollector(c.Registry)
	if err != nil {
		t.Fatal(err)
	}
	store := engine.NewMemoryStore()
	conf := fmt.Sprintf("engine: {checkpoint_interval: 20ms}\ninputs:\n  - {name: in, %s}\noutputs:\n  - {name: rec, class: %s, match: in}\n",
		strings.TrimSpace(c.Input), class)
	round := func(t *testing.T, want int) {
		cfg, err := engine.Parse("conformance.yaml", []byte(conf), c.Registry)
		if err != nil {
			t.Fatalf("conformance config: %v", err)
		}
		sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: c.Registry, Store: store, Logger: quiet()})
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- sup.Run(ctx) }()
		if !c.Finite {
			testenv.WaitFor(c.Timeout, func() bool { return distinct(c, rec) >= want || ctx.Err() != nil })
			cancel()
		}
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		ids := map[int]int{}
		for _, p := range rec.Payloads() {
			if id, ok := c.ID(p); ok {
				ids[id]++
			}
		}
		for id := 0; id < want; id++ {
			if ids[id] == 0 {
				t.Fatalf("record %d never delivered", id)
			}
			if ids[id] > 1 && !c.AllowDuplicates {
				t.Fatalf("record %d delivered %d times", id, ids[id])
			}
		}
	}
	t.Run("delivers-all", func(t *testing.T) {
		c.Produce(t, 0, c.N)
		round(t, c.N)
	})
	t.Run("restart-resumes", func(t *testing.T) {
		c.Produce(t, c.N, 2*c.N)
		round(t, 2*c.N)
	})
}

func distinct(c InputCase, rec *Collector) int {
	seen := map[int]bool{}
	for _, p := range rec.Payloads() {
		if id, ok := c.ID(p); ok {
			seen[id] = true
		}
	}
	return len(seen)
}
