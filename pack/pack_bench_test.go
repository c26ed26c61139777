package pack

import (
	"context"
	"testing"
)

// BenchmarkPackPoolGetRelease: take, fill, track and recycle packets in
// batches of 256 through a pool, a window and a Releaser (the engine's
// per-packet bookkeeping), against BenchmarkPackAllocBaseline.
func BenchmarkPackPoolGetRelease(b *testing.B) {
	p, _ := NewPool(PoolConfig{Count: 4096, BufSize: 128})
	w, _ := NewWindow(1 << 14)
	ctx := context.Background()
	rel := NewReleaser(256)
	batch := make([]*Packet, 0, 256)
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		for i := 0; i < 256 && n < b.N; i, n = i+1, n+1 {
			pk, _ := p.Get(ctx)
			pk.Payload = append(pk.Payload[:0], payload...)
			pk.Flags |= FlagBoundary
			pk.Pos.Offset = int64(n)
			w.Track(ctx, pk)
			batch = append(batch, pk)
		}
		w.Publish()
		rel.ReleaseAll(batch)
		rel.Flush()
		batch = batch[:0]
		w.Advance()
	}
}

var sink []*Packet

// BenchmarkPackAllocBaseline: the naive alternative, a new packet and
// payload per message left to the garbage collector.
func BenchmarkPackAllocBaseline(b *testing.B) {
	payload := make([]byte, 128)
	batch := make([]*Packet, 0, 256)
	b.ReportAllocs()
	for n := 0; n < b.N; {
		for i := 0; i < 256 && n < b.N; i, n = i+1, n+1 {
			pk := &Packet{Payload: append([]byte(nil), payload...)}
			pk.Pos.Offset = int64(n)
			batch = append(batch, pk)
		}
		sink = batch
		batch = make([]*Packet, 0, 256)
	}
}

// BenchmarkPackWindowAdvance: out-of-order single acks, then advance.
func BenchmarkPackWindowAdvance(b *testing.B) {
	w, _ := NewWindow(1 << 12)
	ctx := context.Background()
	ps := make([]Packet, 1024)
	b.ReportAllocs()
	for n := 0; n < b.N; n += len(ps) {
		for i := range ps {
			ps[i].Flags = FlagBoundary
			w.Track(ctx, &ps[i])
		}
		w.Publish()
		for i := len(ps) - 1; i >= 0; i-- {
			w.Done(&ps[i])
		}
		w.Advance()
	}
}
