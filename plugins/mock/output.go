package mock

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Output acks on receipt, after an optional latency, failing a ratio of
// packets on purpose when asked.
type Output struct {
	latency   time.Duration
	failEvery uint64
	failFirst int64
	failErr   error // what injected failures return
	n         uint64
	writes    int64
}

func newOutput(c *engine.Conf) (engine.Output, error) {
	o := &Output{latency: c.Duration("latency"), failFirst: c.Int("fail_first"), failErr: ErrInjected}
	if c.Bool("fail_permanent") {
		o.failErr = engine.Permanent(ErrInjected)
	}
	if r := c.Float("fail_ratio"); r > 0 {
		o.failEvery = uint64(1/r + 0.5)
		if o.failEvery == 0 {
			o.failEvery = 1
		}
	}
	return o, nil
}

// Inline implements engine.InlineOutput: without latency, acking costs
// nothing, so the engine may chain the output into its upstream goroutine.
func (o *Output) Inline() bool { return o.latency == 0 }

// ErrInjected is the error of injected failures.
var ErrInjected = errors.New("mock output: injected failure")

// Write implements engine.Output.
func (o *Output) Write(ctx context.Context, batch []*pack.Packet) error {
	if o.latency > 0 {
		t := time.NewTimer(o.latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	o.writes++
	if o.writes <= o.failFirst {
		return o.failErr
	}
	if o.failEvery == 0 {
		return nil
	}
	var be *engine.BatchError
	for i := range batch {
		o.n++
		if o.n%o.failEvery == 0 {
			if be == nil {
				be = &engine.BatchError{Errs: make([]error, len(batch))}
			}
			be.Errs[i] = o.failErr
		}
	}
	if be != nil {
		return be
	}
	return nil
}

// Recorder is an output for tests: it keeps a copy of every payload it
// acked, in order.
type Recorder struct {
	mu       sync.Mutex
	payloads [][]byte
	keys     [][]byte
	attrs    []map[string]string
	// FailNext makes the next n writes fail (tests of retries).
	failNext int
	writes   int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// FailNext makes the next n Write calls fail.
func (r *Recorder) FailNext(n int) {
	r.mu.Lock()
	r.failNext = n
	r.mu.Unlock()
}

// Write implements engine.Output.
func (r *Recorder) Write(_ context.Context, batch []*pack.Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if r.failNext > 0 {
		r.failNext--
		return ErrInjected
	}
	for _, p := range batch {
		r.payloads = append(r.payloads, append([]byte(nil), p.Payload...))
		r.keys = append(r.keys, append([]byte(nil), p.Key...))
		var m map[string]string
		if n := p.Attrs.Len(); n > 0 {
			m = make(map[string]string, n)
			for i := 0; i < n; i++ {
				a := p.Attrs.At(i)
				m[string(a.K)] = string(a.AppendText(nil))
			}
		}
		r.attrs = append(r.attrs, m)
	}
	return nil
}

// Payloads returns a copy of what was recorded.
func (r *Recorder) Payloads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.payloads...)
}

// Keys returns the recorded keys.
func (r *Recorder) Keys() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.keys...)
}

// Attrs returns the recorded attributes (text form).
func (r *Recorder) Attrs() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.attrs...)
}

// Len returns how many packets were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.payloads)
}

// Writes returns how many times Write was called.
func (r *Recorder) Writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// RegisterRecorder registers an output class named class whose every
// instance writes into rec.
func RegisterRecorder(reg *engine.Registry, class string, rec *Recorder) error {
	return reg.Register(engine.Spec{
		Class: class, Kind: engine.KindOutput, Summary: "test recorder",
		NewOutput: func(*engine.Conf) (engine.Output, error) { return rec, nil },
	})
}
