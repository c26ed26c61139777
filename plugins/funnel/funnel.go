package funnel

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

const (
	maxDims    = 4
	otherValue = "_other" // dimension value past max_dimension_values
	noneValue  = "_none"  // dimension attribute absent
)

// interval holds the counts of the journeys that started in it.
// Guarded by Filter.mu.
type interval struct {
	start   int64
	total   []int64              // journeys that reached at least step i
	dims    []map[string][]int64 // per dimension: value -> counts
	final   bool                 // no journey of it can progress any more
	partial bool                 // made final by shutdown before its time was up
	emitted bool
}

// Counters is a snapshot of Funnel's counters.
type Counters struct {
	Events     uint64 // step events accepted
	NotStep    uint64 // packets whose action is not a step (consumed)
	NoUser     uint64 // step packets without the user attribute (dropped)
	BadTime    uint64 // time_field missing or unparsable (dropped)
	Late       uint64 // events older than the watermark (dropped)
	Forced     uint64 // events applied early because max_pending was reached
	Journeys   uint64 // journeys started (first step)
	Completed  uint64 // journeys that reached the last step
	Expired    uint64 // journeys ended by `within` before the last step
	Evicted    uint64 // journeys ended early by max_users
	NoEntry    uint64 // later steps of users without a journey in progress
	OutOfOrder uint64 // steps that skipped ahead (not counted)
	Repeats    uint64 // steps already reached (not counted again)
	Summaries  uint64 // summary packets emitted
}

// Filter is Funnel.
type Filter struct {
	name       string
	userField  string
	stepField  string
	steps      []string
	within     int64
	every      int64
	late       int64
	dims       []string
	timeField  string
	tp         timeParser
	maxUsers   int
	maxPending int
	maxDimVals int
	keep       int
	tick       time.Duration

	// Filter goroutine only.
	pending  eventHeap
	journeys map[string]*journey
	jheap    journeyHeap
	free     []*journey
	intern   []map[string]string // per dimension: interned values
	maxTs    int64
	started  bool
	finalAt  int64 // smallest end+within of the intervals not final
	shutdown bool
	unsent   []summary // summaries New failed for, retried next tick
	buf      []byte

	mu        sync.Mutex // guards intervals and wm (written by the filter goroutine under mu)
	intervals map[int64]*interval
	wm        int64 // events before wm are applied; newer ones are pending

	active, pendingN                                atomic.Int64
	events, notStep, noUser, badTime, nLate, forced atomic.Uint64
	nJourneys, completed, expired, evicted          atomic.Uint64
	noEntry, outOfOrder, repeats, summaries         atomic.Uint64
}

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{
		name:       c.Name,
		userField:  c.String("user"),
		stepField:  c.String("step_field"),
		steps:      c.Strings("steps"),
		within:     int64(c.Duration("within")),
		every:      int64(c.Duration("interval")),
		late:       int64(c.Duration("lateness")),
		dims:       c.Strings("dimensions"),
		timeField:  c.String("time_field"),
		maxUsers:   int(c.Int("max_users")),
		maxPending: int(c.Int("max_pending")),
		maxDimVals: int(c.Int("max_dimension_values")),
		keep:       int(c.Int("keep")),
		tick:       c.Duration("tick"),
		journeys:   map[string]*journey{},
		intervals:  map[int64]*interval{},
		wm:         math.MinInt64,
		finalAt:    math.MaxInt64,
	}
	if f.userField == "" {
		return nil, c.Errorf("user", "must not be empty")
	}
	if f.stepField == "" {
		return nil, c.Errorf("step_field", "must not be empty")
	}
	if len(f.steps) < 2 {
		return nil, c.Errorf("steps", "a funnel needs at least 2 steps, got %d", len(f.steps))
	}
	for i, s := range f.steps {
		if slices.Contains(f.steps[:i], s) {
			return nil, c.Errorf("steps", "step %q is listed twice", s)
		}
	}
	if len(f.dims) > maxDims {
		return nil, c.Errorf("dimensions", "at most %d dimensions, got %d", maxDims, len(f.dims))
	}
	for i, d := range f.dims {
		if d == "" || slices.Contains(f.dims[:i], d) {
			return nil, c.Errorf("dimensions", "dimension %q is empty or listed twice", d)
		}
	}
	if f.within <= 0 || f.every <= 0 {
		return nil, c.Errorf("within", "within and interval must be positive")
	}
	if f.timeField != "" {
		tp, err := newTimeParser(c.String("time_layout"))
		if err != nil {
			return nil, c.Errorf("time_layout", "%v", err)
		}
		f.tp = tp
	}
	f.intern = make([]map[string]string, len(f.dims))
	for i := range f.intern {
		f.intern[i] = map[string]string{}
	}
	return f, nil
}

