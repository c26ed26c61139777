package engine

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// owner is the state of one engine goroutine that moves packets: an input
// runner or an unfused filter runner. It owns a pool (for derived packets
// and copies), a Releaser, and the hand-offs downstream of its node,
// including fused filter chains that run inline.
type owner struct {
	e       *Engine
	name    string
	pool    *pack.Pool
	rel     *pack.Releaser
	edges   []edge
	targets []*inbox // inboxes this goroutine may put into
	ctx     context.Context
	// inlineOuts are the outputs chained into this goroutine.
	inlineOuts []*outputRunner
}

func (o *owner) addTarget(ib *inbox) {
	for _, t := range o.targets {
		if t == ib {
			return
		}
	}
	o.targets = append(o.targets, ib)
}

// done tells every inbox this goroutine fed that it will put no more.
func (o *owner) done() {
	o.rel.Flush()
	for _, or := range o.inlineOuts {
		or.finish()
	}
	for _, ib := range o.targets {
		ib.producerDone()
	}
}

// chains lists the fused filters run by this owner.
func (o *owner) chains() []*chain {
	var out []*chain
	var walk func(es []edge)
	walk = func(es []edge) {
		for _, ed := range es {
			if ed.chain != nil {
				out = append(out, ed.chain)
				walk(ed.chain.edges)
			}
		}
	}
	walk(o.edges)
	return out
}

// edge is one hand-off: into the ring of a node with its own goroutine,
// into a fused filter run inline, or into an inline output.
type edge struct {
	inbox *inbox
	chain *chain
	out   *outputRunner
}

// dispatch hands batch to every edge. At a fan-out point each packet gains
// one holder per extra branch before any branch sees it.
func (o *owner) dispatch(edges []edge, batch []*pack.Packet) {
	if len(batch) == 0 {
		return
	}
	if k := len(edges); k > 1 {
		for _, p := range batch {
			p.Retain(int32(k - 1))
		}
	}
	for _, ed := range edges {
		if ed.chain != nil {
			ed.chain.process(batch)
			continue
		}
		if ed.out != nil {
			// Inline output: write and ack in this goroutine. deliver may
			// reorder batch; the caller only clears it afterwards.
			ed.out.deliver(batch)
			ed.out.rel.Flush()
			continue
		}
		if _, err := ed.inbox.ring.Put(o.e.hardCtx, batch); err != nil {
			// Hard stop (or a bug closing a ring early): the packets are
			// not delivered and not acked, so their positions are not
			// committed; they will be read again.
			o.e.log.Warn("hand-off aborted", "from", o.name, "to", ed.inbox.n.name(), "err", err)
			return
		}
	}
}

// chain is a fused filter: it runs in its owner's goroutine.
type chain struct {
	n     *node
	f     Filter
	o     *owner
	fc    *filterCtx
	out   []*pack.Packet
	edges []edge
	dlq   *inbox
	stats *NodeStats
	// panics counts consecutive panics, for the restart backoff.
	panics int
	// processed counts the packets Process has returned from: a state
	// saved after reading it covers them (stats.in counts a batch before
	// it is processed, so a save keyed on it could miss the batch's
	// effect and never be repeated).
	processed atomic.Uint64
	// savedIn is the processed count at the last state save (commit
	// goroutine only).
	savedIn uint64
}

// process runs the filter over batch and dispatches what it emits.
func (c *chain) process(batch []*pack.Packet) {
	c.stats.in.Add(uint64(len(batch)))
	for i := 0; i < len(batch); {
		i = c.processFrom(batch, i)
	}
	c.processed.Add(uint64(len(batch)))
	c.flushOut()
}

func (c *chain) flushOut() {
	if len(c.out) == 0 {
		return
	}
	c.stats.out.Add(uint64(len(c.out)))
	c.stats.tapBatch(c.out)
	c.o.dispatch(c.edges, c.out)
	clear(c.out)
	c.out = c.out[:0]
}

// processFrom processes batch[i:], stopping after a panic; it returns the
// index to continue from.
func (c *chain) processFrom(batch []*pack.Packet, i int) (next int) {
	next = i
	defer func() {
		if r := recover(); r != nil {
			handled := c.fc.handled
			c.onPanic(c.fc.cur, handled, r)
			next++
		}
	}()
	// c.f changes only in onPanic, after which this loop is left.
	f, fc := c.f, c.fc
	for ; next < len(batch); next++ {
		p := batch[next]
		fc.cur, fc.handled = p, false
		if err := f.Process(fc, p); err != nil {
			if !fc.handled {
				// The copy-on-write replacement, if the filter took one,
				// holds the packet's place now.
				c.fail(fc.cur, err)
			} else {
				c.o.e.log.Warn("filter returned an error after handling the packet", "filter", c.n.name(), "err", err)
			}
		} else if !fc.handled {
			c.fail(p, fmt.Errorf("BUG: filter %s returned without emitting, dropping or consuming the packet", c.n.name()))
		}
	}
	c.panics = 0
	return next
}

