package pack

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Window is a stream's in-flight window: it assigns sequence numbers to the
// packets of one stream in emit order, learns out of order which are done,
// and keeps the low watermark (every sequence below it is done) together
// with the position of the highest boundary packet below the watermark:
// the stream's checkpoint.
//
// One goroutine (the stream's producer) calls Track, Mark and Publish; any goroutine
// calls Done (through Packet.Release); Advance and Checkpoint may be called
// from any goroutine.
type Window struct {
	slots []wslot
	// toks holds each slot's position token, apart from the slots so the
	// slot array stays small (24 bytes a slot) for streams without tokens.
	toks [][]byte
	mask uint64

	_    [64]byte
	next atomic.Uint64 // next sequence to assign (producer writes)
	_    [56]byte
	low  atomic.Uint64 // every sequence < low is done
	_    [56]byte

	local    uint64 // producer's next sequence; published to next by Publish
	lowCache uint64 // producer's last read of low (low only grows)
	hasToks  bool   // producer: a token was ever stored (else toks is never touched)

	mu      sync.Mutex // guards ckpt*, serialises Advance
	ckptOff int64
	ckptTok []byte
	ckptSeq uint64 // sequence of the boundary the checkpoint came from
	ckptOK  bool
	gen     uint64 // bumped whenever the checkpoint moves
}

type wslot struct {
	// done holds the exclusive end of a run of done sequences starting at
	// this slot's sequence: end > seq means seq..end-1 are done. A single
	// done packet stores seq+1; a Releaser that recycles a run of
	// consecutive packets stores one end for the whole run (one atomic
	// store per run instead of per packet). Values from earlier laps of
	// the ring are <= the current sequence and so read as "not done".
	done atomic.Uint64
	// off is the boundary position's offset, or noBoundary: 16-byte slots
	// keep the ring, written once per packet, small in the CPU cache.
	off int64
}

// noBoundary marks a slot without a checkpointable position (offsets of
// boundary positions are never math.MinInt64).
const noBoundary = math.MinInt64

// NewWindow returns a window that tracks up to size in-flight sequences;
// size must be a power of two.
func NewWindow(size int) (*Window, error) {
	if size < 2 || size > 1<<24 || size&(size-1) != 0 {
		return nil, fmt.Errorf("window: size %d must be a power of two in [2, %d]", size, 1<<24)
	}
	return &Window{slots: make([]wslot, size), toks: make([][]byte, size), mask: uint64(size - 1)}, nil
}

// Size returns the capacity.
func (w *Window) Size() int { return len(w.slots) }

// InFlight returns the number of sequences assigned and not yet below the
// watermark.
func (w *Window) InFlight() int { return int(w.next.Load() - w.low.Load()) }

// Next returns the next sequence number to be assigned.
func (w *Window) Next() uint64 { return w.next.Load() }

// Low returns the low watermark: every sequence below it is done.
func (w *Window) Low() uint64 { return w.low.Load() }

// reserve waits until a slot is free for the next sequence.
func (w *Window) reserve(ctx context.Context) (uint64, error) {
	seq := w.local
	if seq-w.lowCache < uint64(len(w.slots)) {
		return seq, nil
	}
	if w.lowCache = w.low.Load(); seq-w.lowCache < uint64(len(w.slots)) {
		return seq, nil
	}
	w.Publish()
	wait := 10 * time.Microsecond
	for {
		w.Advance()
		if seq-w.low.Load() < uint64(len(w.slots)) {
			return seq, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
		if wait < 5*time.Millisecond {
			wait *= 2
		}
	}
}

// Track assigns p the next sequence number, records its position (if p is
// a boundary) and ties p's release to this window. It blocks while the
// window is full (the oldest in-flight packet is not done yet).
func (w *Window) Track(ctx context.Context, p *Packet) error {
	seq := w.local
	if seq-w.lowCache >= uint64(len(w.slots)) { // rare: refresh low or wait
		var err error
		if seq, err = w.reserve(ctx); err != nil {
			return err
		}
	}
	s := &w.slots[seq&w.mask]
	if p.Flags&FlagBoundary == 0 {
		s.off = noBoundary
	} else {
		s.off = p.Pos.Offset
		if len(p.Pos.Token) > 0 || w.hasToks {
			w.hasToks = true
			t := &w.toks[seq&w.mask]
			*t = append((*t)[:0], p.Pos.Token...)
		}
	}
	p.Seq = seq
	p.win = w
	w.local = seq + 1
	return nil
}

// Publish makes the sequences assigned by Track and Mark visible to
// Advance. The producer calls it once per batch, before handing the batch
// on (not per packet: the store is the expensive part of tracking).
func (w *Window) Publish() {
	if w.next.Load() != w.local {
		w.next.Store(w.local)
	}
}

// Mark records a checkpoint position that becomes committable once every
// packet tracked before it is done. It uses one sequence number, done at
// once. Inputs use it at transaction ends (binlog XID) where no packet
// carries the boundary.
func (w *Window) Mark(ctx context.Context, off int64, tok []byte) error {
	seq, err := w.reserve(ctx)
	if err != nil {
		return err
	}
	s := &w.slots[seq&w.mask]
	s.off = off
	w.hasToks = w.hasToks || len(tok) > 0
	w.toks[seq&w.mask] = append(w.toks[seq&w.mask][:0], tok...)
	s.done.Store(seq + 1)
	w.local = seq + 1
	return nil
}

// Done marks seq done. Packets call it on their last release.
func (w *Window) Done(seq uint64) {
	w.slots[seq&w.mask].done.Store(seq + 1)
}

// DoneRange marks the n consecutive sequences from seq done with one
// store. n must not exceed the window size.
func (w *Window) DoneRange(seq, n uint64) {
	w.slots[seq&w.mask].done.Store(seq + n)
}

// Advance moves the low watermark over every done sequence and returns it.
func (w *Window) Advance() uint64 {
	w.mu.Lock()
	low := w.low.Load()
	next := w.next.Load()
	moved := false
	for low < next {
		end := w.slots[low&w.mask].done.Load()
		if end <= low || end > next {
			break
		}
		// low..end-1 are done; the newest boundary among them becomes the
		// checkpoint.
		for seq := end; seq > low; {
			seq--
			if s := &w.slots[seq&w.mask]; s.off != noBoundary {
				w.ckptOff = s.off
				w.ckptTok = append(w.ckptTok[:0], w.toks[seq&w.mask]...)
				w.ckptSeq = seq
				w.ckptOK = true
				moved = true
				break
			}
		}
		low = end
	}
	if moved {
		w.gen++
	}
	w.low.Store(low)
	w.mu.Unlock()
	return low
}

// Checkpoint advances the watermark and returns the committable position:
// its offset, a copy of its token appended to dst, a generation number that
// changes whenever the position moves, and ok=false if no boundary has been
// passed yet.
func (w *Window) Checkpoint(dst []byte) (off int64, tok []byte, gen uint64, ok bool) {
	w.Advance()
	w.mu.Lock()
	off, gen, ok = w.ckptOff, w.gen, w.ckptOK
	tok = append(dst, w.ckptTok...)
	w.mu.Unlock()
	return off, tok, gen, ok
}

// Drained reports whether every tracked sequence is done.
func (w *Window) Drained() bool {
	return w.Advance() == w.next.Load()
}