// TickInterval implements engine.Ticker.
func (f *Filter) TickInterval() time.Duration { return f.tick }

// Counters returns the filter's counters (safe from any goroutine).
func (f *Filter) Counters() Counters {
	return Counters{
		Events: f.events.Load(), NotStep: f.notStep.Load(), NoUser: f.noUser.Load(), BadTime: f.badTime.Load(),
		Late: f.nLate.Load(), Forced: f.forced.Load(), Journeys: f.nJourneys.Load(), Completed: f.completed.Load(),
		Expired: f.expired.Load(), Evicted: f.evicted.Load(), NoEntry: f.noEntry.Load(), OutOfOrder: f.outOfOrder.Load(),
		Repeats: f.repeats.Load(), Summaries: f.summaries.Load(),
	}
}

// stepIndex returns the step a's value names, or -1.
func (f *Filter) stepIndex(a *pack.Attr) int {
	b := a.B
	if a.Kind != pack.KindString {
		f.buf = a.AppendText(f.buf[:0])
		b = f.buf
	}
	for i, s := range f.steps {
		if string(b) == s {
			return i
		}
	}
	return -1
}

// Process implements engine.Filter: step events are queued in event-time
// order and applied once the watermark passes them; every raw packet is
// consumed (or dropped with a reason).
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	step := -1
	if a, ok := p.Attrs.Get(f.stepField); ok {
		step = f.stepIndex(a)
	}
	if step < 0 {
		f.notStep.Add(1)
		fc.Consume(p)
		return nil
	}
	ua, ok := p.Attrs.Get(f.userField)
	if !ok {
		f.noUser.Add(1)
		fc.Drop(p, "no_user")
		return nil
	}
	ts := p.Ts
	if f.timeField != "" {
		ta, ok := p.Attrs.Get(f.timeField)
		var err error
		if ok {
			ts, err = f.tp.parse(ta)
		}
		if !ok || err != nil {
			f.badTime.Add(1)
			fc.Drop(p, "bad_time")
			return nil
		}
	}
	if ts < f.wm {
		f.nLate.Add(1)
		fc.Drop(p, "late")
		return nil
	}
	f.buf = ua.AppendText(f.buf[:0])
	e := event{ts: ts, step: int32(step)}
	if j := f.journeys[string(f.buf)]; j != nil {
		e.user = j.user
	} else {
		e.user = string(f.buf)
	}
	if step == 0 {
		for i := range f.dims {
			e.dims[i] = f.dimValue(i, p)
		}
	}
	f.pending.push(e)
	f.pendingN.Store(int64(len(f.pending)))
	f.events.Add(1)
	if !f.started || ts > f.maxTs {
		f.started, f.maxTs = true, ts
	}
	fc.Consume(p)
	wm := f.maxTs - f.late
	if len(f.pending) > f.maxPending {
		// Bounded memory over strict order: apply the oldest now.
		if t := f.pending[0].ts + 1; t > wm {
			wm = t
			f.forced.Add(1)
		}
	}
	f.advance(wm)
	return nil
}

