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
//
// A packet's position is read when it is done, not when it is tracked:
// Track only assigns the sequence, and whoever marks a run of sequences
// done records the newest boundary among them in the run's first slot.
// The position of a tracked packet must not change until it is done (the
// engine's contract for filters: Pos is the source's).
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
	// toksUsed is set once a boundary with a token was done or marked:
	// from then on every boundary stores its token (possibly empty), so
	// no slot keeps one from an earlier lap. Before, toks is never touched.
	toksUsed atomic.Bool

	mu      sync.Mutex // guards ckpt*, serialises Advance
	ckptOff int64
	ckptTok []byte
	ckptSeq uint64 // last sequence of the run the checkpoint came from
	ckptOK  bool
	// ckptOpen: sequences below low after the checkpoint's boundary are
	// done (packets past the committable position were delivered). A
	// transactional output commits only when it is false (ExactCheckpoint).
	ckptOpen bool
	gen      uint64 // bumped whenever the checkpoint moves
}

type wslot struct {
	// done holds the exclusive end of a run of done sequences starting at
	// this slot's sequence: end > seq means seq..end-1 are done. A single
	// done packet stores seq+1; a Releaser that recycles a run of
	// consecutive packets stores one end for the whole run (one atomic
	// store per run instead of per packet). Values from earlier laps of
	// the ring are <= the current sequence and so read as "not done".
	done atomic.Uint64
	// off is the offset of the newest boundary in the done run starting
	// at this slot, or noBoundary; written before done (by whoever marks
	// the run done), read only at a run's first slot.
	off int64
	// open says the run ends with packets that are not boundaries (after
	// its newest boundary, or with none at all); written with off.
	open bool
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

// Track assigns p the next sequence number and ties p's release to this
// window. It blocks while the window is full (the oldest in-flight packet
// is not done yet). p's position is read when p is done.
func (w *Window) Track(ctx context.Context, p *Packet) error {
	if w.TryTrack(p) {
		return nil
	}
	return w.trackSlow(ctx, p) // rare: refresh low or wait
}

// TryTrack is Track without waiting (and small enough to inline): it
// returns false, tracking nothing, when the window may be full.
func (w *Window) TryTrack(p *Packet) bool {
	if w.local-w.lowCache > w.mask {
		return false
	}
	p.Seq, p.win = w.local, w
	w.local++
	return true
}

// trackSlow is Track when the cached watermark says the window is full.
func (w *Window) trackSlow(ctx context.Context, p *Packet) error {
	seq, err := w.reserve(ctx)
	if err != nil {
		return err
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
	s.open = false
	w.setTok(seq, tok)
	s.done.Store(seq + 1)
	w.local = seq + 1
	return nil
}

// setTok stores the token of the boundary recorded at seq's slot.
func (w *Window) setTok(seq uint64, tok []byte) {
	if len(tok) == 0 && !w.toksUsed.Load() {
		return
	}
	w.storeTok(seq, tok)
}

func (w *Window) storeTok(seq uint64, tok []byte) {
	if len(tok) > 0 && !w.toksUsed.Load() {
		w.toksUsed.Store(true)
	}
	t := &w.toks[seq&w.mask]
	*t = append((*t)[:0], tok...)
}

// Done marks p (tracked by this window) done, recording its position if
// it is a boundary. Packets call it on their last release.
func (w *Window) Done(p *Packet) {
	s := &w.slots[p.Seq&w.mask]
	if p.Flags&FlagBoundary != 0 {
		s.off = p.Pos.Offset
		s.open = false
		w.setTok(p.Seq, p.Pos.Token)
	} else {
		s.off = noBoundary
		s.open = true
	}
	s.done.Store(p.Seq + 1)
}

// DoneRange marks ps done with one store: they must have been tracked by
// this window with consecutive sequences, fewer than the window size.
func (w *Window) DoneRange(ps []*Packet) {
	if len(ps) == 0 {
		return
	}
	off := int64(noBoundary)
	start := ps[0].Seq
	for _, p := range ps {
		if p.Flags&FlagBoundary != 0 {
			off = p.Pos.Offset
			w.setTok(start, p.Pos.Token)
		}
	}
	w.doneRun(start, uint64(len(ps)), off, ps[len(ps)-1].Flags&FlagBoundary == 0)
}

// doneRun marks the n sequences from seq done, off being the offset of the
// newest boundary among them (noBoundary if none; its token, if any, is
// already in seq's slot); open says its last sequence is not a boundary.
func (w *Window) doneRun(seq, n uint64, off int64, open bool) {
	s := &w.slots[seq&w.mask]
	s.off = off
	s.open = open
	s.done.Store(seq + n)
}

// Advance moves the low watermark over every done sequence and returns it.
func (w *Window) Advance() uint64 {
	w.mu.Lock()
	low := w.low.Load()
	next := w.next.Load()
	moved := false
	for low < next {
		s := &w.slots[low&w.mask]
		end := s.done.Load()
		if end <= low || end > next {
			break
		}
		// low..end-1 are done; the newest boundary among them (recorded
		// at the run's first slot) becomes the checkpoint.
		if s.off != noBoundary {
			w.ckptOff = s.off
			w.ckptTok = append(w.ckptTok[:0], w.toks[low&w.mask]...)
			w.ckptSeq = end - 1
			w.ckptOK = true
			moved = true
		}
		w.ckptOpen = s.open
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

// ExactCheckpoint is Checkpoint plus exact: whether the position covers
// exactly the done sequences below the watermark, i.e. no packet done
// after its boundary (a binlog row of a transaction whose end is not
// marked yet). A transactional output commits its records with the
// position only when exact holds; otherwise a restart from the position
// would deliver those packets again.
func (w *Window) ExactCheckpoint(dst []byte) (off int64, tok []byte, ok, exact bool) {
	w.Advance()
	w.mu.Lock()
	off, ok, exact = w.ckptOff, w.ckptOK, !w.ckptOpen
	tok = append(dst, w.ckptTok...)
	w.mu.Unlock()
	return off, tok, ok, exact
}

// Drained reports whether every tracked sequence is done.
func (w *Window) Drained() bool {
	return w.Advance() == w.next.Load()
}
