package funnel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// StepCount is one step of a funnel report.
type StepCount struct {
	Step  string `json:"step"`
	Count int64  `json:"count"`
	// Conversion is Count over the journeys entered (first step).
	Conversion float64 `json:"conversion"`
	// StepConversion is Count over the previous step's count.
	StepConversion float64 `json:"step_conversion"`
}

// Counts are the conversion counts of one scope (all journeys, or those
// of one dimension value).
type Counts struct {
	Entered    int64       `json:"entered"`
	Completed  int64       `json:"completed"`
	Conversion float64     `json:"conversion"`
	Steps      []StepCount `json:"steps"`
}

func makeCounts(steps []string, c []int64) Counts {
	out := Counts{Entered: c[0], Completed: c[len(c)-1], Steps: make([]StepCount, len(c))}
	for i, n := range c {
		sc := StepCount{Step: steps[i], Count: n}
		if c[0] > 0 {
			sc.Conversion = float64(n) / float64(c[0])
		}
		if i == 0 {
			sc.StepConversion = 1
			if n == 0 {
				sc.StepConversion = 0
			}
		} else if c[i-1] > 0 {
			sc.StepConversion = float64(n) / float64(c[i-1])
		}
		out.Steps[i] = sc
	}
	out.Conversion = out.Steps[len(c)-1].Conversion
	return out
}

// summary is one emitted packet: an interval's counts, all journeys or
// one dimension value.
type summary struct {
	start, end int64
	partial    bool
	dim, value string
	counts     []int64
}

