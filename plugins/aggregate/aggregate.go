package aggregate

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/window"
	"github.com/dbus-project/dbus/plugins/window/winstat"
)

// Filter is Aggregate.
type Filter struct {
	groupBy  []string
	field    string
	interval int64
	late     int64
	tick     time.Duration

	open    map[int64]map[string]*winstat.Stats
	maxTs   int64
	closed  int64 // intervals starting before closed are done
	started bool
	pending []summary
	keyBuf  []byte

	events, lateN, summaries atomic.Uint64
}

type summary struct {
	start int64
	key   string
	st    *winstat.Stats
}

// Counters is a snapshot of Aggregate's counters.
type Counters struct{ Events, Late, Summaries uint64 }

// Counters returns the filter's counters.
func (f *Filter) Counters() Counters {
	return Counters{f.events.Load(), f.lateN.Load(), f.summaries.Load()}
}

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{
		groupBy:  c.Strings("group_by"),
		field:    c.String("field"),
		interval: int64(c.Duration("interval")),
		late:     int64(c.Duration("lateness")),
		tick:     c.Duration("tick"),
		open:     map[int64]map[string]*winstat.Stats{},
	}
	if f.interval <= 0 {
		return nil, c.Errorf("interval", "must be positive")
	}
	return f, nil
}

// TickInterval implements engine.Ticker.
func (f *Filter) TickInterval() time.Duration { return f.tick }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	start := floorDiv(p.Ts, f.interval) * f.interval
	if f.started && start < f.closed {
		f.lateN.Add(1)
		fc.Drop(p, "late")
		return nil
	}
	if !f.started {
		f.started, f.closed, f.maxTs = true, start, p.Ts
	}
	keys := f.open[start]
	if keys == nil {
		keys = map[string]*winstat.Stats{}
		f.open[start] = keys
	}
	f.keyBuf = f.keyBuf[:0]
	for i, g := range f.groupBy {
		if i > 0 {
			f.keyBuf = append(f.keyBuf, '|')
		}
		if a, ok := p.Attrs.Get(g); ok {
			f.keyBuf = a.AppendText(f.keyBuf)
		}
	}
	st := keys[string(f.keyBuf)]
	if st == nil {
		st = &winstat.Stats{}
		keys[string(f.keyBuf)] = st
	}
	v, ok := 0.0, false
	if f.field != "" {
		if a, has := p.Attrs.Get(f.field); has {
			v, ok = a.Float()
		}
	}
	if ok {
		st.Add(v)
	} else {
		st.AddCount(1)
	}
	f.events.Add(1)
	if p.Ts > f.maxTs {
		f.maxTs = p.Ts
	}
	fc.Consume(p)
	f.close(f.maxTs - f.late)
	return nil
}

// close moves intervals ending at or before watermark to pending.
func (f *Filter) close(watermark int64) {
	var done []int64
	for start := range f.open {
		if start+f.interval <= watermark {
			done = append(done, start)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i] < done[j] })
	for _, start := range done {
		keys := make([]string, 0, len(f.open[start]))
		for k := range f.open[start] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f.pending = append(f.pending, summary{start, k, f.open[start][k]})
		}
		delete(f.open, start)
		if start+f.interval > f.closed {
			f.closed = start + f.interval
		}
	}
}

// Tick implements engine.Ticker.
func (f *Filter) Tick(tc engine.TickContext) error {
	return f.emit(tc)
}

// FlushFilter implements engine.FilterFlusher: at shutdown every open
// interval is closed and emitted, partial ones included (the end of a
// replay must not lose its last minutes).
func (f *Filter) FlushFilter(tc engine.TickContext) error {
	f.close(1<<63 - 1)
	return f.emit(tc)
}

func (f *Filter) emit(tc engine.TickContext) error {
	for i := range f.pending {
		s := &f.pending[i]
		p, err := tc.New()
		if err != nil {
			f.pending = f.pending[i:]
			return err
		}
		p.Ts = s.start
		p.Attrs.SetString("type", "aggregate")
		p.Attrs.SetString("key", s.key)
		if len(f.groupBy) > 0 {
			parts := strings.SplitN(s.key, "|", len(f.groupBy))
			for j, g := range f.groupBy {
				if j < len(parts) {
					p.Attrs.SetString(g, parts[j])
				}
			}
		}
		p.Attrs.SetString("interval_start", time.Unix(0, s.start).UTC().Format(time.RFC3339Nano))
		window.SetStats(&p.Attrs, s.st, f.field != "")
		p.Payload = append(p.Payload[:0], s.key...)
		tc.Emit(p)
		f.summaries.Add(1)
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	return nil
}
