package window

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/window/winstat"
)

// Rule is one alarm rule.
type Rule struct {
	Name      string   `yaml:"name"`
	Metric    string   `yaml:"metric"`
	Op        string   `yaml:"op"`
	Threshold *float64 `yaml:"threshold"`
	// Change is a relative change against the previous window: 0.5 fires
	// on +50 % or more, -0.5 on a fall of 50 % or more.
	Change   *float64 `yaml:"change"`
	MinCount int64    `yaml:"min_count"`
	Severity string   `yaml:"severity"`
}

// Alert is one raised alert.
type Alert struct {
	Rule        string  `json:"rule"`
	Severity    string  `json:"severity"`
	Group       string  `json:"group"`
	Metric      string  `json:"metric"`
	Value       float64 `json:"value"`
	Threshold   float64 `json:"threshold,omitempty"`
	Previous    float64 `json:"previous,omitempty"`
	Change      float64 `json:"change,omitempty"`
	Count       int64   `json:"count"`
	WindowStart string  `json:"window_start"`
	WindowEnd   string  `json:"window_end"`
	end         int64
}

// Counters is a snapshot of WindowAlarm's counters.
type Counters struct {
	Events, Late, NoValue, Windows, Alerts, Suppressed, SinkDropped uint64
}

// Filter is WindowAlarm.
type Filter struct {
	name        string
	groupBy     []string
	field       string
	w, s, late  int64
	idleAdvance time.Duration
	rules       []Rule
	suppress    int64
	emitAlerts  bool
	emitWindows bool
	tick        time.Duration

	// State (filter goroutine).
	panes    map[int64]map[string]*winstat.Stats // pane start -> group -> stats
	maxTs    int64
	lastEnd  int64 // end of the last evaluated window; events before are late
	first    int64 // first pane start
	started  bool
	lastWall time.Time
	fired    map[string]int64 // rule|group -> window end of the last alert
	pending  []*Alert
	windows  []windowSummary
	keyBuf   []byte
	log      *slog.Logger

	sinks *sinkSet

	events, lateN, noValue, nWindows, nAlerts, suppressed atomic.Uint64
}

type windowSummary struct {
	group      string
	start, end int64
	st         winstat.Stats
}

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{
		name:        c.Name,
		groupBy:     c.Strings("group_by"),
		field:       c.String("field"),
		w:           int64(c.Duration("length")),
		s:           int64(c.Duration("slide")),
		late:        int64(c.Duration("lateness")),
		idleAdvance: c.Duration("idle_advance"),
		suppress:    int64(c.Duration("suppress")),
		emitAlerts:  c.Bool("emit_alerts"),
		emitWindows: c.Bool("emit_windows"),
		tick:        c.Duration("tick"),
		panes:       map[int64]map[string]*winstat.Stats{},
		fired:       map[string]int64{},
	}
	if f.w <= 0 || f.s <= 0 {
		return nil, c.Errorf("length", "length and slide must be positive")
	}
	if f.w%f.s != 0 {
		return nil, c.Errorf("slide", "window %s must be a multiple of slide %s", time.Duration(f.w), time.Duration(f.s))
	}
	if err := c.Decode("rules", &f.rules); err != nil {
		return nil, err
	}
	for i := range f.rules {
		r := &f.rules[i]
		where := fmt.Sprintf("rule %d (%s)", i+1, r.Name)
		if r.Name == "" {
			return nil, c.Errorf("rules", "%s: name is required", where)
		}
		if r.Metric == "" {
			r.Metric = "count"
		}
		if !winstat.ValidMetric(r.Metric) {
			return nil, c.Errorf("rules", "%s: unknown metric %q (count, sum, mean, min, max, stddev, pNN)", where, r.Metric)
		}
		if r.Metric != "count" && f.field == "" {
			return nil, c.Errorf("rules", "%s: metric %s needs the filter's field", where, r.Metric)
		}
		if (r.Threshold == nil) == (r.Change == nil) {
			return nil, c.Errorf("rules", "%s: set exactly one of threshold and change", where)
		}
		if r.Threshold != nil {
			switch r.Op {
			case "":
				r.Op = ">"
			case ">", ">=", "<", "<=":
			default:
				return nil, c.Errorf("rules", "%s: op %q: want >, >=, < or <=", where, r.Op)
			}
		}
		if r.Change != nil && *r.Change == 0 {
			return nil, c.Errorf("rules", "%s: change must not be 0", where)
		}
		switch r.Severity {
		case "":
			r.Severity = "warning"
		case "info", "warning", "critical":
		default:
			return nil, c.Errorf("rules", "%s: severity %q: want info, warning or critical", where, r.Severity)
		}
	}
	if len(f.rules) == 0 && !f.emitWindows {
		return nil, c.Errorf("rules", "no rule and emit_windows off: the filter would do nothing")
	}
	var sc sinkConfig
	if err := c.Decode("sinks", &sc); err != nil {
		return nil, err
	}
	sinks, err := newSinkSet(sc)
	if err != nil {
		return nil, c.Errorf("sinks", "%v", err)
	}
	f.sinks = sinks
	return f, nil
}

