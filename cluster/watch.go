package cluster

import (
	"sync"

	"github.com/go-zookeeper/zk"
)

// watches sets at most one ZooKeeper watch per (kind, path) at a time and
// turns every fired watch into a non-blocking signal on wake. Readers call
// get/children on every sync: a path already watched is read without a
// new watch, so watchers do not pile up. Forwarding goroutines end when
// their watch fires (go-zookeeper also fires them when the session ends)
// or when quit closes; wg tracks them.
type watches struct {
	conn *zk.Conn
	wake chan struct{}
	quit <-chan struct{}
	wg   *sync.WaitGroup

	mu    sync.Mutex
	armed map[string]bool // guarded by mu
}

func newWatches(conn *zk.Conn, wake chan struct{}, quit <-chan struct{}, wg *sync.WaitGroup) *watches {
	return &watches{conn: conn, wake: wake, quit: quit, wg: wg, armed: map[string]bool{}}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *watches) isArmed(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.armed[key]
}

func (w *watches) forward(key string, ch <-chan zk.Event) {
	w.mu.Lock()
	w.armed[key] = true
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
	if w.isArmed(key) {
		return w.conn.Get(p)
	}
	data, st, ch, err := w.conn.GetW(p)
	if err == nil {
		w.forward(key, ch)
	}
	return data, st, err
}

// children lists p's children, watching for changes of the list.
func (w *watches) children(p string) ([]string, *zk.Stat, error) {
	key := "c" + p
	if w.isArmed(key) {
		return w.conn.Children(p)
	}
	ch, st, evc, err := w.conn.ChildrenW(p)
	if err == nil {
		w.forward(key, evc)
	}
	return ch, st, err
}
