package pack

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/ring"
)

// PoolConfig bounds a Pool.
type PoolConfig struct {
	// Count is the number of packets (preallocated). Must be >= 1.
	Count int
	// MaxBytes bounds the payload+key bytes of packets that are out of the
	// pool and have been accounted (see Account), and the capacity of the
	// payload+key buffers packets keep when they come back (Resident): a
	// returning packet whose buffers grew while the pool already keeps
	// MaxBytes has them dropped. Resident payload memory is therefore at
	// most about MaxBytes kept plus what is out of the pool. 0 means no
	// byte bound.
	MaxBytes int64
	// MaxPacketBytes: a released packet whose buffers grew beyond this many
	// bytes has them dropped instead of keeping them pooled. 0 means 1 MiB.
	MaxPacketBytes int
	// BufSize preallocates each packet's payload buffer capacity.
	BufSize int
}

// Pool is a bounded set of reusable packets owned by one Input (or one
// filter goroutine). One goroutine takes packets (Get); any goroutine
// returns them (through Packet.Release or a Releaser).
type Pool struct {
	free      *ring.Ring[*Packet]
	slab      []Packet
	maxBytes  int64
	maxPacket int
	outBytes  atomic.Int64
	gets      atomic.Uint64 // packets handed out (metrics)
	// resident is the capacity of the payload+key buffers the pool's
	// packets held when they last came back (Packet.rescap summed); with
	// maxBytes > 0 it stays under maxBytes plus the slab (see keep).
	resident atomic.Int64
	dropped  atomic.Uint64 // buffers dropped to keep resident under maxBytes

	cache []*Packet // consumer-side batch cache (owner goroutine only)
	head  int
	// stack holds packets recycled by the owner goroutine itself (an
	// inline output acking in the input's goroutine). Get takes from it
	// first, last in first out, so the same few packets cycle while they
	// are still in the CPU cache instead of walking the whole pool.
	stack []*Packet
}

