package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/dbus-project/dbus/engine/internal/tap"
	"github.com/dbus-project/dbus/pack"
)

// TapRecord is a sampled copy of a packet passing a node.
type TapRecord = tap.Record

// TapOptions bound a tap.
type TapOptions = tap.Options

// Tap limits.
const (
	MaxTapPackets      = tap.MaxPackets
	MaxTapPayloadBytes = tap.MaxPayloadBytes
)

// Tap streams sampled copies of the packets passing node (what an input
// emits, what a filter emits, what an output receives) until opts.Max
// records were sent or ctx ends; the channel is then closed. One tap per
// node at a time. An unused tap costs nothing (engine/internal/tap).
func (e *Engine) Tap(ctx context.Context, node string, opts TapOptions) (<-chan TapRecord, error) {
	st, ok := e.stats[node]
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", node)
	}
	t, err := tap.NewSampler(opts)
	if err != nil {
		return nil, err
	}
	if !st.tap.CompareAndSwap(nil, t) {
		return nil, errors.New("a tap is already active on " + node)
	}
	return t.Stream(ctx, func() { st.tap.CompareAndSwap(t, nil) }), nil
}

// tapBatch offers batch to node's tap, if any.
func (s *NodeStats) tapBatch(batch []*pack.Packet) {
	if t := s.tap.Load(); t != nil {
		t.Offer(s.name, batch)
	}
}
