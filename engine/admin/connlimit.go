package admin

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener holds at most n connections open at a time, and keeps the
// admin API answering while slow or idle clients hold every slot.
//
// A connection is either evictable (accepted but its request not yet
// fully read: headers or body still arriving, or idle between requests)
// or serving (its handler has the whole request). When a new connection
// arrives and every slot is taken, the listener closes one evictable
// connection to make room: an idle one first, else the one that has been
// sending its request longest (at least evictGrace, so a request that
// arrives whole is never displaced before its handler has it). So 1000 clients trickling bodies cannot starve an
// operator's request: each new arrival displaces the oldest trickler, and
// a request that arrives whole is served at once. Only when every slot is
// serving (real load) does Accept wait for one to close.
//
// Threat model: anyone who can reach the listener can open connections;
// with this policy they cannot hold the API longer than it takes others
// to connect, and they never hold more than n descriptors. A legitimate
// client that uploads slowly while the listener is flooded may be cut
// off, which is the price of staying reachable (nginx and Apache's
// reqtimeout make the same trade).
type limitListener struct {
	net.Listener
	sem  chan struct{}
	open atomic.Int64
	peak atomic.Int64
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	conns map[*limitConn]struct{}
	evict atomic.Int64 // connections closed to make room
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), conns: make(map[*limitConn]struct{})}
}

// connection states, as the listener sees them.
const (
	connReading int32 = iota // accepted, request not yet whole (evictable)
	connServing              // the handler has the whole request
	connIdle                 // between requests (evicted first)
)

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.sem <- struct{}{}:
	default:
		// Every slot is taken: close an evictable connection, then wait
		// for a slot (at once if one was evicted; else until a busy
		// connection ends or one becomes evictable).
		var tick *time.Ticker
		for acquired := false; !acquired; {
			if !l.evictOne(time.Now()) && tick == nil {
				tick = time.NewTicker(evictGrace / 4)
				defer tick.Stop()
			}
			var retry <-chan time.Time
			if tick != nil {
				retry = tick.C
			}
			select {
			case l.sem <- struct{}{}:
				acquired = true
			case <-retry:
			case <-l.done:
				c.Close()
				return nil, net.ErrClosed
			}
		}
	}
	lc := &limitConn{Conn: c, l: l}
	lc.since.Store(time.Now().UnixNano())
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return lc, nil
}

// evictGrace is how long a connection may take to send its request before
// it can be displaced: a client that sends a whole request is served well
// within it, so only slow (or idle) connections are ever closed.
const evictGrace = 100 * time.Millisecond

// evictOne closes the connection idle longest, else the one that has been
// sending its request longest (for at least evictGrace). It reports
// whether it closed one.
func (l *limitListener) evictOne(now time.Time) bool {
	cutoff := now.Add(-evictGrace).UnixNano()
	l.mu.Lock()
	var victim *limitConn
	for c := range l.conns {
		st := c.state.Load()
		if st == connServing || (st == connReading && c.since.Load() > cutoff) {
			continue
		}
		if victim == nil {
			victim = c
			continue
		}
		vst := victim.state.Load()
		switch {
		case st == connIdle && vst != connIdle:
			victim = c
		case st == vst && c.since.Load() < victim.since.Load():
			victim = c
		}
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	l.evict.Add(1)
	victim.Close()
	return true
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	l     *limitListener
	since atomic.Int64 // unix ns: accepted, or last became idle or reading
	state atomic.Int32
	once  sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}

// unwrapLimitConn finds the limitConn under a connection the HTTP server
// holds (a *tls.Conn wraps it when the listener speaks TLS).
func unwrapLimitConn(c net.Conn) *limitConn {
	for c != nil {
		if lc, ok := c.(*limitConn); ok {
			return lc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// connState is the http.Server's ConnState hook: a connection turns idle
// between requests and reading when the next request starts.
func connState(c net.Conn, st http.ConnState) {
	lc := unwrapLimitConn(c)
	if lc == nil {
		return
	}
	switch st {
	case http.StateIdle:
		lc.since.Store(time.Now().UnixNano())
		lc.state.Store(connIdle)
	case http.StateActive:
		// A request on a kept-alive connection starts now; the first one
		// started when the connection was accepted.
		if lc.state.Swap(connReading) == connIdle {
			lc.since.Store(time.Now().UnixNano())
		}
	}
}

type connKey struct{}

// connContext records the connection in every request's context, for
// trackRequest.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := unwrapLimitConn(c); lc != nil {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// trackRequest marks the connection serving once its handler has the whole
// request: at once for a request without a body, else when the handler
// has read the body to its end (or closed it).
func trackRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, _ := r.Context().Value(connKey{}).(*limitConn)
		if lc != nil {
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				lc.state.Store(connServing)
			} else {
				r.Body = &trackedBody{ReadCloser: r.Body, c: lc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

type trackedBody struct {
	io.ReadCloser
	c *limitConn
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.c.state.Store(connServing)
	}
	return n, err
}

func (b *trackedBody) Close() error {
	b.c.state.Store(connServing)
	return b.ReadCloser.Close()
}
