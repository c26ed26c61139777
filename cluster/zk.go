package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// session wraps one zk.Conn and tracks its state from the event callback
// (the event channel of go-zookeeper drops events when full; the callback
// does not). go-zookeeper keeps the Conn across session expiry: it opens a
// new session on the same Conn, so ephemeral nodes and watches of the old
// session are gone and SessionID changes.
type session struct {
	conn    *zk.Conn
	servers []string
	timeout time.Duration
	acl     []zk.ACL
	log     *slog.Logger

	// The lease (DESIGN.md invariant 4): the data path of a resource
	// may write while the monotonic clock is before leaseUntil, which
	// renew moves to (send time of a request the server answered on
	// session leaseSID) + (1 - margin) x the negotiated session timeout.
	base       time.Time    // origin of the lease clock (monotonic)
	margin     float64      // the cluster's doubt fraction
	leaseSID   atomic.Int64 // session the lease belongs to (the member's registration)
	leaseUntil atomic.Int64 // nanoseconds since base
	negotiated atomic.Int64 // session timeout granted by the server, ns (0: not known yet)
	// fencedTotal counts checkpoint writes refused by fencing, over
	// every resource (dbus_cluster_fencing_rejections_total).
	fencedTotal atomic.Uint64

	mu sync.Mutex
	// Guarded by mu.
	state        zk.State
	disconnected time.Time // when the last Disconnected began; zero if connected
	expiredAt    time.Time
	notify       chan struct{} // closed and replaced on every state change
}

// zkLogger adapts slog for go-zookeeper's logger. It also learns the
// session timeout the server granted, which go-zookeeper only logs.
type zkLogger struct {
	log *slog.Logger
	s   *session
}

func (l zkLogger) Printf(format string, args ...any) {
	if format == "authenticated: id=%d, timeout=%d" && len(args) == 2 && l.s != nil {
		if ms, ok := args[1].(int32); ok && ms > 0 {
			l.s.negotiated.Store(int64(ms) * int64(time.Millisecond))
		}
	}
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, args...))
}

// bindLease makes the lease belong to session sid (a new registration)
// and starts it expired: renew extends it.
func (s *session) bindLease(sid int64) {
	s.leaseSID.Store(sid)
	s.leaseUntil.Store(0)
}

// renew sends a request (exists p) and, when the server answers it on the
// session the lease belongs to, extends the lease to the request's send
// time + (1 - margin) x the negotiated session timeout: the server
// received the request after it was sent, so it cannot expire the
// session before that send time + the timeout.
func (s *session) renew(p string) error {
	sid := s.conn.SessionID()
	neg := time.Duration(s.negotiated.Load())
	if sid == 0 || sid != s.leaseSID.Load() || neg == 0 {
		return fmt.Errorf("lease not renewed: session 0x%x is not the registered one (0x%x) or its timeout is not known yet", sid, s.leaseSID.Load())
	}
	sent := time.Since(s.base)
	if _, _, err := s.conn.Exists(p); err != nil {
		return err
	}
	if s.conn.SessionID() != sid {
		return fmt.Errorf("lease not renewed: the session changed during the request")
	}
	until := int64(sent + time.Duration(float64(min(neg, s.timeout))*(1-s.margin)))
	for {
		old := s.leaseUntil.Load()
		if until <= old || s.leaseUntil.CompareAndSwap(old, until) {
			return nil
		}
	}
}

// leaseValid reports whether the lease of session sid has not run out:
// the server cannot have expired that session yet. Cheap and
// allocation-free (two atomic loads and a monotonic clock read).
func (s *session) leaseValid(sid int64) bool {
	return sid != 0 && s.leaseSID.Load() == sid && int64(time.Since(s.base)) < s.leaseUntil.Load()
}

// leaseLeft is how long the lease of the registered session has left
// (negative: run out).
func (s *session) leaseLeft() time.Duration {
	return time.Duration(s.leaseUntil.Load()) - time.Since(s.base)
}

