package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// inputRunner owns one input instance and its goroutine. It implements
// InputContext; see api.go for which methods other goroutines may call.
type inputRunner struct {
	owner
	n     *node
	in    Input
	stats *NodeStats
	log   *slog.Logger

	batch     []*pack.Packet
	batchSize int
	outBytes  int64

	smu     sync.Mutex // guards streams (written by the input goroutine, read by commit/stats)
	streams map[string]*Stream
	slist   []*Stream
	dirty   []*Stream // streams with sequences not yet published (input goroutine)

	paused   atomic.Bool
	pauseMu  sync.Mutex
	resumeCh chan struct{} // closed on resume; replaced on pause
	// gate is non-zero while the input must not take packets on the fast
	// path: gatePaused (mirrors paused) or gateStopping (the engine stops
	// its inputs). NewPacket checks this one word, so a stop costs the hot
	// path nothing and an input that never blocks (its pool has packets,
	// its source has data) still ends at its next NewPacket.
	gate atomic.Uint32
}

const (
	gatePaused   = 1 << iota // an operator paused the input
	gateStopping             // inCtx is cancelled: NewPacket fails
)

// stop makes NewPacket and NewPackets fail from now on (after inCtx is
// cancelled): the input returns at its next packet even if its pool never
// runs dry, instead of reading its source to the end (found with a
// StreamInput on a large file: SIGTERM waited for the whole file).
func (ir *inputRunner) stop() {
	for {
		g := ir.gate.Load()
		if ir.gate.CompareAndSwap(g, g|gateStopping) {
			return
		}
	}
}

func (e *Engine) newInputRunner(n *node, in Input) (*inputRunner, error) {
	pool, err := pack.NewPool(pack.PoolConfig{Count: n.pc.Pool, MaxBytes: n.pc.PoolBytes, MaxPacketBytes: e.cfg.Engine.MaxPacketBytes})
	if err != nil {
		return nil, &ConfigError{File: e.cfg.File, Line: n.pc.Line, Msg: fmt.Sprintf("%s: %v", n.name(), err)}
	}
	ir := &inputRunner{
		owner:     owner{e: e, name: n.name(), pool: pool, rel: pack.NewReleaser(256), ctx: e.inCtx},
		n:         n,
		in:        in,
		stats:     e.stats[n.name()],
		log:       e.log.With("plugin", n.name()),
		batch:     make([]*pack.Packet, 0, n.pc.Batch),
		batchSize: n.pc.Batch,
		streams:   map[string]*Stream{},
		resumeCh:  make(chan struct{}),
	}
	close(ir.resumeCh)
	// Drops and consumes in this goroutine recycle straight to the pool's
	// owner stack.
	ir.rel.Local(pool)
	return ir, nil
}

// run is the input goroutine: Run with restart on error or panic, then a
// final flush, then the close cascade.
func (ir *inputRunner) run() {
	e := ir.e
	defer e.inputsWG.Done()
	defer ir.owner.done()
	failures := 0
	for {
		err, panicked := ir.runOnce()
		if e.inCtx.Err() != nil {
			break
		}
		if err == nil && !panicked {
			ir.log.Info("input finished its source")
			break
		}
		if b := e.txn; b != nil && b.ir == ir {
			// A restarted input reads again from its last acked
			// position: what it emitted after the last boundary would
			// be written twice into the open transaction.
			ir.stats.setErr(err)
			ir.Flush(e.hardCtx)
			b.fail(fmt.Errorf("input %s failed (panicked %v): %w", ir.n.name(), panicked, err))
			break
		}
		failures++
		ir.stats.restarts.Add(1)
		ir.stats.setErr(err)
		backoff := min(e.cfg.Engine.RestartBackoff<<min(failures-1, 8), 10*time.Second)
		ir.log.Error("input failed: restarting", "err", err, "panicked", panicked, "backoff", backoff)
		// Hand on what was emitted before the failure.
		ir.Flush(e.hardCtx)
		if !Sleep(e.inCtx, backoff) {
			break
		}
		if panicked {
			if inst, cerr := construct(ir.n.pc); cerr == nil {
				if c, ok := ir.in.(Closer); ok {
					c.Close(e.hardCtx)
				}
				ir.in = inst.(Input)
				ir.stats.setPlugin(inst)
				if s, ok := ir.in.(Starter); ok {
					if serr := s.Start(e.inCtx); serr != nil {
						ir.log.Error("restarted input failed to start", "err", serr)
					}
				}
			}
		}
	}
	if err := ir.Flush(e.hardCtx); err != nil {
		ir.log.Warn("final flush aborted", "err", err)
	}
	ir.publish()
	// Fused filters that buffer (windows, aggregates) emit what they hold.
	for _, c := range ir.chains() {
		var err error
		switch f := c.f.(type) {
		case FilterFlusher:
			err = f.FlushFilter(c.fc)
		case Flusher:
			err = f.Flush(e.hardCtx)
		default:
			continue
		}
		if err != nil {
			ir.log.Error("filter flush failed", "filter", c.n.name(), "err", err)
		}
		c.flushOut()
	}
}

