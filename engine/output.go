package engine

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// outputRunner runs one output in its own goroutine: it takes batches from
// the inbox, writes them (several in flight for an AsyncOutput), acks what
// the sink accepted, retries what failed, and sends what keeps failing to
// the dead-letter output or holds it.
type outputRunner struct {
	e     *Engine
	n     *node
	out   Output
	async AsyncOutput
	inbox *inbox
	dlq   *inbox
	stats *NodeStats
	rel   *pack.Releaser
	buf   []*pack.Packet

	slots []*slot
	free  []*slot
	comp  chan *slot
	// failures counts consecutive failed writes, for the restart backoff.
	panics int
}

// slot is one in-flight batch of an AsyncOutput.
type slot struct {
	r       *outputRunner
	batch   []*pack.Packet
	err     error
	pending atomic.Bool
	start   time.Time
}

// Done implements Completion.
func (s *slot) Done(err error) {
	if !s.pending.CompareAndSwap(true, false) {
		return // stale or duplicate completion
	}
	s.err = err
	s.r.comp <- s
}

func (e *Engine) newOutputRunner(n *node, out Output) *outputRunner {
	or := &outputRunner{
		e: e, n: n, out: out, inbox: e.inboxes[n], stats: e.stats[n.name()],
		rel: pack.NewReleaser(256),
		buf: make([]*pack.Packet, n.pc.Batch),
	}
	if n.dlq != nil {
		or.dlq = e.inboxes[n.dlq]
	}
	if a, ok := out.(AsyncOutput); ok {
		or.async = a
		k := n.pc.InFlight
		if d, ok := out.(InFlightDefaulter); ok && !n.pc.InFlightSet {
			k = d.DefaultInFlight()
		}
		if k < 2 {
			k = 2
		}
		or.comp = make(chan *slot, k)
		for i := 0; i < k; i++ {
			s := &slot{r: or, batch: make([]*pack.Packet, 0, n.pc.Batch)}
			or.slots = append(or.slots, s)
			or.free = append(or.free, s)
		}
	}
	return or
}

// finish flushes the output and tells its dead-letter output it will send
// no more. It runs once, at the end of the goroutine that runs the output
// (its own, or its upstream's for an inline output).
func (or *outputRunner) finish() {
	if fl, ok := or.out.(Flusher); ok {
		if err := fl.Flush(or.e.hardCtx); err != nil {
			or.e.log.Error("output flush failed", "output", or.n.name(), "err", err)
		}
	}
	or.rel.Flush()
	if or.dlq != nil {
		or.dlq.producerDone()
	}
}

func (or *outputRunner) run() {
	e := or.e
	defer or.finish()
	if e.txn != nil && e.txn.or == or {
		or.runTxn(e.txn)
		return
	}
	if or.async != nil {
		or.runAsync()
		return
	}
	for {
		n, err := or.inbox.ring.Get(e.hardCtx, or.buf)
		if err != nil {
			return
		}
		or.deliver(or.buf[:n])
		clear(or.buf[:n])
		or.rel.Flush()
	}
}

// write calls Write, turning a panic into an error (and replacing the
// instance).
func (or *outputRunner) write(batch []*pack.Packet) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = or.onPanic(r)
		}
	}()
	if !or.e.leaseValid() {
		return ErrLeaseExpired
	}
	start := monoNano()
	err = or.out.Write(or.e.hardCtx, batch)
	d := time.Duration(monoNano() - start)
	or.stats.ackNanos.Add(uint64(d))
	or.stats.batches.Add(1)
	or.stats.writeHist.Observe(d.Seconds())
	or.stats.batchHist.Observe(float64(len(batch)))
	return err
}