// NewPool preallocates cfg.Count packets.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Count < 1 || cfg.Count > 1<<22 {
		return nil, fmt.Errorf("pool: count %d out of range [1, %d]", cfg.Count, 1<<22)
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("pool: max bytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxPacketBytes <= 0 {
		cfg.MaxPacketBytes = 1 << 20
	}
	if cfg.BufSize < 0 || cfg.BufSize > cfg.MaxPacketBytes {
		return nil, fmt.Errorf("pool: buffer size %d out of range [0, %d]", cfg.BufSize, cfg.MaxPacketBytes)
	}
	// The count is rounded up to a power of two so the free ring is
	// exactly full when every packet is home: a packet returned twice
	// then overflows it and is caught.
	capacity := 2
	for capacity < cfg.Count {
		capacity <<= 1
	}
	cfg.Count = capacity
	r, err := ring.New[*Packet](capacity, ring.MultiProducer)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		free:      r,
		slab:      make([]Packet, cfg.Count),
		maxBytes:  cfg.MaxBytes,
		maxPacket: cfg.MaxPacketBytes,
		cache:     make([]*Packet, 0, 64),
	}
	batch := make([]*Packet, 0, 256)
	var buf []byte
	if cfg.BufSize > 0 {
		buf = make([]byte, cfg.BufSize*cfg.Count)
	}
	for i := range p.slab {
		pk := &p.slab[i]
		pk.pool = p
		pk.refs.Store(1)
		if buf != nil {
			pk.Payload = buf[i*cfg.BufSize : i*cfg.BufSize : (i+1)*cfg.BufSize]
			pk.rescap = int64(cfg.BufSize)
		}
		batch = append(batch, pk)
		if len(batch) == cap(batch) || i == len(p.slab)-1 {
			if _, err := r.TryPut(batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	p.resident.Store(int64(cfg.BufSize) * int64(cfg.Count))
	return p, nil
}

// Cap returns the number of packets the pool owns.
func (p *Pool) Cap() int { return len(p.slab) }

// Free returns the number of packets in the pool's free ring (safe from
// any goroutine; more may sit in the owner's local cache and stack).
func (p *Pool) Free() int { return p.free.Len() }

// OutBytes returns the accounted bytes of packets out of the pool.
func (p *Pool) OutBytes() int64 { return p.outBytes.Load() }

// Gets returns how many packets the pool has handed out.
func (p *Pool) Gets() uint64 { return p.gets.Load() }

// Resident returns the capacity of the payload and key buffers the pool's
// packets held when they last came back: the payload memory the pool keeps
// alive (packets out of the pool may have grown theirs since).
func (p *Pool) Resident() int64 { return p.resident.Load() }

// DroppedBuffers returns how many times a returning packet's grown
// buffers were dropped to keep Resident under the byte bound.
func (p *Pool) DroppedBuffers() uint64 { return p.dropped.Load() }

// Get returns a packet with one holder (the caller), blocking while the
// pool is empty or over its byte bound: that is back pressure. It returns
// ctx.Err() when ctx ends first. Only the pool's owner goroutine calls Get.
func (p *Pool) Get(ctx context.Context) (*Packet, error) {
	if n := len(p.stack); n > 0 {
		pk := p.stack[n-1]
		p.stack[n-1] = nil
		p.stack = p.stack[:n-1]
		return pk, nil
	}
	if p.head == len(p.cache) {
		if err := p.refill(ctx); err != nil {
			return nil, err
		}
	}
	pk := p.cache[p.head]
	p.cache[p.head] = nil
	p.head++
	return pk, nil
}

// TryGet returns a packet if one is free right now, else nil.
func (p *Pool) TryGet() *Packet {
	if pk := p.TryGetLocal(); pk != nil {
		return pk
	}
	return p.tryGetShared()
}

// TryGetLocal takes a packet from the owner's stack of recycled packets
// (see Releaser.Local), nil when it is empty; only the pool's owner
// goroutine may call it. Small enough to inline: callers try it before
// TryGet.
func (p *Pool) TryGetLocal() *Packet {
	if n := len(p.stack); n > 0 {
		// The stack only holds slab packets, which the slab keeps alive:
		// the slot above len needs no clearing.
		pk := p.stack[n-1]
		p.stack = p.stack[:n-1]
		return pk
	}
	return nil
}

// TryGetLocalN moves up to len(dst) packets from the owner's stack into
// dst and returns how many; only the pool's owner goroutine may call it.
func (p *Pool) TryGetLocalN(dst []*Packet) int {
	n := min(len(dst), len(p.stack))
	top := len(p.stack)
	// Most recently recycled first, as TryGetLocal hands them out.
	for i := 0; i < n; i++ {
		dst[i] = p.stack[top-1-i]
	}
	p.stack = p.stack[:top-n]
	return n
}

// tryGetShared is TryGet from the free ring (through the cache).
func (p *Pool) tryGetShared() *Packet {
	if p.head == len(p.cache) {
		if p.maxBytes > 0 && p.outBytes.Load() >= p.maxBytes {
			return nil
		}
		n, _ := p.free.TryGet(p.cache[:cap(p.cache)])
		if n == 0 {
			return nil
		}
		p.cache, p.head = p.cache[:n], 0
		p.gets.Add(uint64(n))
	}
	pk := p.cache[p.head]
	p.cache[p.head] = nil
	p.head++
	return pk
}

func (p *Pool) refill(ctx context.Context) error {
	if p.maxBytes > 0 {
		wait := 20 * time.Microsecond
		for p.outBytes.Load() >= p.maxBytes {
			if err := ctx.Err(); err != nil {
				return err
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if wait < time.Millisecond {
				wait *= 2
			}
		}
	}
	n, err := p.free.Get(ctx, p.cache[:cap(p.cache)])
	if err != nil {
		return err
	}
	p.cache, p.head = p.cache[:n], 0
	p.gets.Add(uint64(n))
	return nil
}

// Account records pk's payload and key bytes as out of the pool and
// returns them; the caller adds the sum of a batch with AddOut. The bytes
// are given back when pk is recycled.
func Account(pk *Packet) int64 {
	n := int64(len(pk.Payload) + len(pk.Key))
	pk.bytes += n
	return n
}

// AddOut adds n accounted bytes to the pool's out-of-pool count (once per
// batch).
func (p *Pool) AddOut(n int64) { p.outBytes.Add(n) }

// prepare resets pk for reuse and returns the bytes it had accounted.
func (p *Pool) prepare(pk *Packet) int64 {
	b := pk.bytes
	if p.oversized(pk) {
		p.trim(pk)
	}
	if int64(cap(pk.Payload)+cap(pk.Key)) != pk.rescap {
		p.keep(pk)
	}
	pk.reset()
	return b
}

// keep accounts a returning packet whose buffer capacity changed since it
// last came back: the change is added to resident, unless the pool keeps
// maxBytes already and the buffers grew, in which case they are dropped
// (the next user allocates afresh; the garbage collector frees them). Off
// the hot path: a packet that reuses its buffers never comes here.
func (p *Pool) keep(pk *Packet) {
	c := int64(cap(pk.Payload) + cap(pk.Key))
	d := c - pk.rescap
	if p.maxBytes > 0 && d > 0 && p.resident.Load()+d > p.maxBytes {
		pk.Payload, pk.Key = nil, nil
		p.dropped.Add(1)
		c, d = 0, -pk.rescap
	}
	pk.rescap = c
	if d != 0 {
		p.resident.Add(d)
	}
}

// oversized reports whether pk holds a buffer the pool does not keep (or
// attributes, which trim checks one by one).
func (p *Pool) oversized(pk *Packet) bool {
	return cap(pk.Payload) > p.maxPacket || cap(pk.Key) > p.maxPacket || cap(pk.Pos.Token) > p.maxPacket || cap(pk.Attrs.a) > 0
}

// trim drops pk's buffers larger than the pool keeps.
func (p *Pool) trim(pk *Packet) {
	if cap(pk.Payload) > p.maxPacket {
		pk.Payload = nil
	}
	if cap(pk.Key) > p.maxPacket {
		pk.Key = nil
	}
	if cap(pk.Pos.Token) > p.maxPacket {
		pk.Pos.Token = nil
	}
	pk.Attrs.shrink(p.maxPacket)
}

// put returns one packet to the pool.
func (p *Pool) put(pk *Packet) {
	if b := p.prepare(pk); b != 0 {
		p.outBytes.Add(-b)
	}
	one := [1]*Packet{pk}
	if n, _ := p.free.TryPut(one[:]); n != 1 {
		// The ring is sized to hold every packet the pool owns, so a
		// full ring means a packet was returned twice.
		panic("BUG: pack: pool overflow: packet returned twice")
	}
}

// putLocal returns prepared packets to the owner's stack; only the pool's
// owner goroutine may call it (see Releaser.Local).
func (p *Pool) putLocal(pks []*Packet, bytes int64) {
	if bytes != 0 {
		p.outBytes.Add(-bytes)
	}
	if len(p.stack)+len(pks) > cap(p.stack) {
		// More than the pool owns: some packet was returned twice.
		if len(p.stack)+len(pks) > len(p.slab) {
			panic("BUG: pack: pool overflow: packet returned twice")
		}
		grown := make([]*Packet, len(p.stack), len(p.slab))
		copy(grown, p.stack)
		p.stack = grown
	}
	p.stack = append(p.stack, pks...)
}

// putBatch returns packets that were prepared by the caller.
func (p *Pool) putBatch(pks []*Packet, bytes int64) {
	if bytes != 0 {
		p.outBytes.Add(-bytes)
	}
	if n, _ := p.free.TryPut(pks); n != len(pks) {
		panic("BUG: pack: pool overflow: packet returned twice")
	}
}

// Close wakes a goroutine blocked in Get; later Gets fail.
func (p *Pool) Close() { p.free.Close() }

// Releaser releases packets in bulk: recycled packets are returned to their
// pool one batch at a time instead of one ring publish per packet. A
// Releaser belongs to one goroutine; call Flush before that goroutine
// blocks or exits.
type Releaser struct {
	pool  *Pool
	local *Pool // the pool whose owner goroutine runs this Releaser, if any
	buf   []*Packet
	bytes int64
	run   struct {
		win        *Window
		start, end uint64
		off        int64 // newest boundary in the run, or noBoundary
		open       bool  // the run's last packet is not a boundary
	}
}

// flushRun marks the pending run of done sequences.
func (r *Releaser) flushRun() {
	if r.run.win != nil {
		r.run.win.doneRun(r.run.start, r.run.end-r.run.start, r.run.off, r.run.open)
		r.run.win = nil
	}
}

// runAdd adds pk (tracked by w, done) to the pending run, or flushes the
// run and starts a new one. pk's position is read here, before pk is
// reset.
func (r *Releaser) runAdd(w *Window, pk *Packet) {
	if r.run.win == w && pk.Seq == r.run.end && r.run.end-r.run.start <= w.mask {
		r.run.end++
	} else {
		r.runStart(w, pk)
	}
	if pk.Flags&FlagBoundary != 0 {
		r.run.off = pk.Pos.Offset
		r.run.open = false
		w.setTok(r.run.start, pk.Pos.Token)
	} else {
		r.run.open = true
	}
}

func (r *Releaser) runStart(w *Window, pk *Packet) {
	r.flushRun()
	r.run.win, r.run.start, r.run.end, r.run.off = w, pk.Seq, pk.Seq+1, noBoundary
}

// NewReleaser returns a Releaser buffering up to n packets.
func NewReleaser(n int) *Releaser {
	if n < 1 {
		n = 1
	}
	return &Releaser{buf: make([]*Packet, 0, n)}
}

// Release drops one holder of pk, recycling it in bulk if it was the last.
func (r *Releaser) Release(pk *Packet) {
	if pk.refs.Load() != 1 {
		n := pk.refs.Add(-1)
		if n > 0 {
			return
		}
		if n < 0 {
			panic("BUG: pack: packet released more times than retained")
		}
	}
	pk.finishRun(r)
	pl := pk.pool
	if pl == nil {
		return
	}
	if pl != r.pool || len(r.buf) == cap(r.buf) {
		r.Flush()
		r.pool = pl
	}
	r.bytes += pl.prepare(pk)
	r.buf = append(r.buf, pk)
}

// Local tells r that it runs in the owner goroutine of pool p: packets of
// p it recycles go straight to p's owner stack (LIFO, cache-warm) instead
// of through the free ring.
func (r *Releaser) Local(p *Pool) { r.local = p }

// ReleaseAll releases every packet of batch.
func (r *Releaser) ReleaseAll(batch []*Packet) {
	for _, pk := range batch {
		// Fast path, inlined: the sole holder of a pooled packet with no
		// parent (the common case at an output). Anything else takes
		// Release.
		pl := pk.pool
		if pk.refs.Load() != 1 || pk.parent != nil || pl == nil {
			r.Release(pk)
			continue
		}
		if w := pk.win; w != nil {
			// runAdd, inlined.
			if r.run.win == w && pk.Seq == r.run.end && r.run.end-r.run.start <= w.mask {
				r.run.end++
			} else {
				r.runStart(w, pk)
			}
			if pk.Flags&FlagBoundary != 0 {
				r.run.off = pk.Pos.Offset
				r.run.open = false
				w.setTok(r.run.start, pk.Pos.Token)
			} else {
				r.run.open = true
			}
		}
		if pl != r.pool || len(r.buf) == cap(r.buf) {
			r.Flush()
			r.pool = pl
		}
		// prepare, inlined up to the one call that clears the packet.
		r.bytes += pk.bytes
		if pl.oversized(pk) {
			pl.trim(pk)
		}
		if int64(cap(pk.Payload)+cap(pk.Key)) != pk.rescap {
			pl.keep(pk)
		}
		pk.reset()
		r.buf = append(r.buf, pk)
	}
}

// Flush marks pending done runs and returns buffered packets to their
// pool.
func (r *Releaser) Flush() {
	r.flushRun()
	if len(r.buf) > 0 {
		if r.pool == r.local {
			r.pool.putLocal(r.buf, r.bytes)
		} else {
			r.pool.putBatch(r.buf, r.bytes)
		}
		clear(r.buf)
		r.buf = r.buf[:0]
		r.bytes = 0
	}
}