func (ir *inputRunner) runOnce() (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			ir.stats.panics.Add(1)
			err = fmt.Errorf("input %s panicked: %v\n%s", ir.n.name(), r, debug.Stack())
			panicked = true
		}
	}()
	err = ir.in.Run(ir.e.inCtx, ir)
	if errors.Is(err, context.Canceled) && ir.e.inCtx.Err() != nil {
		err = nil
	}
	return err, false
}

func (ir *inputRunner) Name() string      { return ir.n.name() }
func (ir *inputRunner) Log() *slog.Logger { return ir.log }

func (ir *inputRunner) Stream(id string) (*Stream, error) {
	ir.smu.Lock()
	defer ir.smu.Unlock()
	if s, ok := ir.streams[id]; ok {
		return s, nil
	}
	size := ir.n.pc.Window
	if size == 0 {
		// Twice the pool: the pool bounds the packets in flight, marks
		// (transaction ends) take sequences too. A small window keeps the
		// slot array, walked sequentially, cache-friendly.
		size = 4096
		for size < 2*ir.pool.Cap() {
			size <<= 1
		}
	}
	win, err := pack.NewWindow(size)
	if err != nil {
		return nil, err
	}
	key := ir.n.name()
	if id != "" {
		key += "/" + id
	}
	s := &Stream{id: id, key: key, win: win}
	cp, ok, err := ir.e.store.Load(key)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	s.stored, s.has = cp, ok
	ir.streams[id] = s
	ir.slist = append(ir.slist, s)
	return s, nil
}

// CloseStream stops tracking s after its in-flight packets are done (or ctx
// ends) and commits its checkpoint. Inputs call it when they give a stream
// up (a revoked Kafka partition, a deleted file).
func (ir *inputRunner) CloseStream(ctx context.Context, s *Stream) error {
	if err := ir.Flush(ctx); err != nil {
		return err
	}
	wait := 100 * time.Microsecond
	for !s.win.Drained() {
		if !Sleep(ctx, wait) {
			return fmt.Errorf("close stream %s: %d packets still in flight: %w", s.key, s.InFlight(), ctx.Err())
		}
		wait = min(wait*2, 10*time.Millisecond)
	}
	err := ir.e.commit(ctx)
	ir.smu.Lock()
	delete(ir.streams, s.id)
	for i, x := range ir.slist {
		if x == s {
			ir.slist = append(ir.slist[:i], ir.slist[i+1:]...)
			break
		}
	}
	ir.smu.Unlock()
	return err
}

func (ir *inputRunner) Commit(ctx context.Context) error {
	if err := ir.Flush(ctx); err != nil {
		return err
	}
	if b := ir.e.txn; b != nil && b.ir == ir {
		return b.commitSync(ctx)
	}
	return ir.e.commit(ctx)
}

// ExactlyOnce reports whether this input feeds a transactional
// (exactly_once) output. Inputs find it by type assertion on their
// InputContext (interface{ ExactlyOnce() bool }): such an input must not
// rewind on its own (a reconnect that re-emits the rows of a source
// transaction already partly emitted); it returns an error from Run
// instead, and the engine stops the pipeline (TransactionalOutput).
func (ir *inputRunner) ExactlyOnce() bool { return ir.e.txn != nil && ir.e.txn.ir == ir }

func (ir *inputRunner) streamList() []*Stream {
	ir.smu.Lock()
	defer ir.smu.Unlock()
	return append([]*Stream(nil), ir.slist...)
}

func (ir *inputRunner) NewPacket(ctx context.Context) (*pack.Packet, error) {
	if g := ir.gate.Load(); g != 0 {
		if g&gateStopping != 0 {
			return nil, context.Canceled
		}
		if err := ir.Flush(ctx); err != nil {
			return nil, err
		}
		if err := ir.Paused(ctx); err != nil {
			return nil, err
		}
	}
	if p := ir.pool.TryGetLocal(); p != nil {
		return p, nil
	}
	if p := ir.pool.TryGet(); p != nil {
		return p, nil
	}
	// Pool empty: hand on what we hold so packets can come back.
	if err := ir.Flush(ctx); err != nil {
		return nil, err
	}
	ir.rel.Flush()
	ir.stats.poolWaits.Add(1)
	return ir.pool.Get(ctx)
}

