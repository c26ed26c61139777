package ring

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Put and TryPut once the ring is closed, and by Get,
// GetWait and TryGet once the ring is closed and every item has been read.
var ErrClosed = errors.New("ring: closed")

// Mode says how many goroutines may publish into a ring.
type Mode uint8

const (
	// SingleProducer: exactly one goroutine calls Put/TryPut.
	SingleProducer Mode = iota
	// MultiProducer: any number of goroutines call Put/TryPut concurrently.
	MultiProducer
)

// String returns the name of the mode.
func (m Mode) String() string {
	switch m {
	case SingleProducer:
		return "SingleProducer"
	case MultiProducer:
		return "MultiProducer"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

const (
	// MaxCapacity is the largest capacity New accepts.
	MaxCapacity = 1 << 24

	// closedBit is set in Ring.tail by Close. Because it lives in the same word
	// as the cursor producers advance, a claim (MultiProducer) or a publish
	// (SingleProducer) and Close are totally ordered: an item is either
	// published before Close, and then delivered, or refused with ErrClosed.
	closedBit = uint64(1) << 63

	// spinChecks is how many times a waiter re-checks the ring before it
	// starts yielding, when GOMAXPROCS > 1. It is kept short on purpose: with
	// more goroutines than cores a spinning waiter burns the core the other
	// side needs (see doc.go, "Waiting").
	spinChecks = 32
	// yields is how many times a waiter calls runtime.Gosched before parking.
	yields = 20

	// pad separates fields written by different goroutines. 128 bytes also
	// defeats the adjacent-line prefetcher of current x86 parts.
	pad = 128
)

// Ring is a bounded, preallocated, lock-free FIFO that moves batches of T from
// one or many producers to exactly one consumer. See the package
// documentation for the contract.
type Ring[T any] struct {
	// Read-only after New.
	buf    []T
	stamps []atomic.Uint64 // MultiProducer only: stamps[s&mask] = end of the batch starting at s
	mask   uint64
	size   uint64
	mode   Mode
	spin   int // spinChecks, or 0 when GOMAXPROCS was 1 at New

	consWake chan struct{} // cap 1: producers -> parked consumer
	prodWake chan struct{} // cap 1: consumer (or a woken producer) -> parked producers
	done     chan struct{} // closed by Close: wakes everyone
	_        [pad]byte

	// Producer side. tail is the publish cursor (SingleProducer) or the claim
	// cursor (MultiProducer), with closedBit.
	tail atomic.Uint64
	// headSeen is the last head the single producer loaded (SingleProducer
	// only, producer-private): free space is only re-read when it looks short.
	headSeen uint64
	_        [pad]byte

	// Consumer side. head is the next sequence to read; slots before it are free.
	head atomic.Uint64
	// known is the consumer-private end of the published run starting at head
	// (MultiProducer: found by following batch stamps; SingleProducer: last tail seen).
	known uint64
	// timer is the consumer's reusable GetWait timer, made on first use.
	timer *time.Timer
	// waitRounds counts consumer wait rounds past the spin stage (yields and
	// parks). Tests use it to prove that a parked consumer does not spin.
	waitRounds atomic.Uint64
	_          [pad]byte

	// consSleep is 1 while the consumer is parked or about to park.
	consSleep atomic.Uint32
	_         [pad]byte
	// prodSleep counts producers parked or about to park.
	prodSleep atomic.Int32
	_         [pad]byte
}

// New returns a ring of the given capacity; capacity must be a power of two in
// [2, 1<<24].
func New[T any](capacity int, mode Mode) (*Ring[T], error) {
	if capacity < 2 || capacity > MaxCapacity || capacity&(capacity-1) != 0 {
		return nil, fmt.Errorf("ring: capacity %d is not a power of two in [2, %d]", capacity, MaxCapacity)
	}
	if mode != SingleProducer && mode != MultiProducer {
		return nil, fmt.Errorf("ring: unknown mode %d", uint8(mode))
	}
	r := &Ring[T]{
		buf:      make([]T, capacity),
		mask:     uint64(capacity - 1),
		size:     uint64(capacity),
		mode:     mode,
		spin:     spinChecks,
		consWake: make(chan struct{}, 1),
		prodWake: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if mode == MultiProducer {
		r.stamps = make([]atomic.Uint64, capacity)
	}
	if runtime.GOMAXPROCS(0) == 1 {
		r.spin = 0 // nobody else can run while we spin
	}
	return r, nil
}

// Cap returns the capacity of the ring.
func (r *Ring[T]) Cap() int { return int(r.size) }

// Closed reports whether Close has been called.
func (r *Ring[T]) Closed() bool { return r.tail.Load()&closedBit != 0 }

// Len returns the number of items published and not yet read. Under
// concurrency it is a snapshot; in MultiProducer mode it also counts items
// claimed by a producer that has not yet published them.
func (r *Ring[T]) Len() int {
	h := r.head.Load()
	t := r.tail.Load() &^ closedBit
	if t < h {
		return 0
	}
	return int(t - h)
}

// Close marks the ring closed. Put and TryPut return ErrClosed from now on;
// blocked producers and the consumer wake up. Items published before Close
// are still delivered. Close is idempotent and safe from any goroutine.
func (r *Ring[T]) Close() {
	if r.tail.Or(closedBit)&closedBit == 0 {
		close(r.done)
	}
}

// TryPut publishes as many of items as fit without blocking, in one
// claim/publish, and returns how many it published.
func (r *Ring[T]) TryPut(items []T) (int, error) {
	return r.put(items)
}

// Put publishes all of items, blocking while the ring is full. It returns the
// number of items published, with ErrClosed if the ring was closed (items
// after n are not published) or ctx.Err() if ctx ended while waiting.
func (r *Ring[T]) Put(ctx context.Context, items []T) (int, error) {
	n := 0
	for {
		k, err := r.put(items[n:])
		n += k
		if err != nil || n == len(items) {
			return n, err
		}
		if k == 0 {
			if err := r.waitSpace(ctx); err != nil {
				return n, err
			}
		}
	}
}

// put does one claim/publish of up to len(items) items.
func (r *Ring[T]) put(items []T) (int, error) {
	if r.mode == SingleProducer {
		return r.putSingle(items)
	}
	return r.putMulti(items)
}

func (r *Ring[T]) putSingle(items []T) (int, error) {
	t := r.tail.Load()
	if t&closedBit != 0 {
		return 0, ErrClosed
	}
	want := uint64(len(items))
	free := r.size - (t - r.headSeen)
	if free < want {
		r.headSeen = r.head.Load()
		free = r.size - (t - r.headSeen)
	}
	n := min(want, free)
	if n == 0 {
		return 0, nil
	}
	r.write(t, items[:n])
	// The publish is a CAS, not a store, so that it fails if Close set
	// closedBit since the load above: then nothing was published.
	if !r.tail.CompareAndSwap(t, t+n) {
		r.zero(t, n)
		return 0, ErrClosed
	}
	r.wakeConsumer()
	return int(n), nil
}

func (r *Ring[T]) putMulti(items []T) (int, error) {
	want := uint64(len(items))
	var start, n uint64
	for {
		// head first: then head <= claim, and a stale head only
		// underestimates the free space.
		h := r.head.Load()
		c := r.tail.Load()
		if c&closedBit != 0 {
			return 0, ErrClosed
		}
		if c-h >= r.size || want == 0 {
			return 0, nil
		}
		n = min(want, r.size-(c-h))
		if r.tail.CompareAndSwap(c, c+n) {
			start = c
			break
		}
	}
	r.write(start, items[:n])
	// One stamp per batch, on the slot of its first item, holding its end.
	// The consumer follows stamps from batch to batch; a producer that is
	// descheduled here delays only the consumer, never other producers.
	r.stamps[start&r.mask].Store(start + n)
	r.wakeConsumer()
	return int(n), nil
}

// write copies items into the slots starting at sequence s.
func (r *Ring[T]) write(s uint64, items []T) {
	i := s & r.mask
	k := copy(r.buf[i:], items)
	if k < len(items) {
		copy(r.buf, items[k:])
	}
}

// zero clears n slots starting at sequence s.
func (r *Ring[T]) zero(s, n uint64) {
	i := s & r.mask
	if i+n <= r.size {
		clear(r.buf[i : i+n])
		return
	}
	clear(r.buf[i:])
	clear(r.buf[:i+n-r.size])
}

func (r *Ring[T]) wakeConsumer() {
	if r.consSleep.Load() != 0 && r.consSleep.CompareAndSwap(1, 0) {
		select {
		case r.consWake <- struct{}{}:
		default:
		}
	}
}

func (r *Ring[T]) wakeProducer() {
	select {
	case r.prodWake <- struct{}{}:
	default:
	}
}

// hasSpace reports whether a producer could claim at least one slot now.
func (r *Ring[T]) hasSpace() (ok, closed bool) {
	h := r.head.Load()
	c := r.tail.Load()
	return c&closedBit == 0 && (c&^closedBit)-h < r.size, c&closedBit != 0
}

// waitSpace waits until the ring may have free space. It returns ErrClosed
// or ctx.Err() if the ring was closed or ctx ended first.
func (r *Ring[T]) waitSpace(ctx context.Context) error {
	for i := 0; i < r.spin; i++ {
		if ok, closed := r.hasSpace(); ok || closed {
			return nil // put reports ErrClosed
		}
	}
	for i := 0; i < yields; i++ {
		runtime.Gosched()
		if ok, closed := r.hasSpace(); ok || closed {
			return nil
		}
	}
	for {
		// Announce, re-check, then park: the consumer frees slots and then
		// loads prodSleep, so one of the two sees the other.
		r.prodSleep.Add(1)
		if ok, closed := r.hasSpace(); ok || closed {
			r.prodSleep.Add(-1)
			return nil
		}
		select {
		case <-r.prodWake:
			r.prodSleep.Add(-1)
		case <-r.done:
			r.prodSleep.Add(-1)
			return nil
		case <-ctx.Done():
			r.prodSleep.Add(-1)
			return ctx.Err()
		}
		ok, _ := r.hasSpace()
		if ok && r.prodSleep.Load() > 0 {
			// One token wakes one producer: pass it on while there is room,
			// so that several parked producers all get to run.
			r.wakeProducer()
		}
		if ok {
			return nil
		}
	}
}

// TryGet copies up to len(dst) available items into dst without blocking. It
// returns 0, nil if none is available, and 0, ErrClosed once the ring is
// closed and empty.
func (r *Ring[T]) TryGet(dst []T) (int, error) {
	n, closed := r.read(dst)
	if n == 0 && closed {
		return 0, ErrClosed
	}
	return n, nil
}

// Get copies up to len(dst) items into dst, blocking until at least one is
// available. After Close, remaining items are still delivered; once the ring
// is closed and empty Get returns 0, ErrClosed. If ctx ends while waiting, Get
// returns 0, ctx.Err().
func (r *Ring[T]) Get(ctx context.Context, dst []T) (int, error) {
	return r.get(ctx, dst, -1)
}

// GetWait is Get with a maximum wait: it returns 0, nil when d elapses with
// nothing to read.
func (r *Ring[T]) GetWait(ctx context.Context, dst []T, d time.Duration) (int, error) {
	if d < 0 {
		d = 0
	}
	return r.get(ctx, dst, d)
}

// get is Get (d < 0) and GetWait (d >= 0).
func (r *Ring[T]) get(ctx context.Context, dst []T, d time.Duration) (int, error) {
	n, closed := r.read(dst)
	if n > 0 {
		return n, nil
	}
	if closed {
		return 0, ErrClosed
	}
	if len(dst) == 0 || d == 0 {
		return 0, nil
	}
	return r.waitRead(ctx, dst, d)
}

// waitRead is the slow path of get: spin, then yield, then park.
func (r *Ring[T]) waitRead(ctx context.Context, dst []T, d time.Duration) (int, error) {
	var start time.Time
	if d > 0 {
		start = time.Now()
	}
	for i := 0; i < r.spin; i++ {
		if r.readable() {
			return r.finishRead(dst)
		}
	}
	for i := 0; i < yields; i++ {
		r.waitRounds.Add(1)
		runtime.Gosched()
		if r.readable() {
			return r.finishRead(dst)
		}
	}
	var timeout <-chan time.Time
	if d > 0 {
		left := d - time.Since(start)
		if left <= 0 {
			return r.finishRead(dst)
		}
		if r.timer == nil {
			r.timer = time.NewTimer(left)
		} else {
			r.timer.Reset(left)
		}
		timeout = r.timer.C
		defer r.timer.Stop()
	}
	for {
		r.waitRounds.Add(1)
		// Announce, re-check, then park: producers publish and then load
		// consSleep, so one of the two sees the other.
		r.consSleep.Store(1)
		if r.readable() {
			r.consSleep.Store(0)
			return r.finishRead(dst)
		}
		select {
		case <-r.consWake:
		case <-r.done:
		case <-timeout:
			r.consSleep.Store(0)
			return r.finishRead(dst)
		case <-ctx.Done():
			r.consSleep.Store(0)
			if n, closed := r.read(dst); n > 0 || closed {
				return r.result(n, closed)
			}
			return 0, ctx.Err()
		}
		r.consSleep.Store(0)
		if r.readable() {
			return r.finishRead(dst)
		}
	}
}

// finishRead reads what is there and turns it into get's result.
func (r *Ring[T]) finishRead(dst []T) (int, error) {
	return r.result(r.read(dst))
}

func (r *Ring[T]) result(n int, closed bool) (int, error) {
	if n == 0 && closed {
		return 0, ErrClosed
	}
	return n, nil
}

// readable reports whether read would return an item or ErrClosed.
func (r *Ring[T]) readable() bool {
	h := r.head.Load()
	end, closed := r.published(h, 1)
	return end > h || closed
}

// published returns the end of the run of published items starting at head h,
// following batch stamps until at least want items are known, and whether the
// ring is closed with nothing more to come after that end.
func (r *Ring[T]) published(h, want uint64) (end uint64, closedEmpty bool) {
	if r.mode == SingleProducer {
		t := r.tail.Load()
		end = t &^ closedBit
		return end, t&closedBit != 0 && end == h
	}
	end = r.known
	for end-h < want {
		// stamps[end&mask] > end iff the batch starting at end is published;
		// any other value there is the end of a batch that started a lap
		// earlier, which is <= end.
		e := r.stamps[end&r.mask].Load()
		if e <= end {
			break
		}
		end = e
	}
	r.known = end
	if end == h {
		// Loaded after the stamps: the claim cursor only grows, so if it is
		// h now, nothing past h was ever claimed, and once closed nothing
		// ever will be.
		c := r.tail.Load()
		closedEmpty = c == h|closedBit
	}
	return end, closedEmpty
}

// read copies up to len(dst) published items into dst, zeroes and frees their
// slots. closed reports that the ring is closed and was empty.
func (r *Ring[T]) read(dst []T) (n int, closed bool) {
	h := r.head.Load()
	end, closed := r.published(h, uint64(len(dst)))
	k := min(end-h, uint64(len(dst)))
	if k == 0 {
		return 0, closed
	}
	i := h & r.mask
	if i+k <= r.size {
		copy(dst, r.buf[i:i+k])
		clear(r.buf[i : i+k])
	} else {
		m := copy(dst, r.buf[i:])
		copy(dst[m:k], r.buf[:k-uint64(m)])
		clear(r.buf[i:])
		clear(r.buf[:k-uint64(m)])
	}
	r.head.Store(h + k)
	if r.prodSleep.Load() > 0 {
		r.wakeProducer()
	}
	return int(k), false
}
