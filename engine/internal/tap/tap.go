// Package tap samples copies of the packets passing an engine node for the
// admin API's tap. A Sampler is installed on one node's stats (an atomic
// pointer: the hot path pays one load per batch when no tap is set); Offer
// is called by the node's goroutine, Stream by the API request's.
// It sits under engine/internal so that plugins cannot depend on it; the
// engine exposes Record and Options as engine.TapRecord and
// engine.TapOptions.
package tap

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/dbus-project/dbus/pack"
)

// Record is a sampled copy of a packet passing a node.
type Record struct {
	Node    string            `json:"node"`
	Seq     uint64            `json:"seq"`
	Ts      int64             `json:"ts,omitempty"`
	Key     string            `json:"key,omitempty"`
	Payload string            `json:"payload"`
	Size    int               `json:"size"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Limits of a tap.
const (
	MaxPackets      = 10000
	MaxPayloadBytes = 4096
)

// Options bound a tap.
type Options struct {
	Max          int // packets to deliver (1..MaxPackets)
	Every        int // sample one packet in Every (>= 1)
	PayloadBytes int // payload bytes kept per record (0: 1024)
}

// Sampler is an active tap on one node.
type Sampler struct {
	ch        chan Record
	max       int
	every     uint64
	seen      atomic.Uint64
	remaining atomic.Int64
	maxBytes  int
}

// NewSampler checks opts and returns a sampler for them.
func NewSampler(opts Options) (*Sampler, error) {
	if opts.Max < 1 || opts.Max > MaxPackets {
		return nil, fmt.Errorf("tap max %d out of range [1, %d]", opts.Max, MaxPackets)
	}
	if opts.Every < 1 {
		opts.Every = 1
	}
	if opts.PayloadBytes <= 0 {
		opts.PayloadBytes = 1024
	}
	if opts.PayloadBytes > MaxPayloadBytes {
		return nil, fmt.Errorf("tap payload bytes %d over the limit %d", opts.PayloadBytes, MaxPayloadBytes)
	}
	s := &Sampler{ch: make(chan Record, 256), max: opts.Max, every: uint64(opts.Every), maxBytes: opts.PayloadBytes}
	s.remaining.Store(int64(opts.Max))
	return s, nil
}

// Offer samples batch (node's packets). It never blocks: when the reader
// is slow, records are skipped rather than slowing the pipeline.
func (s *Sampler) Offer(node string, batch []*pack.Packet) {
	for _, p := range batch {
		if s.seen.Add(1)%s.every != 0 {
			continue
		}
		if s.remaining.Add(-1) < 0 {
			return
		}
		body := p.Payload
		if len(body) > s.maxBytes {
			body = body[:s.maxBytes]
		}
		r := Record{Node: node, Seq: p.Seq, Ts: p.Ts, Key: string(p.Key), Payload: string(body), Size: len(p.Payload)}
		if n := p.Attrs.Len(); n > 0 {
			r.Attrs = make(map[string]string, n)
			for i := 0; i < n; i++ {
				a := p.Attrs.At(i)
				r.Attrs[string(a.K)] = string(a.AppendText(nil))
			}
		}
		select {
		case s.ch <- r:
		default:
		}
	}
}

// Stream delivers the sampled records until Max were sent or ctx ends,
// then calls done (which uninstalls the sampler) and closes the channel.
// The goroutine it starts ends on one of those two conditions.
func (s *Sampler) Stream(ctx context.Context, done func()) <-chan Record {
	out := make(chan Record)
	go func() {
		defer close(out)
		defer done()
		sent := 0
		for sent < s.max {
			select {
			case <-ctx.Done():
				return
			case r := <-s.ch:
				select {
				case out <- r:
					sent++
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