// fail sends a packet the filter could not process to the dead-letter
// output, or holds it (never acked, so its source position is not
// committed past it) and counts it.
func (c *chain) fail(p *pack.Packet, err error) {
	c.stats.failed.Add(1)
	deadLetter(c.o.e, c.o.e.hardCtx, c.n, c.dlq, c.stats, p, err)
}

func (c *chain) onPanic(p *pack.Packet, handled bool, r any) {
	c.stats.panics.Add(1)
	c.panics++
	e := c.o.e
	e.log.Error("filter panicked: restarting it", "filter", c.n.name(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if !handled {
		c.fail(p, fmt.Errorf("filter %s panicked: %v", c.n.name(), r))
	}
	// Replace the instance; back off on repeated panics.
	backoff := e.cfg.Engine.RestartBackoff << min(c.panics-1, 8)
	Sleep(e.hardCtx, min(backoff, 10*time.Second))
	if inst, err := construct(c.n.pc); err == nil {
		if old, ok := c.f.(Closer); ok {
			old.Close(e.hardCtx)
		}
		if st, ok := c.f.(Stateful); ok {
			// Carry the state over to the new instance.
			if data, err := st.SaveState(); err == nil {
				if nst, ok := inst.(Stateful); ok {
					if err := nst.LoadState(data); err != nil {
						e.log.Error("restarted filter lost its state", "filter", c.n.name(), "err", err)
					}
				}
			}
		}
		c.f = inst.(Filter)
		c.stats.restarts.Add(1)
	} else {
		e.log.Error("filter restart failed; keeping the old instance", "filter", c.n.name(), "err", err)
	}
}

// deadLetter routes a failed packet: to dlq with the error recorded as
// attributes (when the packet is not shared), or holds it.
func deadLetter(e *Engine, ctx context.Context, n *node, dlq *inbox, st *NodeStats, p *pack.Packet, err error) {
	st.setErr(err)
	if dlq != nil {
		if !p.Shared() {
			p.Attrs.SetString("dbus_error", err.Error())
			p.Attrs.SetString("dbus_failed_at", n.name())
		}
		st.deadLettered.Add(1)
		one := [1]*pack.Packet{p}
		if _, perr := dlq.ring.Put(ctx, one[:]); perr != nil {
			e.log.Warn("dead-letter hand-off aborted", "from", n.name(), "err", perr)
		}
		return
	}
	st.held.Add(1)
	e.log.Error("packet held: no dead_letter output configured; its source position will not be committed past it",
		"plugin", n.name(), "seq", p.Seq, "err", err)
}

// filterCtx implements FilterContext and TickContext for one chain.
type filterCtx struct {
	c       *chain
	cur     *pack.Packet
	handled bool
}

func (f *filterCtx) Name() string      { return f.c.n.name() }
func (f *filterCtx) Log() *slog.Logger { return f.c.o.e.log.With("plugin", f.c.n.name()) }

func (f *filterCtx) mark(p *pack.Packet) {
	if p == f.cur {
		f.handled = true
	}
}

func (f *filterCtx) Emit(p *pack.Packet) {
	f.mark(p)
	c := f.c
	c.out = append(c.out, p)
	if len(c.out) == cap(c.out) {
		c.flushOut()
	}
}

func (f *filterCtx) Drop(p *pack.Packet, reason string) {
	f.mark(p)
	f.c.stats.drop(reason)
	f.c.o.rel.Release(p)
}

func (f *filterCtx) Consume(p *pack.Packet) {
	f.mark(p)
	f.c.o.rel.Release(p)
}

// get takes a packet from the owner's pool; when the pool is empty it
// first hands on what the chain has emitted so far, so packets can flow
// back.
func (f *filterCtx) get() (*pack.Packet, error) {
	o := f.c.o
	if p := o.pool.TryGet(); p != nil {
		return p, nil
	}
	f.c.flushOut()
	o.rel.Flush()
	return o.pool.Get(o.e.hardCtx)
}

func (f *filterCtx) Writable(p *pack.Packet) (*pack.Packet, error) {
	if !p.Shared() {
		return p, nil
	}
	q, err := f.get()
	if err != nil {
		return nil, err
	}
	p.CloneTo(q)
	if p == f.cur {
		f.cur = q
	}
	f.c.stats.copies.Add(1)
	return q, nil
}

func (f *filterCtx) Derive(parent *pack.Packet) (*pack.Packet, error) {
	q, err := f.get()
	if err != nil {
		return nil, err
	}
	parent.Derive(q)
	return q, nil
}

func (f *filterCtx) New() (*pack.Packet, error) { return f.get() }
