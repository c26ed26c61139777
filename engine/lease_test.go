package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// loopInput emits packets with offsets 1, 2, ... until stopped.
type loopInput struct{}

func (loopInput) Run(ctx context.Context, ic engine.InputContext) error {
	st, err := ic.Stream("")
	if err != nil {
		return err
	}
	for seq := int64(1); ; seq++ {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = append(p.Payload[:0], "x"...)
		p.Pos.Offset = seq
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, st, p); err != nil {
			return nil
		}
	}
}

// leaseOutput counts written packets; on its 10th batch it revokes the
// lease, and it counts every batch written after that.
type leaseOutput struct {
	lease          *atomic.Bool
	batches, after atomic.Int64
	packets        atomic.Int64
}

func (o *leaseOutput) Write(_ context.Context, b []*pack.Packet) error {
	if !o.lease.Load() {
		o.after.Add(1)
	}
	o.packets.Add(int64(len(b)))
	if o.batches.Add(1) == 10 {
		o.lease.Store(false)
	}
	return nil
}

// TestEngineLeaseStopsWrites: once Options.Lease reports false, no batch
// reaches an output any more, the inputs stop, Run returns
// ErrLeaseExpired without being cancelled, and the checkpoint never
// passes what was written (the rest is read again by the next owner).
func TestEngineLeaseStopsWrites(t *testing.T) {
	for _, inline := range []bool{false, true} {
		reg := engine.NewRegistry()
		var lease atomic.Bool
		lease.Store(true)
		out := &leaseOutput{lease: &lease}
		reg.MustRegister(engine.Spec{Class: "Loop", Kind: engine.KindInput,
			NewInput: func(*engine.Conf) (engine.Input, error) { return loopInput{}, nil }})
		reg.MustRegister(engine.Spec{Class: "LeaseOut", Kind: engine.KindOutput,
			NewOutput: func(*engine.Conf) (engine.Output, error) { return out, nil }})
		store := engine.NewMemoryStore()
		conf := `
engine: {checkpoint_interval: 10ms, batch: 16}
inputs:
  - {name: in, class: Loop, pool: 256}
outputs:
  - {name: out, class: LeaseOut, match: in}
`
		if inline {
			conf = `
engine: {checkpoint_interval: 10ms, batch: 16, fuse_outputs: true}
inputs:
  - {name: in, class: Loop, pool: 256}
outputs:
  - {name: out, class: LeaseOut, match: in}
`
		}
		e := newEngine(t, reg, conf, engine.Options{Store: store, Lease: lease.Load})
		done := make(chan error, 1)
		go func() { done <- e.Run(context.Background()) }()
		select {
		case err := <-done:
			if !errors.Is(err, engine.ErrLeaseExpired) {
				t.Fatalf("inline=%v: Run returned %v, want ErrLeaseExpired", inline, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("inline=%v: Run did not stop within 10s of the lease running out", inline)
		}
		if n := out.after.Load(); n != 0 {
			t.Errorf("inline=%v: %d batches written after the lease ran out", inline, n)
		}
		cp, ok, err := store.Load("in")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("inline=%v: no checkpoint saved for what was written", inline)
		}
		if cp.Offset > out.packets.Load() {
			t.Errorf("inline=%v: checkpoint %d past the %d packets written", inline, cp.Offset, out.packets.Load())
		}
		t.Logf("inline=%v: %d packets written, checkpoint %d (ok %v)", inline, out.packets.Load(), cp.Offset, ok)
	}
}