// dimValue returns the interned value of dimension i in p.
func (f *Filter) dimValue(i int, p *pack.Packet) string {
	a, ok := p.Attrs.Get(f.dims[i])
	if !ok {
		return noneValue
	}
	f.buf = a.AppendText(f.buf[:0])
	m := f.intern[i]
	if v, ok := m[string(f.buf)]; ok {
		return v
	}
	if len(m) >= f.maxDimVals {
		return otherValue
	}
	v := string(f.buf)
	m[v] = v
	return v
}

// advance applies the pending events older than wm, in order, then ends
// the journeys and finishes the intervals wm has passed.
func (f *Filter) advance(wm int64) {
	if wm <= f.wm {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.pending) > 0 && f.pending[0].ts < wm {
		e := f.pending.pop()
		f.apply(&e)
	}
	f.pendingN.Store(int64(len(f.pending)))
	f.wm = wm
	f.expire(wm)
	f.finalize(wm)
}

// apply moves e's user through the funnel. Caller holds mu.
func (f *Filter) apply(e *event) {
	j := f.journeys[e.user]
	if j != nil && e.ts-j.start > f.within {
		f.expired.Add(1)
		f.end(j)
		j = nil
	}
	if j == nil {
		if e.step != 0 {
			f.noEntry.Add(1)
			return
		}
		if len(f.journeys) >= f.maxUsers {
			f.expire(e.ts) // journeys whose time is up go first
			if len(f.journeys) >= f.maxUsers {
				f.evicted.Add(1)
				f.end(f.jheap[0])
			}
		}
		j = f.begin(e)
		f.count(j, 0)
		return
	}
	switch s := int(e.step); {
	case s == j.level:
		f.count(j, s)
		j.level++
		if j.level == len(f.steps) {
			f.completed.Add(1)
			f.end(j)
		}
	case s < j.level:
		f.repeats.Add(1)
	default:
		f.outOfOrder.Add(1)
	}
}

// begin starts e's user's journey. Caller holds mu.
func (f *Filter) begin(e *event) *journey {
	var j *journey
	if n := len(f.free); n > 0 {
		j, f.free = f.free[n-1], f.free[:n-1]
	} else {
		j = &journey{}
	}
	*j = journey{user: e.user, start: e.ts, level: 1, dims: e.dims, ivl: f.intervalOf(e.ts)}
	f.journeys[j.user] = j
	heap.Push(&f.jheap, j)
	f.nJourneys.Add(1)
	f.active.Store(int64(len(f.journeys)))
	return j
}

// end forgets j. Caller holds mu.
func (f *Filter) end(j *journey) {
	heap.Remove(&f.jheap, j.idx)
	delete(f.journeys, j.user)
	*j = journey{}
	f.free = append(f.free, j)
	f.active.Store(int64(len(f.journeys)))
}

// expire ends the journeys whose time was up before wm. Caller holds mu.
func (f *Filter) expire(wm int64) {
	for len(f.jheap) > 0 && f.jheap[0].start+f.within < wm {
		f.expired.Add(1)
		f.end(f.jheap[0])
	}
}