func (ir *inputRunner) NewPackets(ctx context.Context, dst []*pack.Packet) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	if ir.gate.Load() == 0 {
		n := ir.pool.TryGetLocalN(dst)
		for n < len(dst) {
			p := ir.pool.TryGet()
			if p == nil {
				break
			}
			dst[n] = p
			n++
		}
		if n > 0 {
			return n, nil
		}
	}
	p, err := ir.NewPacket(ctx) // paused, stopping, or the pool is empty: wait
	if err != nil {
		return 0, err
	}
	dst[0] = p
	return 1, nil
}

func (ir *inputRunner) EmitBatch(ctx context.Context, s *Stream, ps []*pack.Packet) error {
	// Emit's body, kept inline: a call per packet costs 7 % of the
	// headline dry run (measured).
	for i, p := range ps {
		if !s.win.TryTrack(p) {
			if err := s.win.Track(ctx, p); err != nil {
				ir.rel.ReleaseAll(ps[i:])
				return err
			}
		}
		ir.markDirty(s)
		ir.outBytes += pack.Account(p)
		ir.batch = append(ir.batch, p)
		if len(ir.batch) >= ir.batchSize {
			if err := ir.Flush(ctx); err != nil {
				ir.rel.ReleaseAll(ps[i+1:])
				return err
			}
		}
	}
	return nil
}

func (ir *inputRunner) Discard(p *pack.Packet) { ir.rel.Release(p) }

func (ir *inputRunner) Emit(ctx context.Context, s *Stream, p *pack.Packet) error {
	// TryTrack inlines; Track (the wait for window space) does not.
	if !s.win.TryTrack(p) {
		if err := s.win.Track(ctx, p); err != nil {
			ir.rel.Release(p)
			return err
		}
	}
	ir.markDirty(s)
	ir.outBytes += pack.Account(p)
	ir.batch = append(ir.batch, p)
	if len(ir.batch) >= ir.batchSize {
		return ir.Flush(ctx)
	}
	return nil
}

func (ir *inputRunner) Mark(ctx context.Context, s *Stream, pos pack.Pos) error {
	if err := s.win.Mark(ctx, pos.Offset, pos.Token); err != nil {
		return err
	}
	ir.markDirty(s)
	if len(ir.batch) == 0 {
		ir.publish()
	}
	return nil
}

// markDirty lists s for the next publish.
func (ir *inputRunner) markDirty(s *Stream) {
	if !s.dirty {
		s.dirty = true
		ir.dirty = append(ir.dirty, s)
	}
}

// publish makes assigned sequences visible to the watermark.
func (ir *inputRunner) publish() {
	for i, s := range ir.dirty {
		s.win.Publish()
		s.dirty = false
		ir.dirty[i] = nil
	}
	ir.dirty = ir.dirty[:0]
}

// Flush hands the pending batch on. ctx bounds only the wait for window
// space; the hand-off itself is bounded by the engine's hard stop, so a
// batch is never half delivered at an orderly shutdown.
func (ir *inputRunner) Flush(ctx context.Context) error {
	if len(ir.batch) == 0 {
		ir.publish()
		return nil
	}
	ir.publish()
	if ir.outBytes != 0 {
		ir.pool.AddOut(ir.outBytes)
		ir.outBytes = 0
	}
	ir.stats.in.Add(uint64(len(ir.batch)))
	ir.stats.out.Add(uint64(len(ir.batch)))
	// Stamp the hand-off time on the batch's first packet: outputs sample
	// ack latency once per batch from it.
	ir.batch[0].Sent = monoNano()
	ir.stats.tapBatch(ir.batch)
	ir.dispatch(ir.edges, ir.batch)
	clear(ir.batch)
	ir.batch = ir.batch[:0]
	ir.rel.Flush()
	return nil
}

func (ir *inputRunner) Paused(ctx context.Context) error {
	for ir.paused.Load() {
		ir.pauseMu.Lock()
		ch := ir.resumeCh
		ir.pauseMu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
	return nil
}

func (ir *inputRunner) setPaused(on bool) {
	ir.pauseMu.Lock()
	defer ir.pauseMu.Unlock()
	if on == ir.paused.Load() {
		return
	}
	if on {
		ir.resumeCh = make(chan struct{})
		ir.paused.Store(true)
		ir.gate.Or(gatePaused)
		ir.log.Info("input paused")
		return
	}
	ir.paused.Store(false)
	ir.gate.And(^uint32(gatePaused))
	close(ir.resumeCh)
	ir.log.Info("input resumed")
}
