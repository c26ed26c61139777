package pack

import (
	"sync/atomic"
)

// Flag bits carried by a Packet.
const (
	// FlagBoundary marks a packet whose Pos may be checkpointed once it and
	// every packet before it on the same stream are done.
	FlagBoundary uint32 = 1 << iota
	// FlagDerived marks a packet made by a filter from a parent packet.
	FlagDerived
)

// Pos is a source position token: an offset (Kafka offset, file offset,
// binlog position) and an optional opaque token (a GTID set, a file name).
// Token is a reusable buffer owned by the packet. The offset of a
// checkpointable position is never math.MinInt64 (the window reserves it).
type Pos struct {
	Offset int64
	Token  []byte
}

// SetToken copies tok into the position's reusable token buffer.
func (p *Pos) SetToken(tok []byte) { p.Token = append(p.Token[:0], tok...) }

// SetTokenString copies tok into the position's reusable token buffer.
func (p *Pos) SetTokenString(tok string) { p.Token = append(p.Token[:0], tok...) }

// Packet is the unit that flows through a pipeline. Packets come from a
// Pool and go back to it when every holder has released them; see doc.go
// for the ownership rules.
type Packet struct {
	// Payload is the packet's body. Inputs decode into it with
	// append(p.Payload[:0], ...) so the buffer is reused.
	Payload []byte
	// Key is an optional routing / partitioning key (reusable buffer).
	Key []byte
	// Ts is the event time in Unix nanoseconds (0 if unknown).
	Ts int64
	// Attrs holds typed attributes (topic, partition, parsed fields...).
	Attrs Attrs
	// Pos is the source position of this packet.
	Pos Pos
	// Seq is the per-stream sequence number, assigned by the engine.
	Seq uint64
	// Flags holds Flag* bits.
	Flags uint32

	// Engine-owned fields. Plugins must not touch them.
	refs   atomic.Int32
	pool   *Pool
	win    *Window
	parent *Packet
	bytes  int64 // bytes accounted against the pool when emitted
	rescap int64 // cap(Payload)+cap(Key) counted in the pool's resident bytes

	// Sent is when the engine handed the packet on from its input (the
	// engine's monotonic clock in nanoseconds, not a wall time;
	// engine-owned, set on the first packet of each batch): outputs
	// sample ack latency from it.
	Sent int64
}

// reset clears every field so a recycled packet carries nothing over. The
// buffers keep their capacity (Pool.trim drops oversized ones first).
func (p *Packet) reset() {
	p.Payload = p.Payload[:0]
	p.Key = p.Key[:0]
	p.Ts = 0
	p.Attrs.Reset()
	p.Pos.Offset = 0
	p.Pos.Token = p.Pos.Token[:0]
	p.Seq = 0
	p.Flags = 0
	// 1 is the resting state: a packet handed out by Get has one holder.
	// The sole-holder release path leaves it at 1: skip the store then.
	if p.refs.Load() != 1 {
		p.refs.Store(1)
	}
	p.win = nil
	p.parent = nil
	p.bytes = 0
	p.Sent = 0
}

// Refs returns the number of holders (diagnostics and copy-on-write
// decisions).
func (p *Packet) Refs() int32 { return p.refs.Load() }

// Shared reports whether more than one holder references the packet, in
// which case it must be copied before it is modified.
func (p *Packet) Shared() bool { return p.refs.Load() > 1 }

// Parent returns the packet p was derived from, or nil.
func (p *Packet) Parent() *Packet { return p.parent }

// Retain adds n holders. The engine calls it at a fan-out point before the
// packet is handed to the n additional branches.
func (p *Packet) Retain(n int32) { p.refs.Add(n) }

// SetRefs sets the holder count; only valid while the caller is the only
// goroutine that can reach p (before it is published).
func (p *Packet) SetRefs(n int32) { p.refs.Store(n) }

// CopyFrom copies content (payload, key, time, attributes, position, flags)
// of src into p, reusing p's buffers. Engine-owned fields are not copied.
func (p *Packet) CopyFrom(src *Packet) {
	p.Payload = append(p.Payload[:0], src.Payload...)
	p.Key = append(p.Key[:0], src.Key...)
	p.Ts = src.Ts
	p.Attrs.CopyFrom(&src.Attrs)
	p.Pos.Offset = src.Pos.Offset
	p.Pos.Token = append(p.Pos.Token[:0], src.Pos.Token...)
	p.Flags = src.Flags
}

// Derive makes child a derived packet of p: the parent gains one holder
// that the child releases when the child itself is done. child must be a
// fresh packet from a pool.
func (p *Packet) Derive(child *Packet) {
	p.refs.Add(1)
	child.parent = p
	child.Flags |= FlagDerived
	child.Ts = p.Ts
	child.Seq = p.Seq
	child.Sent = p.Sent
}

// CloneTo copies p's content into q (a fresh packet from a pool) and moves
// the caller's hold on p to q: p is done only when q is. Filters use it for
// copy-on-write.
func (p *Packet) CloneTo(q *Packet) {
	q.CopyFrom(p)
	q.parent = p
	q.Flags |= FlagDerived
	q.Seq = p.Seq
	q.Sent = p.Sent
}

// Release drops one holder. When the last holder releases the packet, the
// stream window learns it is done, a derived packet releases its parent,
// and the packet goes back to its pool. It returns true when the packet
// was recycled. Releasing a packet more often than it was retained is a
// bug and panics.
func (p *Packet) Release() bool {
	if p.refs.Load() != 1 {
		// Shared: one atomic decrement. The sole holder (refs == 1) skips
		// the store: nobody else can reach the counter, and 1 is the
		// resting state of a pooled packet.
		n := p.refs.Add(-1)
		if n > 0 {
			return false
		}
		if n < 0 {
			panic("BUG: pack: packet released more times than retained")
		}
	}
	p.finish()
	if p.pool != nil {
		p.pool.put(p)
	}
	return true
}

// finish runs the done-side effects of the last release: mark the stream
// window and release the parent.
func (p *Packet) finish() {
	if w := p.win; w != nil {
		w.Done(p)
	}
	if par := p.parent; par != nil {
		par.Release()
	}
}

// finishRun is finish for a Releaser: consecutive packets of one window
// are marked done as one run.
func (p *Packet) finishRun(r *Releaser) {
	if w := p.win; w != nil {
		r.runAdd(w, p)
	}
	if par := p.parent; par != nil {
		// The parent may be recycled by this release: its window mark
		// must not wait behind a run of other packets, so it goes
		// straight to the window.
		par.Release()
	}
}