func (or *outputRunner) onPanic(r any) error {
	e := or.e
	or.stats.panics.Add(1)
	or.panics++
	e.log.Error("output panicked: restarting it", "output", or.n.name(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	backoff := min(e.cfg.Engine.RestartBackoff<<min(or.panics-1, 8), 10*time.Second)
	Sleep(e.hardCtx, backoff)
	if inst, err := construct(or.n.pc); err == nil {
		if e.opts.DryRun {
			if dr, ok := inst.(DryRunner); ok {
				dr.SetDryRun(true)
			} else {
				inst = discardOutput{}
			}
		}
		if s, ok := inst.(Starter); ok {
			if err := s.Start(e.hardCtx); err != nil {
				e.log.Error("restarted output failed to start", "output", or.n.name(), "err", err)
			}
		}
		or.out = inst.(Output)
		or.async, _ = inst.(AsyncOutput)
		or.stats.setPlugin(inst)
		or.stats.restarts.Add(1)
	}
	return fmt.Errorf("output %s panicked: %v", or.n.name(), r)
}

// ack releases delivered packets.
func (or *outputRunner) ack(batch []*pack.Packet) {
	for _, p := range batch {
		// One latency sample per batch: the first packet stamped by its
		// input's hand-off.
		if p.Sent != 0 {
			or.stats.ackHist.Observe(float64(monoNano()-p.Sent) / 1e9)
			break
		}
	}
	var b uint64
	for _, p := range batch {
		b += uint64(len(p.Payload))
	}
	or.rel.ReleaseAll(batch)
	or.stats.out.Add(uint64(len(batch)))
	or.stats.bytes.Add(b)
}

// split acks the packets of batch that succeeded according to err,
// dead-letters (or holds) those whose error is permanent, and compacts the
// retryable failures to the front; it returns them and the error of the
// first.
func (or *outputRunner) split(batch []*pack.Packet, err error) ([]*pack.Packet, error) {
	var be *BatchError
	if !errors.As(err, &be) || len(be.Errs) != len(batch) {
		if IsPermanent(err) && or.dlq != nil {
			or.stats.failed.Add(uint64(len(batch)))
			for _, p := range batch {
				deadLetter(or.e, or.e.hardCtx, or.n, or.dlq, or.stats, p, err)
			}
			return batch[:0], err
		}
		return batch, err
	}
	k := 0
	var first error
	for i, p := range batch {
		perr := be.Errs[i]
		if perr == nil {
			or.rel.Release(p)
			or.stats.out.Add(1)
			continue
		}
		if IsPermanent(perr) && or.dlq != nil {
			or.stats.failed.Add(1)
			deadLetter(or.e, or.e.hardCtx, or.n, or.dlq, or.stats, p, perr)
			continue
		}
		if first == nil {
			first = perr
		}
		batch[k] = p
		k++
	}
	if first == nil {
		first = err
	}
	return batch[:k], first
}

// deliver writes batch until it is accepted; see deliverWith.
func (or *outputRunner) deliver(batch []*pack.Packet) {
	or.stats.in.Add(uint64(len(batch)))
	or.stats.tapBatch(batch)
	or.stats.holdSince.Store(nowNano())
	defer or.stats.holdSince.Store(0)
	or.deliverWith(batch, or.write)
}

// deliverWith sends batch with try until the sink accepts it. The one
// failure rule (README "Delivery rules"):
//   - a permanent failure (engine.Permanent: retrying cannot fix it) goes
//     to the dead-letter output at once (split); with none it is held;
//   - a retryable failure is retried with backoff (capped by
//     retry_backoff_max) until it succeeds: after `retries` attempts the
//     packets count as held (logged, dbus_output_held_packets, the input's
//     checkpoint does not pass them) and retrying goes on. Only with
//     dead_letter_after set, a retryable failure that lasted that long goes
//     to the dead-letter output.
//
// On a hard stop the remaining packets stay unacked.
func (or *outputRunner) deliverWith(batch []*pack.Packet, try func([]*pack.Packet) error) {
	e := or.e
	backoff := or.n.pc.RetryBackoff
	heldN := 0 // packets of batch counted in stats.held
	setHeld := func(n int) {
		or.stats.held.Add(uint64(n - heldN)) // two's complement: also subtracts
		heldN = n
	}
	var failingSince time.Time
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 {
			or.stats.retries.Add(1)
			if !Sleep(e.hardCtx, backoff) {
				return
			}
			backoff = min(backoff*2, max(or.n.pc.RetryBackoffMax, or.n.pc.RetryBackoff))
		}
		err := try(batch)
		if err == nil {
			or.ack(batch)
			if heldN > 0 {
				e.log.Info("held packets delivered", "output", or.n.name(), "packets", len(batch))
				setHeld(0)
			}
			return
		}
		if e.hardCtx.Err() != nil || errors.Is(err, ErrLeaseExpired) {
			// Not written, not acked: read again from the checkpoint.
			return
		}
		or.stats.setErr(err)
		batch, err = or.split(batch, err)
		if heldN > 0 {
			setHeld(len(batch)) // permanent failures left for the dead-letter output
		}
		if len(batch) == 0 {
			return
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		switch {
		case or.dlq != nil && or.n.pc.DeadLetterAfter > 0 && time.Since(failingSince) >= or.n.pc.DeadLetterAfter:
			e.log.Warn("output failing longer than dead_letter_after: dead-lettering", "output", or.n.name(),
				"packets", len(batch), "failing_for", time.Since(failingSince).Round(time.Millisecond), "err", err)
			if heldN == 0 {
				or.stats.failed.Add(uint64(len(batch)))
			}
			setHeld(0)
			for _, p := range batch {
				deadLetter(e, e.hardCtx, or.n, or.dlq, or.stats, p, err)
			}
			return
		case attempt < or.n.pc.Retries:
			e.log.Warn("output write failed: retrying", "output", or.n.name(), "attempt", attempt+1, "packets", len(batch), "err", err)
		case heldN == 0:
			or.stats.failed.Add(uint64(len(batch)))
			setHeld(len(batch))
			hint := "set dead_letter_after to dead-letter retryable failures after a time"
			if IsPermanent(err) {
				hint = "the failure is permanent: configure a dead_letter output"
			}
			e.log.Error("output keeps failing: holding packets and retrying with backoff; the input's checkpoint will not advance past them",
				"output", or.n.name(), "packets", len(batch), "err", err, "hint", hint)
		}
	}
}

// runAsync keeps up to in_flight batches in the sink at once.
func (or *outputRunner) runAsync() {
	e := or.e
	closed := false
	for {
		// Collect finished batches without blocking.
		for drained := false; !drained; {
			select {
			case s := <-or.comp:
				or.complete(s)
			default:
				drained = true
			}
		}
		inflight := len(or.slots) - len(or.free)
		if closed {
			if inflight == 0 {
				return
			}
			select {
			case s := <-or.comp:
				or.complete(s)
			case <-e.hardCtx.Done():
				return
			}
			continue
		}
		if len(or.free) == 0 {
			select {
			case s := <-or.comp:
				or.complete(s)
			case <-e.hardCtx.Done():
				return
			}
			continue
		}
		s := or.free[len(or.free)-1]
		var n int
		var err error
		if inflight > 0 {
			n, err = or.inbox.ring.GetWait(e.hardCtx, s.batch[:cap(s.batch)], time.Millisecond)
		} else {
			n, err = or.inbox.ring.Get(e.hardCtx, s.batch[:cap(s.batch)])
		}
		if err != nil {
			if e.hardCtx.Err() != nil {
				return
			}
			closed = true
			continue
		}
		if n == 0 {
			continue
		}
		or.free = or.free[:len(or.free)-1]
		s.batch = s.batch[:n]
		or.stats.in.Add(uint64(n))
		or.stats.tapBatch(s.batch)
		or.send(s)
		or.updateHold()
	}
}

// send hands slot s to the sink.
func (or *outputRunner) send(s *slot) {
	s.pending.Store(true)
	s.start = time.Now()
	or.stats.batches.Add(1)
	if !or.e.leaseValid() {
		s.Done(ErrLeaseExpired)
		return
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err := or.onPanic(r)
				s.Done(err)
			}
		}()
		or.async.WriteAsync(or.e.hardCtx, s.batch, s)
	}()
}

