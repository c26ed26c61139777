package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// holdOut completes each batch 2 ms after WriteAsync and records the most
// batches it held at once; its in_flight default is def.
type holdOut struct {
	def      int
	mu       sync.Mutex
	held, hi int
}

func (h *holdOut) DefaultInFlight() int { return h.def }

func (h *holdOut) Write(context.Context, []*pack.Packet) error { return errors.New("sync path unused") }

func (h *holdOut) WriteAsync(_ context.Context, _ []*pack.Packet, c engine.Completion) {
	h.mu.Lock()
	h.held++
	h.hi = max(h.hi, h.held)
	h.mu.Unlock()
	go func() {
		time.Sleep(2 * time.Millisecond)
		h.mu.Lock()
		h.held--
		h.mu.Unlock()
		c.Done(nil)
	}()
}

// An AsyncOutput with a DefaultInFlight gets that many batches in flight
// when the config gives no in_flight (KafkaOutput: 16), and the config's
// in_flight when it does.
func TestEngineInFlightDefaulter(t *testing.T) {
	for _, tc := range []struct {
		setting string
		want    int
	}{{"", 6}, {", in_flight: 3", 3}} {
		h := &holdOut{def: 6}
		reg := testRegistry(t, nil)
		reg.MustRegister(engine.Spec{Class: "Hold", Kind: engine.KindOutput,
			NewOutput: func(*engine.Conf) (engine.Output, error) { return h, nil }})
		_, err := run(t, reg, fmt.Sprintf(`
engine: {batch: 10}
inputs:
  - {name: gen, class: MockInput, count: 5000, payload: 8}
outputs:
  - {name: out, class: Hold, match: gen%s}
`, tc.setting), engine.NewMemoryStore(), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if h.hi != tc.want {
			t.Fatalf("in_flight %q: at most %d batches held at once, want %d", tc.setting, h.hi, tc.want)
		}
	}
}
