package cluster

import (
	"slices"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// watches sets at most one ZooKeeper watch per (kind, path) at a time and
// turns every fired watch into a non-blocking signal on wake. Readers call
// get/children on every sync: a path already watched is not read again
// for up to cacheAge - the value read last is returned, since ZooKeeper
// fires the watch on any change (and go-zookeeper on a session's end) -
// so watchers do not pile up and a sync with nothing changed costs no
// round trip. A change whose event is still on its way is read at the
// next sync, which its wake triggers (every sync is level-triggered);
// cacheAge bounds what a lost event could cost. Forwarding goroutines end when
// their watch fires (go-zookeeper also fires them when the session ends)
// or when quit closes; wg tracks them.
type watches struct {
	conn *zk.Conn
	wake chan struct{}
	quit <-chan struct{}
	wg   *sync.WaitGroup

	mu    sync.Mutex
	armed map[string]watched // guarded by mu
}

// watched is the value read last while a watch is set.
type watched struct {
	data []byte
	kids []string
	st   *zk.Stat
	at   time.Time
}

// cacheAge is how long a watched path's value is reused without reading
// it again.
const cacheAge = time.Second

// keep records v as key's newest value if key is still watched.
func (w *watches) keep(key string, v watched) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.armed[key]; ok {
		w.armed[key] = v
	}
}

func newWatches(conn *zk.Conn, wake chan struct{}, quit <-chan struct{}, wg *sync.WaitGroup) *watches {
	return &watches{conn: conn, wake: wake, quit: quit, wg: wg, armed: map[string]watched{}}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *watches) cached(key string) (watched, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.armed[key]
	return v, ok
}

func (w *watches) forward(key string, v watched, ch <-chan zk.Event) {
	w.mu.Lock()
	w.armed[key] = v
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case <-ch:
		case <-w.quit:
		}
		w.mu.Lock()
		delete(w.armed, key)
		w.mu.Unlock()
		signal(w.wake)
	}()
}

// get reads p, watching it for changes.
func (w *watches) get(p string) ([]byte, *zk.Stat, error) {
	key := "d" + p
	if v, ok := w.cached(key); ok {
		if time.Since(v.at) < cacheAge {
			return v.data, v.st, nil
		}
		data, st, err := w.conn.Get(p)
		if err == nil {
			w.keep(key, watched{data: data, st: st, at: time.Now()})
		}
		return data, st, err
	}
	data, st, ch, err := w.conn.GetW(p)
	if err == nil {
		w.forward(key, watched{data: data, st: st, at: time.Now()}, ch)
	}
	return data, st, err
}

// children lists p's children, watching for changes of the list.
func (w *watches) children(p string) ([]string, *zk.Stat, error) {
	key := "c" + p
	if v, ok := w.cached(key); ok {
		if time.Since(v.at) < cacheAge {
			return slices.Clone(v.kids), v.st, nil
		}
		ch, st, err := w.conn.Children(p)
		if err == nil {
			w.keep(key, watched{kids: slices.Clone(ch), st: st, at: time.Now()})
		}
		return ch, st, err
	}
	ch, st, evc, err := w.conn.ChildrenW(p)
	if err == nil {
		w.forward(key, watched{kids: slices.Clone(ch), st: st, at: time.Now()}, evc)
	}
	return ch, st, err
}