// Start implements engine.Starter: it starts the sink goroutine.
func (f *Filter) Start(ctx context.Context) error {
	f.sinks.start()
	return nil
}

// Close implements engine.Closer: it delivers queued alerts and stops the
// sink goroutine.
func (f *Filter) Close(ctx context.Context) error { return f.sinks.stop(ctx) }

// TickInterval implements engine.Ticker.
func (f *Filter) TickInterval() time.Duration { return f.tick }

// Counters returns the filter's counters (safe from any goroutine).
func (f *Filter) Counters() Counters {
	return Counters{f.events.Load(), f.lateN.Load(), f.noValue.Load(), f.nWindows.Load(), f.nAlerts.Load(), f.suppressed.Load(), f.sinks.dropped.Load()}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	if f.log == nil {
		f.log = fc.Log()
	}
	ts := p.Ts
	if f.started && ts < f.lastEnd {
		f.lateN.Add(1)
		fc.Drop(p, "late")
		return nil
	}
	var v float64
	hasValue := false
	if f.field != "" {
		if a, ok := p.Attrs.Get(f.field); ok {
			v, hasValue = a.Float()
		}
		if !hasValue {
			f.noValue.Add(1)
		}
	}
	pane := floorDiv(ts, f.s) * f.s
	if !f.started {
		f.started = true
		f.first = pane
		f.lastEnd = pane
		f.maxTs = ts
	}
	groups := f.panes[pane]
	if groups == nil {
		groups = map[string]*winstat.Stats{}
		f.panes[pane] = groups
	}
	f.keyBuf = f.groupKey(f.keyBuf[:0], p)
	st := groups[string(f.keyBuf)]
	if st == nil {
		st = &winstat.Stats{}
		groups[string(f.keyBuf)] = st
	}
	if hasValue {
		st.Add(v)
	} else {
		st.AddCount(1)
	}
	f.events.Add(1)
	if ts > f.maxTs {
		f.maxTs = ts
	}
	f.lastWall = time.Now()
	fc.Consume(p)
	f.advance(f.maxTs - f.late)
	return nil
}

func (f *Filter) groupKey(dst []byte, p *pack.Packet) []byte {
	for i, g := range f.groupBy {
		if i > 0 {
			dst = append(dst, '|')
		}
		if a, ok := p.Attrs.Get(g); ok {
			dst = a.AppendText(dst)
		}
	}
	return dst
}

// advance evaluates every window whose end is at or before watermark.
func (f *Filter) advance(watermark int64) {
	for f.started && f.lastEnd+f.s <= watermark {
		end := f.lastEnd + f.s
		f.evaluate(end)
		f.lastEnd = end
		// Drop panes no window from now on needs (current and previous
		// windows span 2W).
		for ps := range f.panes {
			if ps < end+f.s-2*f.w {
				delete(f.panes, ps)
			}
		}
	}
}

// merge returns the per-group stats of [start, end).
func (f *Filter) merge(start, end int64) map[string]*winstat.Stats {
	out := map[string]*winstat.Stats{}
	for ps := start; ps < end; ps += f.s {
		for g, st := range f.panes[ps] {
			m := out[g]
			if m == nil {
				m = &winstat.Stats{}
				out[g] = m
			}
			m.Merge(st)
		}
	}
	return out
}