// count records that j reached step. Caller holds mu.
func (f *Filter) count(j *journey, step int) {
	iv := j.ivl
	iv.total[step]++
	for i, m := range iv.dims {
		c := m[j.dims[i]]
		if c == nil {
			c = make([]int64, len(f.steps))
			m[j.dims[i]] = c
		}
		c[step]++
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// intervalOf returns the interval holding ts, creating it. Caller holds mu.
func (f *Filter) intervalOf(ts int64) *interval {
	start := floorDiv(ts, f.every) * f.every
	iv := f.intervals[start]
	if iv == nil {
		iv = &interval{start: start, total: make([]int64, len(f.steps)), dims: make([]map[string][]int64, len(f.dims))}
		for i := range iv.dims {
			iv.dims[i] = map[string][]int64{}
		}
		f.intervals[start] = iv
		f.finalAt = min(f.finalAt, start+f.every+f.within)
	}
	return iv
}

// finalize marks final the intervals whose journeys all ended before wm.
// Caller holds mu.
func (f *Filter) finalize(wm int64) {
	if wm < f.finalAt {
		return
	}
	f.finalAt = math.MaxInt64
	for _, iv := range f.intervals {
		if iv.final {
			continue
		}
		end := iv.start + f.every + f.within
		if end <= wm {
			iv.final = true
			iv.partial = f.shutdown && f.maxTs < end
		} else {
			f.finalAt = min(f.finalAt, end)
		}
	}
}

// Tick implements engine.Ticker: finished intervals are emitted.
func (f *Filter) Tick(tc engine.TickContext) error { return f.emit(tc) }

// FlushFilter implements engine.FilterFlusher: at shutdown every pending
// event is applied, every journey ends, and every interval not emitted
// yet is emitted (partial=true when the data ended before its time was
// up).
func (f *Filter) FlushFilter(tc engine.TickContext) error {
	f.shutdown = true
	f.advance(math.MaxInt64)
	return f.emit(tc)
}

// emit sends one summary packet per finished interval and scope.
func (f *Filter) emit(tc engine.TickContext) error {
	f.mu.Lock()
	var ready []*interval
	for _, iv := range f.intervals {
		if iv.final && !iv.emitted {
			ready = append(ready, iv)
			iv.emitted = true
		}
	}
	slices.SortFunc(ready, func(a, b *interval) int { return cmpInt(a.start, b.start) })
	for _, iv := range ready {
		f.unsent = f.appendSummaries(f.unsent, iv, "", "")
	}
	f.prune()
	f.mu.Unlock()
	for i := range f.unsent {
		s := &f.unsent[i]
		p, err := tc.New()
		if err != nil {
			n := copy(f.unsent, f.unsent[i:])
			clear(f.unsent[n:])
			f.unsent = f.unsent[:n]
			return fmt.Errorf("funnel %s: %d summaries wait for the next tick: %w", f.name, n, err)
		}
		s.fill(p, f.steps)
		tc.Emit(p)
		f.summaries.Add(1)
	}
	clear(f.unsent)
	f.unsent = f.unsent[:0]
	return nil
}

// prune keeps the newest `keep` emitted intervals. Caller holds mu.
func (f *Filter) prune() {
	var done []int64
	for start, iv := range f.intervals {
		if iv.emitted {
			done = append(done, start)
		}
	}
	if len(done) <= f.keep {
		return
	}
	slices.Sort(done)
	for _, start := range done[:len(done)-f.keep] {
		delete(f.intervals, start)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// timeParser reads an event time attribute.
type timeParser struct {
	layout string
	mult   int64 // nanoseconds per unit of unix layouts, 0 otherwise
}

var errTime = errors.New("cannot parse time")

func newTimeParser(layout string) (timeParser, error) {
	switch layout {
	case "", "rfc3339":
		return timeParser{layout: time.RFC3339Nano}, nil
	case "unix":
		return timeParser{layout: layout, mult: 1e9}, nil
	case "unix_ms":
		return timeParser{layout: layout, mult: 1e6}, nil
	case "unix_us":
		return timeParser{layout: layout, mult: 1e3}, nil
	case "unix_ns":
		return timeParser{layout: layout, mult: 1}, nil
	}
	ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	t, err := time.Parse(layout, ref.Format(layout))
	if err != nil {
		return timeParser{}, fmt.Errorf("layout %q cannot read back its own output: %v", layout, err)
	}
	if t.Year() != 2006 || t.YearDay() != 2 {
		return timeParser{}, fmt.Errorf("layout %q has no date (want rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout such as \"02/Jan/2006:15:04:05 -0700\")", layout)
	}
	return timeParser{layout: layout}, nil
}

func (tp *timeParser) parse(a *pack.Attr) (int64, error) {
	if tp.mult != 0 {
		if a.Kind == pack.KindInt {
			return a.I * tp.mult, nil
		}
		v, ok := a.Float()
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, errTime
		}
		return int64(v * float64(tp.mult)), nil
	}
	if a.Kind != pack.KindString {
		return 0, errTime
	}
	t, err := time.Parse(tp.layout, string(a.B))
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}
