package engine

import (
	"fmt"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// filterRunner runs an unfused filter (several upstreams, or a Ticker) in
// its own goroutine behind its inbox ring.
type filterRunner struct {
	owner
	n     *node
	chain *chain
	inbox *inbox
	buf   []*pack.Packet
}

func (e *Engine) newFilterRunner(n *node, f Filter, instances map[*node]any) (*filterRunner, error) {
	pool, err := pack.NewPool(pack.PoolConfig{Count: max(e.cfg.Engine.Pool/4, 4*e.cfg.Engine.Batch), MaxPacketBytes: e.cfg.Engine.MaxPacketBytes})
	if err != nil {
		return nil, err
	}
	fr := &filterRunner{
		owner: owner{e: e, name: n.name(), pool: pool, rel: pack.NewReleaser(256), ctx: e.hardCtx},
		n:     n,
		inbox: e.inboxes[n],
		buf:   make([]*pack.Packet, e.cfg.Engine.Batch),
	}
	c := &chain{n: n, f: f, o: &fr.owner, stats: e.stats[n.name()]}
	c.fc = &filterCtx{c: c}
	c.out = make([]*pack.Packet, 0, e.cfg.Engine.Batch)
	if n.dlq != nil {
		c.dlq = e.inboxes[n.dlq]
		fr.owner.addTarget(c.dlq)
	}
	fr.chain = c
	return fr, nil
}

// run consumes the inbox until it is closed and drained, then flushes the
// filter and tells its downstream it is done.
func (fr *filterRunner) run() {
	e := fr.e
	c := fr.chain
	c.edges = fr.edges
	defer fr.owner.done()
	var tick time.Duration
	var ticker Ticker
	if t, ok := c.f.(Ticker); ok {
		ticker, tick = t, t.TickInterval()
		if tick <= 0 {
			tick = time.Second
		}
	}
	next := time.Now().Add(tick)
	for {
		var n int
		var err error
		if ticker != nil {
			wait := time.Until(next)
			if wait <= 0 {
				fr.tick(ticker)
				next = time.Now().Add(tick)
				continue
			}
			n, err = fr.inbox.ring.GetWait(e.hardCtx, fr.buf, wait)
		} else {
			n, err = fr.inbox.ring.Get(e.hardCtx, fr.buf)
		}
		if err != nil {
			break
		}
		if n > 0 {
			c.process(fr.buf[:n])
			clear(fr.buf[:n])
			fr.rel.Flush()
		}
	}
	if ff, ok := c.f.(FilterFlusher); ok {
		fr.safe(func() error { return ff.FlushFilter(c.fc) })
		c.flushOut()
	} else if fl, ok := c.f.(Flusher); ok {
		fr.safe(func() error { return fl.Flush(e.hardCtx) })
		c.flushOut()
	}
}

func (fr *filterRunner) tick(t Ticker) {
	fr.safe(func() error { return t.Tick(fr.chain.fc) })
	fr.chain.flushOut()
	fr.rel.Flush()
}

func (fr *filterRunner) safe(f func() error) {
	defer func() {
		if r := recover(); r != nil {
			fr.chain.stats.panics.Add(1)
			fr.e.log.Error("filter panicked in tick/flush", "filter", fr.n.name(), "panic", fmt.Sprint(r))
		}
	}()
	if err := f(); err != nil {
		fr.e.log.Error("filter tick/flush failed", "filter", fr.n.name(), "err", err)
	}
}