func (f *Filter) evaluate(end int64) {
	cur := f.merge(end-f.w, end)
	var prev map[string]*winstat.Stats
	prevComplete := end-2*f.w >= f.first
	if prevComplete {
		prev = f.merge(end-2*f.w, end-f.w)
	}
	groups := make([]string, 0, len(cur)+len(prev))
	for g := range cur {
		groups = append(groups, g)
	}
	for g := range prev {
		if _, ok := cur[g]; !ok {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	for _, g := range groups {
		st := cur[g]
		if st == nil {
			st = &winstat.Stats{}
		}
		if st.Count > 0 {
			f.nWindows.Add(1)
			if f.emitWindows {
				f.windows = append(f.windows, windowSummary{group: g, start: end - f.w, end: end, st: *st})
			}
		}
		for i := range f.rules {
			f.check(&f.rules[i], g, st, prev[g], end)
		}
	}
}

func (f *Filter) check(r *Rule, group string, st, prev *winstat.Stats, end int64) {
	if st.Count < r.MinCount && r.Threshold != nil {
		return
	}
	v, _ := st.Metric(r.Metric)
	if r.Metric != "count" && st.Count == 0 {
		return
	}
	a := &Alert{Rule: r.Name, Severity: r.Severity, Group: group, Metric: r.Metric, Value: v, Count: st.Count,
		WindowStart: time.Unix(0, end-f.w).UTC().Format(time.RFC3339Nano), WindowEnd: time.Unix(0, end).UTC().Format(time.RFC3339Nano), end: end}
	if r.Threshold != nil {
		t := *r.Threshold
		var hit bool
		switch r.Op {
		case ">":
			hit = v > t
		case ">=":
			hit = v >= t
		case "<":
			hit = v < t
		case "<=":
			hit = v <= t
		}
		if !hit {
			return
		}
		a.Threshold = t
	} else {
		if prev == nil || prev.Count < max(r.MinCount, 1) {
			return
		}
		pv, _ := prev.Metric(r.Metric)
		if pv == 0 {
			return
		}
		ch := (v - pv) / math.Abs(pv)
		if (*r.Change > 0 && ch < *r.Change) || (*r.Change < 0 && ch > *r.Change) {
			return
		}
		a.Previous, a.Change = pv, ch
	}
	key := r.Name + "|" + group
	if last, ok := f.fired[key]; ok && end-last < f.suppress {
		f.suppressed.Add(1)
		return
	}
	f.fired[key] = end
	f.nAlerts.Add(1)
	f.pending = append(f.pending, a)
}

// Tick implements engine.Ticker: it emits pending alerts and summaries.
func (f *Filter) Tick(tc engine.TickContext) error {
	if f.log == nil {
		f.log = tc.Log()
	}
	if f.idleAdvance > 0 && f.started && !f.lastWall.IsZero() {
		if idle := time.Since(f.lastWall); idle >= f.idleAdvance {
			f.advance(f.maxTs - f.late + int64(idle))
		}
	}
	return f.emit(tc)
}

// FlushFilter implements engine.FilterFlusher: at shutdown every window
// that ends by the newest event is evaluated and everything pending is
// sent to the sinks and emitted.
func (f *Filter) FlushFilter(tc engine.TickContext) error {
	if f.log == nil {
		f.log = tc.Log()
	}
	if f.started {
		f.advance(f.maxTs + 1) // windows that end by the newest event; later ones are partial
	}
	return f.emit(tc)
}

func (f *Filter) emit(tc engine.TickContext) error {
	for i, a := range f.pending {
		f.sinks.send(f.log, a)
		if f.emitAlerts {
			p, err := tc.New()
			if err != nil {
				f.pending = f.pending[i:]
				return err
			}
			body, _ := json.Marshal(a)
			p.Payload = append(p.Payload[:0], body...)
			p.Ts = a.end
			p.Attrs.SetString("type", "alert")
			p.Attrs.SetString("rule", a.Rule)
			p.Attrs.SetString("severity", a.Severity)
			p.Attrs.SetString("group", a.Group)
			p.Attrs.SetFloat("value", a.Value)
			tc.Emit(p)
		}
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	for i := range f.windows {
		ws := &f.windows[i]
		p, err := tc.New()
		if err != nil {
			f.windows = f.windows[i:]
			return err
		}
		p.Ts = ws.end
		p.Attrs.SetString("type", "window")
		p.Attrs.SetString("group", ws.group)
		p.Attrs.SetString("window_start", time.Unix(0, ws.start).UTC().Format(time.RFC3339Nano))
		SetStats(&p.Attrs, &ws.st, f.field != "")
		p.Payload = strconv.AppendInt(append(p.Payload[:0], ws.group...), ws.st.Count, 10)
		tc.Emit(p)
	}
	f.windows = f.windows[:0]
	return nil
}

// SetStats sets count (and, when withValues, sum, mean, min, max, stddev,
// p50, p90, p99) attributes from st.
func SetStats(a *pack.Attrs, st *winstat.Stats, withValues bool) {
	a.SetInt("count", st.Count)
	if !withValues {
		return
	}
	a.SetFloat("sum", st.Sum)
	a.SetFloat("mean", st.Mean())
	a.SetFloat("min", st.Min)
	a.SetFloat("max", st.Max)
	a.SetFloat("stddev", st.Stddev())
	a.SetFloat("p50", st.Percentile(0.5))
	a.SetFloat("p90", st.Percentile(0.9))
	a.SetFloat("p99", st.Percentile(0.99))
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 2
	case "warning":
		return 1
	}
	return 0
}