// connect opens a session to servers and waits until it has a session or
// the timeout passes. dialer may be nil.
func connect(ctx context.Context, servers []string, sessionTimeout, connectTimeout time.Duration, auth *AuthConfig, creds *Credentials, dialer zk.Dialer, log *slog.Logger) (*session, error) {
	s := &session{servers: servers, timeout: sessionTimeout, log: log, notify: make(chan struct{}), state: zk.StateDisconnected,
		base: time.Now(), margin: DefaultDoubt}
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(servers, sessionTimeout, zk.WithLogger(zkLogger{log, s}),
		zk.WithEventCallback(s.onEvent), zk.WithLogInfo(true), zk.WithDialer(dialer))
	if err != nil {
		return nil, fmt.Errorf("zookeeper %s: %w", strings.Join(servers, ","), err)
	}
	s.conn = conn
	wctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		st, ch := s.stateCh()
		if st == zk.StateHasSession {
			break
		}
		select {
		case <-ch:
		case <-wctx.Done():
			conn.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("cannot reach ZooKeeper at %s within %s (state %s): is it running and reachable?", strings.Join(servers, ","), connectTimeout, st)
		}
	}
	s.acl = zk.WorldACL(zk.PermAll)
	if auth != nil {
		pass, err := creds.Expand(auth.Password)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper auth: %w", err)
		}
		if err := conn.AddAuth("digest", []byte(auth.User+":"+pass)); err != nil {
			conn.Close()
			return nil, fmt.Errorf("zookeeper digest auth as %q: %w", auth.User, err)
		}
		// Creator-only ACL: the digest identity this session authenticated as.
		s.acl = zk.AuthACL(zk.PermAll)
	}
	return s, nil
}

func (s *session) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.state
	s.state = ev.State
	switch ev.State {
	case zk.StateDisconnected, zk.StateConnecting:
		if s.disconnected.IsZero() && (prev == zk.StateHasSession || prev == zk.StateConnected || prev == zk.StateConnectedReadOnly) {
			s.disconnected = time.Now()
		}
	case zk.StateExpired:
		s.expiredAt = time.Now()
	case zk.StateHasSession:
		s.disconnected = time.Time{}
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// stateCh returns the current state and a channel closed on the next change.
func (s *session) stateCh() (zk.State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.notify
}

// status returns the state, the session id and since when the session has
// been disconnected (zero when connected).
func (s *session) status() (zk.State, int64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.conn.SessionID(), s.disconnected
}

func (s *session) close() { s.conn.Close() }

// ensure creates every path of ps that does not exist (persistent, empty).
func (s *session) ensure(ps ...string) error {
	for _, p := range ps {
		_, err := s.conn.Create(p, nil, 0, s.acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create znode %s: %w", p, err)
		}
	}
	return nil
}

func (s *session) getJSON(p string, dst any) (*zk.Stat, error) {
	data, st, err := s.conn.Get(p)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return st, fmt.Errorf("znode %s holds invalid JSON: %w", p, err)
	}
	return st, nil
}

// multiErr returns the error of a failed multi: the first failing op's
// error, with its index (-1 for a request-level error).
func multiErr(resps []zk.MultiResponse, err error) (int, error) {
	for i, r := range resps {
		if r.Error != nil && !errors.Is(r.Error, zk.ErrAPIError) && !errors.Is(r.Error, zk.ErrUnknown) {
			return i, r.Error
		}
	}
	if err != nil {
		return -1, err
	}
	for i, r := range resps {
		if r.Error != nil {
			return i, r.Error
		}
	}
	return -1, nil
}

// isConnErr reports whether err is a connectivity problem (retry later)
// rather than an answer from ZooKeeper.
func isConnErr(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrClosing) ||
		errors.Is(err, zk.ErrSessionMoved) || errors.Is(err, context.DeadlineExceeded)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: cluster: cannot marshal " + fmt.Sprintf("%T", v) + ": " + err.Error())
	}
	return b
}

// readWidth bounds the ZooKeeper reads one caller has in flight at once
// (forEachParallel): go-zookeeper pipelines concurrent requests on its
// connection, so N reads cost about one round trip instead of N.
const readWidth = 32

// forEachParallel calls f(0..n-1) from at most readWidth goroutines and
// returns the error of the lowest index that failed (nil if none).
func forEachParallel(n int, f func(i int) error) error {
	if n <= 1 {
		if n == 1 {
			return f(0)
		}
		return nil
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, readWidth) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
