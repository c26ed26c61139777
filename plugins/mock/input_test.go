package mock_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

// runMock runs MockInput with the given fields into a recorder until the
// input finishes its count.
func runMock(t *testing.T, fields string) (*mock.Recorder, time.Duration) {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	rec := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.Parse("t.yaml", []byte(fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, %s}
outputs:
  - {name: out, class: Rec, match: gen}
`, fields)), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return rec, time.Since(began)
}

// TestEngineMockInputStreams: one stream (taken and emitted in bursts) and
// several streams (one packet at a time) give every sequence once, in
// order per stream, with the configured keys and payload size.
func TestEngineMockInputStreams(t *testing.T) {
	for _, streams := range []int{1, 3} {
		t.Run(fmt.Sprint(streams), func(t *testing.T) {
			const count = 1000
			rec, _ := runMock(t, fmt.Sprintf("count: %d, payload: 40, keys: 7, streams: %d", count, streams))
			ps, keys := rec.Payloads(), rec.Keys()
			if len(ps) != count*streams {
				t.Fatalf("%d packets, want %d", len(ps), count*streams)
			}
			next := map[string]int64{}
			for i, p := range ps {
				s, seq, ok := mock.ParsePayload(p)
				if !ok || len(p) != 40 {
					t.Fatalf("packet %d: %q", i, p)
				}
				if seq != next[s] {
					t.Fatalf("stream %s: seq %d, want %d", s, seq, next[s])
				}
				next[s]++
				if want := fmt.Sprintf("k%d", seq%7); string(keys[i]) != want {
					t.Fatalf("packet %d key %q, want %q", i, keys[i], want)
				}
			}
		})
	}
}

// TestEngineMockInputRate: rate bounds the generator from above, in both
// loops (a lower bound on the time taken; never an upper one).
func TestEngineMockInputRate(t *testing.T) {
	for _, streams := range []int{1, 2} {
		rec, took := runMock(t, fmt.Sprintf("count: 300, payload: 16, rate: 2000, streams: %d", streams))
		n := rec.Len()
		if n != 300*streams {
			t.Fatalf("%d packets, want %d", n, 300*streams)
		}
		if minimum := time.Duration(n-64) * time.Second / 2000; took < minimum {
			t.Fatalf("streams %d: %d packets at rate 2000/s took %v, less than %v", streams, n, took, minimum)
		}
	}
}

// TestEngineMockInputRateNoCatchUpAfterPause: after a pause the generator
// resumes at its rate; it does not emit the packets it "owes" for the
// paused time (overload tests would see a burst the config never asked for).
func TestEngineMockInputRateNoCatchUpAfterPause(t *testing.T) {
	for _, streams := range []int{1, 2} {
		t.Run(fmt.Sprintf("streams=%d", streams), func(t *testing.T) {
			reg := engine.NewRegistry()
			mock.Register(reg)
			rec := mock.NewRecorder()
			if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
				t.Fatal(err)
			}
			const rate = 2000
			cfg, err := engine.Parse("t.yaml", []byte(fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, payload: 16, rate: %d, streams: %d}
outputs:
  - {name: out, class: Rec, match: gen}
`, rate, streams)), reg)
			if err != nil {
				t.Fatal(err)
			}
			e, err := engine.New(cfg, engine.Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			defer func() { cancel(); <-done }()
			testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > 100 }, "nothing generated")
			if err := e.Pause("gen"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // the paused time the generator must not make up for
			before := rec.Len()
			resumed := time.Now()
			if err := e.Resume("gen"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(250 * time.Millisecond)
			got := rec.Len() - before
			// Upper bound only (a loaded machine emits less, never more):
			// the rate over the elapsed time, plus a pacing slack and a
			// burst or two.
			limit := int(float64(rate)*time.Since(resumed).Seconds()) + 2*128 + 2*64
			if got > limit {
				t.Fatalf("%d packets in the %v after a 1 s pause at rate %d: more than %d, the generator caught up", got, time.Since(resumed), rate, limit)
			}
		})
	}
}