// appendSummaries appends iv's summaries (total, then each dimension's
// values in order), restricted to dimension dim (and value) when set.
// Caller holds mu.
func (f *Filter) appendSummaries(dst []summary, iv *interval, dim, value string) []summary {
	base := summary{start: iv.start, end: iv.start + f.every, partial: iv.partial}
	if dim == "" {
		s := base
		s.counts = slices.Clone(iv.total)
		dst = append(dst, s)
	}
	for i, d := range f.dims {
		if dim != "" && d != dim {
			continue
		}
		vals := make([]string, 0, len(iv.dims[i]))
		for v := range iv.dims[i] {
			if value == "" || v == value {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		for _, v := range vals {
			s := base
			s.dim, s.value, s.counts = d, v, slices.Clone(iv.dims[i][v])
			dst = append(dst, s)
		}
	}
	return dst
}

// fill writes s into p: attributes type=funnel, interval_start,
// [dimension, value], entered, completed, conversion, step_1..step_N,
// partial; payload JSON.
func (s *summary) fill(p *pack.Packet, steps []string) {
	c := makeCounts(steps, s.counts)
	p.Ts = s.start
	start := time.Unix(0, s.start).UTC().Format(time.RFC3339)
	p.Attrs.SetString("type", "funnel")
	p.Attrs.SetString("interval_start", start)
	if s.dim != "" {
		p.Attrs.SetString("dimension", s.dim)
		p.Attrs.SetString("value", s.value)
	}
	p.Attrs.SetInt("entered", c.Entered)
	p.Attrs.SetInt("completed", c.Completed)
	p.Attrs.SetFloat("conversion", c.Conversion)
	for i, n := range s.counts {
		p.Attrs.SetInt("step_"+strconv.Itoa(i+1), n)
	}
	p.Attrs.SetBool("partial", s.partial)
	body, _ := json.Marshal(struct {
		Start     string `json:"interval_start"`
		Dimension string `json:"dimension,omitempty"`
		Value     string `json:"value,omitempty"`
		Partial   bool   `json:"partial"`
		Counts
	}{start, s.dim, s.value, s.partial, c})
	p.Payload = append(p.Payload[:0], body...)
}

// IntervalReport is one interval in a query answer.
type IntervalReport struct {
	Start string `json:"start"`
	End   string `json:"end"`
	// Final: no journey that started in the interval can progress.
	Final bool `json:"final"`
	// Partial: made final at shutdown before its time was up.
	Partial    bool                         `json:"partial,omitempty"`
	Total      *Counts                      `json:"total,omitempty"`
	Dimensions map[string]map[string]Counts `json:"dimensions,omitempty"`
}

// Report is the answer of Query.
type Report struct {
	Filter        string           `json:"filter"`
	Steps         []string         `json:"steps"`
	Within        string           `json:"within"`
	Interval      string           `json:"interval"`
	Watermark     string           `json:"watermark,omitempty"`
	ActiveUsers   int64            `json:"active_users"`
	PendingEvents int64            `json:"pending_events"`
	Intervals     []IntervalReport `json:"intervals"`
}

var queryParams = []string{"dimension", "value", "from", "to", "sum"}

// Query implements engine.Queryable (admin API
// GET /api/v1/plugins/{name}/query): the counts of the intervals kept,
// in progress ones included (final=false: they may still grow).
// Parameters, all optional:
//
//	dimension=D   only dimension D's values (no total)
//	value=V       only value V of dimension D
//	from=T, to=T  intervals starting in [from, to) (RFC 3339 or
//	              2006-01-02[T15:04[:05]], UTC)
//	sum=true      one interval adding up the selected ones (counts are
//	              journeys, so they add)
//
// Safe from any goroutine.
func (f *Filter) Query(params map[string]string) (any, error) {
	for k := range params {
		if !slices.Contains(queryParams, k) {
			return nil, fmt.Errorf("unknown parameter %q (want %s)", k, strings.Join(queryParams, ", "))
		}
	}
	dim, value := params["dimension"], params["value"]
	if dim != "" && !slices.Contains(f.dims, dim) {
		return nil, fmt.Errorf("dimension %q is not counted (dimensions: %s)", dim, strings.Join(f.dims, ", "))
	}
	if value != "" && dim == "" {
		return nil, fmt.Errorf("value needs dimension")
	}
	from, to := int64(-1<<63), int64(1<<63-1)
	for _, k := range []string{"from", "to"} {
		v, ok := params[k]
		if !ok {
			continue
		}
		t, err := parseQueryTime(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		if k == "from" {
			from = t.UnixNano()
		} else {
			to = t.UnixNano()
		}
	}
	if from >= to {
		return nil, fmt.Errorf("to must be after from")
	}
	sum := false
	if v, ok := params["sum"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("sum: want true or false, got %q", v)
		}
		sum = b
	}

	rep := &Report{Filter: f.name, Steps: f.steps, Within: time.Duration(f.within).String(), Interval: time.Duration(f.every).String(),
		ActiveUsers: f.active.Load(), PendingEvents: f.pendingN.Load(), Intervals: []IntervalReport{}}
	f.mu.Lock()
	if f.wm != -1<<63 {
		rep.Watermark = time.Unix(0, f.wm).UTC().Format(time.RFC3339Nano)
	}
	var sel []*interval
	for _, iv := range f.intervals {
		if iv.start >= from && iv.start < to {
			sel = append(sel, iv)
		}
	}
	slices.SortFunc(sel, func(a, b *interval) int { return cmpInt(a.start, b.start) })
	var parts [][]summary
	for _, iv := range sel {
		s := f.appendSummaries(nil, iv, dim, value)
		if len(s) == 0 { // keep the interval: no value yet
			s = []summary{{start: iv.start, end: iv.start + f.every, partial: iv.partial}}
		}
		parts = append(parts, s)
	}
	finals := make([]bool, len(sel))
	for i, iv := range sel {
		finals[i] = iv.final
	}
	f.mu.Unlock()

	if sum && len(parts) > 1 {
		parts, finals = [][]summary{sumParts(parts, len(f.steps))}, []bool{!slices.Contains(finals, false)}
	}
	for i, ss := range parts {
		r := IntervalReport{Start: time.Unix(0, ss[0].start).UTC().Format(time.RFC3339), End: time.Unix(0, ss[0].end).UTC().Format(time.RFC3339),
			Final: finals[i], Partial: ss[0].partial}
		for _, s := range ss {
			if s.counts == nil {
				continue
			}
			c := makeCounts(f.steps, s.counts)
			if s.dim == "" {
				r.Total = &c
				continue
			}
			if r.Dimensions == nil {
				r.Dimensions = map[string]map[string]Counts{}
			}
			if r.Dimensions[s.dim] == nil {
				r.Dimensions[s.dim] = map[string]Counts{}
			}
			r.Dimensions[s.dim][s.value] = c
		}
		rep.Intervals = append(rep.Intervals, r)
	}
	return rep, nil
}

// sumParts adds the summaries of several intervals, scope by scope.
func sumParts(parts [][]summary, n int) []summary {
	type scope struct{ dim, value string }
	acc := map[scope][]int64{}
	var order []scope
	out := summary{start: parts[0][0].start, end: parts[len(parts)-1][0].end}
	for _, ss := range parts {
		for _, s := range ss {
			out.partial = out.partial || s.partial
			if s.counts == nil {
				continue
			}
			k := scope{s.dim, s.value}
			c := acc[k]
			if c == nil {
				c = make([]int64, n)
				acc[k] = c
				order = append(order, k)
			}
			for i, v := range s.counts {
				c[i] += v
			}
		}
	}
	res := []summary{out}
	for _, k := range order {
		s := out
		s.dim, s.value, s.counts = k.dim, k.value, acc[k]
		res = append(res, s)
	}
	return res
}

var queryLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseQueryTime(v string) (time.Time, error) {
	for _, l := range queryLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q (want RFC 3339 or 2006-01-02[T15:04[:05]])", v)
}
