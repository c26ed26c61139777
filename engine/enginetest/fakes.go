package enginetest

import (
	"context"
	"io"
	"log/slog"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// FakeContext is an engine.TickContext (and so a FilterContext) for unit
// tests of filters: it records what the filter did. Packets from Derive
// and New are plain, unpooled packets.
type FakeContext struct {
	Emitted   []*pack.Packet
	Dropped   map[string]int // drops by reason
	DropOrder []string       // reasons in the order of the drops
	Consumed  int
}

var _ engine.TickContext = (*FakeContext)(nil)

// Name implements engine.FilterContext.
func (f *FakeContext) Name() string { return "test" }

// Log implements engine.FilterContext (discarding).
func (f *FakeContext) Log() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Emit implements engine.FilterContext.
func (f *FakeContext) Emit(p *pack.Packet) { f.Emitted = append(f.Emitted, p) }

// Drop implements engine.FilterContext.
func (f *FakeContext) Drop(p *pack.Packet, reason string) {
	if f.Dropped == nil {
		f.Dropped = map[string]int{}
	}
	f.Dropped[reason]++
	f.DropOrder = append(f.DropOrder, reason)
}

// Consume implements engine.FilterContext.
func (f *FakeContext) Consume(p *pack.Packet) { f.Consumed++ }

// Writable implements engine.FilterContext: the test owns every packet.
func (f *FakeContext) Writable(p *pack.Packet) (*pack.Packet, error) { return p, nil }

// Derive implements engine.FilterContext.
func (f *FakeContext) Derive(parent *pack.Packet) (*pack.Packet, error) { return &pack.Packet{}, nil }

// New implements engine.TickContext.
func (f *FakeContext) New() (*pack.Packet, error) { return &pack.Packet{}, nil }

// Reset forgets what was recorded.
func (f *FakeContext) Reset() {
	f.Emitted, f.DropOrder, f.Dropped, f.Consumed = f.Emitted[:0], f.DropOrder[:0], nil, 0
}

// SliceInput emits one packet per setter, in order, each a boundary at
// offset i+1 on the default stream, then finishes (the engine drains and
// stops).
type SliceInput struct{ Set []func(p *pack.Packet) }

// Run implements engine.Input.
func (in *SliceInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	for i, set := range in.Set {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return err
		}
		set(p)
		p.Pos = pack.Pos{Offset: int64(i + 1)}
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return err
		}
	}
	return ic.Flush(ctx)
}