// complete handles a finished async batch: ack it, or retry /
// dead-letter / hold what failed (deliverWith, whose first try reports the
// outcome already known), then free the slot.
func (or *outputRunner) complete(s *slot) {
	d := time.Since(s.start)
	or.stats.ackNanos.Add(uint64(d))
	or.stats.writeHist.Observe(d.Seconds())
	or.stats.batchHist.Observe(float64(len(s.batch)))
	first := true
	or.deliverWith(s.batch, func(b []*pack.Packet) error {
		if first {
			first = false
			return s.err
		}
		return or.writeAsyncWait(b)
	})
	or.recycle(s)
}

// writeAsyncWait sends batch through WriteAsync and waits for its outcome
// (retries of an async output run one batch at a time, in order).
func (or *outputRunner) writeAsyncWait(batch []*pack.Packet) error {
	e := or.e
	if !e.leaseValid() {
		return ErrLeaseExpired
	}
	done := make(chan error, 1)
	cw := completionFunc(func(err error) {
		select {
		case done <- err:
		default: // a second completion is a plugin bug; ignore it
		}
	})
	func() {
		defer func() {
			if r := recover(); r != nil {
				done <- or.onPanic(r)
			}
		}()
		or.async.WriteAsync(e.hardCtx, batch, cw)
	}()
	select {
	case err := <-done:
		return err
	case <-e.hardCtx.Done():
		return e.hardCtx.Err()
	}
}

func (or *outputRunner) recycle(s *slot) {
	clear(s.batch)
	s.batch = s.batch[:0]
	s.err = nil
	or.rel.Flush()
	or.free = append(or.free, s)
	or.updateHold()
}

// updateHold publishes the start time of the oldest in-flight batch for
// the held-packet watchdog.
func (or *outputRunner) updateHold() {
	var oldest int64
	for _, s := range or.slots {
		if len(s.batch) > 0 && !s.start.IsZero() {
			if t := s.start.UnixNano(); oldest == 0 || t < oldest {
				oldest = t
			}
		}
	}
	or.stats.holdSince.Store(oldest)
}

type completionFunc func(error)

func (f completionFunc) Done(err error) { f(err) }
