package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/dbus-project/dbus/pack"
)

// TapRecord is a sampled copy of a packet passing a node.
type TapRecord struct {
	Node    string            `json:"node"`
	Seq     uint64            `json:"seq"`
	Ts      int64             `json:"ts,omitempty"`
	Key     string            `json:"key,omitempty"`
	Payload string            `json:"payload"`
	Size    int               `json:"size"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Tap limits.
const (
	MaxTapPackets      = 10000
	MaxTapPayloadBytes = 4096
)

// tapState is an active tap on one node. The hot path pays one atomic
// load per batch when no tap is set.
type tapState struct {
	ch        chan TapRecord
	every     uint64
	seen      atomic.Uint64
	remaining atomic.Int64
	maxBytes  int
	closed    atomic.Bool
}

func (t *tapState) offer(node string, batch []*pack.Packet) {
	for _, p := range batch {
		if t.seen.Add(1)%t.every != 0 {
			continue
		}
		if t.remaining.Add(-1) < 0 {
			return
		}
		body := p.Payload
		if len(body) > t.maxBytes {
			body = body[:t.maxBytes]
		}
		r := TapRecord{Node: node, Seq: p.Seq, Ts: p.Ts, Key: string(p.Key), Payload: string(body), Size: len(p.Payload)}
		if n := p.Attrs.Len(); n > 0 {
			r.Attrs = make(map[string]string, n)
			for i := 0; i < n; i++ {
				a := p.Attrs.At(i)
				r.Attrs[string(a.K)] = string(a.AppendText(nil))
			}
		}
		select {
		case t.ch <- r:
		default: // the reader is slow: skip rather than slow the pipeline
		}
	}
}

// TapOptions bound a tap.
type TapOptions struct {
	Max          int // packets to deliver (1..MaxTapPackets)
	Every        int // sample one packet in Every (>= 1)
	PayloadBytes int // payload bytes kept per record (0: 1024)
}

// Tap streams sampled copies of the packets passing node (what an input
// emits, what a filter emits, what an output receives) until opts.Max
// records were sent or ctx ends; the channel is then closed. One tap per
// node at a time. An unused tap costs nothing.
func (e *Engine) Tap(ctx context.Context, node string, opts TapOptions) (<-chan TapRecord, error) {
	st, ok := e.stats[node]
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", node)
	}
	if opts.Max < 1 || opts.Max > MaxTapPackets {
		return nil, fmt.Errorf("tap max %d out of range [1, %d]", opts.Max, MaxTapPackets)
	}
	if opts.Every < 1 {
		opts.Every = 1
	}
	if opts.PayloadBytes <= 0 {
		opts.PayloadBytes = 1024
	}
	if opts.PayloadBytes > MaxTapPayloadBytes {
		return nil, fmt.Errorf("tap payload bytes %d over the limit %d", opts.PayloadBytes, MaxTapPayloadBytes)
	}
	t := &tapState{ch: make(chan TapRecord, 256), every: uint64(opts.Every), maxBytes: opts.PayloadBytes}
	t.remaining.Store(int64(opts.Max))
	if !st.tap.CompareAndSwap(nil, t) {
		return nil, errors.New("a tap is already active on " + node)
	}
	out := make(chan TapRecord)
	go func() {
		defer close(out)
		defer st.tap.CompareAndSwap(t, nil)
		sent := 0
		for sent < opts.Max {
			select {
			case <-ctx.Done():
				return
			case r := <-t.ch:
				select {
				case out <- r:
					sent++
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// tapBatch offers batch to node's tap, if any.
func (s *NodeStats) tapBatch(batch []*pack.Packet) {
	if t := s.tap.Load(); t != nil {
		t.offer(s.name, batch)
	}
}
