package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

// stepInput emits `per` packets each time it receives a step.
type stepInput struct {
	step    chan struct{}
	per     int
	data    []byte
	batched bool // NewPackets + EmitBatch instead of NewPacket + Emit
}

func (s *stepInput) Run(ctx context.Context, ic engine.InputContext) error {
	st, err := ic.Stream("")
	if err != nil {
		return err
	}
	var seq int64
	buf := make([]*pack.Packet, 64) // once: passed to an interface, it escapes
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.step:
		}
		if s.batched {
			for left := s.per; left > 0; {
				n, err := ic.NewPackets(ctx, buf[:min(left, len(buf))])
				if err != nil {
					return nil
				}
				for _, p := range buf[:n] {
					p.Payload = append(p.Payload[:0], s.data...)
					p.Key = append(p.Key[:0], "key"...)
					seq++
					p.Pos.Offset = seq
					p.Flags |= pack.FlagBoundary
				}
				if err := ic.EmitBatch(ctx, st, buf[:n]); err != nil {
					return nil
				}
				left -= n
			}
			if err := ic.Flush(ctx); err != nil {
				return err
			}
			continue
		}
		for i := 0; i < s.per; i++ {
			p, err := ic.NewPacket(ctx)
			if err != nil {
				return nil
			}
			p.Payload = append(p.Payload[:0], s.data...)
			p.Key = append(p.Key[:0], "key"...)
			seq++
			p.Pos.Offset = seq
			p.Flags |= pack.FlagBoundary
			if err := ic.Emit(ctx, st, p); err != nil {
				return nil
			}
		}
		if err := ic.Flush(ctx); err != nil {
			return err
		}
	}
}

// countOutput counts acked packets.
type countOutput struct{ n *atomic.Int64 }

func (c countOutput) Write(_ context.Context, b []*pack.Packet) error {
	c.n.Add(int64(len(b)))
	return nil
}

// stepEngine runs input -> MockFilter -> counting output (through a ring)
// with a stepping input of per packets a step; step moves one step and
// waits until the output acked it; stop ends the engine.
func stepEngine(t testing.TB, per, pool int, batched ...bool) (step func(), stop func()) {
	t.Helper()
	return stepEngineWith(t, per, pool, len(batched) > 0 && batched[0], engine.Options{})
}

// stepEngineWith is stepEngine with engine options.
func stepEngineWith(t testing.TB, per, pool int, batched bool, opts engine.Options) (step func(), stop func()) {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	in := &stepInput{step: make(chan struct{}), per: per, data: make([]byte, 128), batched: batched}
	var count atomic.Int64
	reg.MustRegister(engine.Spec{Class: "Step", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return in, nil }})
	reg.MustRegister(engine.Spec{Class: "Count", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return countOutput{&count}, nil }})
	e := newEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 1h, ring: 4096}
inputs:
  - {name: in, class: Step, pool: %d}
filters:
  - {name: f, class: MockFilter, match: in}
outputs:
  - {name: out, class: Count, match: f}
`, pool), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var want int64
	step = func() {
		in.step <- struct{}{}
		want += int64(in.per)
		for count.Load() < want {
			runtime.Gosched()
		}
	}
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	return step, stop
}

func TestEngineAllocsPerPacketZero(t *testing.T) {
	t.Run("per-packet", func(t *testing.T) { testAllocsPerPacketZero(t, false) })
	t.Run("batched", func(t *testing.T) { testAllocsPerPacketZero(t, true) })
	// A cluster member's lease check (an atomic deadline read per output
	// batch) allocates nothing either.
	var deadline atomic.Int64
	deadline.Store(time.Now().Add(time.Hour).UnixNano())
	lease := func() bool { return time.Now().UnixNano() < deadline.Load() }
	t.Run("lease", func(t *testing.T) { testAllocsPerPacketZero(t, false, engine.Options{Lease: lease}) })
}

func testAllocsPerPacketZero(t *testing.T, batched bool, opts ...engine.Options) {
	const per = 256
	var o engine.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	step, stop := stepEngineWith(t, per, 1024, batched, o)
	for i := 0; i < 16; i++ { // warm every pooled packet
		step()
	}
	allocs := testing.AllocsPerRun(100, step)
	stop()
	// One step moves 256 packets input -> filter -> output and acks them.
	if allocs != 0 {
		t.Fatalf("%.2f allocations per step of %d packets (%.4f per packet), want 0", allocs, per, allocs/per)
	}
}
