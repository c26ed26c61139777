package funnel

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
)

type fakeTC = enginetest.FakeContext

var base = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func conf(extra map[string]any) map[string]any {
	c := map[string]any{"user": "user", "step_field": "event", "steps": []string{"view", "cart", "buy"},
		"within": "30m", "interval": "1h", "lateness": "1m"}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func newTestFilter(t testing.TB, vals map[string]any) *Filter {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "funnel", "Funnel", vals)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter)
}

// ev is one event: minutes after base, user, action, dimension pairs.
type ev struct {
	min   float64
	user  string
	event string
	dims  []string // name, value, ...
}

func (e ev) packet() *pack.Packet {
	p := &pack.Packet{Ts: base.Add(time.Duration(e.min * float64(time.Minute))).UnixNano()}
	p.Attrs.SetString("user", e.user)
	p.Attrs.SetString("event", e.event)
	for i := 0; i+1 < len(e.dims); i += 2 {
		p.Attrs.SetString(e.dims[i], e.dims[i+1])
	}
	return p
}

// feed sends evs in time order (stable: the order given within a time).
func feed(t testing.TB, f *Filter, tc *fakeTC, evs []ev) {
	t.Helper()
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b ev) int { return cmp.Compare(a.min, b.min) })
	feedAsIs(t, f, tc, evs)
}

// feedAsIs sends evs in the order given.
func feedAsIs(t testing.TB, f *Filter, tc *fakeTC, evs []ev) {
	t.Helper()
	for _, e := range evs {
		if err := f.Process(tc, e.packet()); err != nil {
			t.Fatal(err)
		}
	}
}

// query runs f.Query and returns the report.
func query(t testing.TB, f *Filter, params map[string]string) *Report {
	t.Helper()
	v, err := f.Query(params)
	if err != nil {
		t.Fatalf("query %v: %v", params, err)
	}
	return v.(*Report)
}

// totals returns "start:c1/c2/c3" per interval.
func totals(t testing.TB, f *Filter) []string {
	t.Helper()
	var out []string
	for _, iv := range query(t, f, nil).Intervals {
		s := iv.Start[11:16] + ":"
		if iv.Total != nil {
			for i, st := range iv.Total.Steps {
				if i > 0 {
					s += "/"
				}
				s += fmt.Sprint(st.Count)
			}
		}
		out = append(out, s)
	}
	return out
}

func TestFunnelOrderedSteps(t *testing.T) {
	f := newTestFilter(t, conf(nil))
	tc := &fakeTC{}
	feed(t, f, tc, []ev{
		{0, "a", "view", nil}, {1, "a", "cart", nil}, {2, "a", "buy", nil}, // complete
		{0, "b", "view", nil}, {5, "b", "cart", nil}, // stops at cart
		{3, "c", "view", nil},                        // stops at view
		{4, "c", "search", nil},                      // not a step
		{6, "a", "view", nil}, {7, "a", "cart", nil}, // a again: a new journey after completion
	})
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	if got := totals(t, f); fmt.Sprint(got) != "[10:00:4/3/1]" {
		t.Fatalf("totals %v", got)
	}
	r := query(t, f, nil).Intervals[0].Total
	if r.Entered != 4 || r.Completed != 1 || r.Conversion != 0.25 || r.Steps[1].Conversion != 0.75 || r.Steps[2].StepConversion != 1.0/3 {
		t.Fatalf("conversions %+v", r)
	}
	c := f.Counters()
	if c.Events != 8 || c.NotStep != 1 || c.Journeys != 4 || c.Completed != 1 || tc.Consumed != 9 {
		t.Fatalf("counters %+v consumed %d", c, tc.Consumed)
	}
}

func TestFunnelOutOfOrderStepsNotCounted(t *testing.T) {
	evs := []ev{
		{0, "c", "view", nil}, {1, "c", "buy", nil}, {2, "c", "cart", nil}, // buy skipped ahead: not counted
		{0, "d", "cart", nil}, {1, "d", "view", nil}, {2, "d", "buy", nil}, // cart before entry; buy skips cart
		{0, "e", "view", nil}, {1, "e", "buy", nil}, {2, "e", "cart", nil}, {3, "e", "buy", nil}, // buy in order later counts
		{0, "g", "view", nil}, {1, "g", "cart", nil}, {2, "g", "view", nil}, {3, "g", "cart", nil}, // repeats
		{5, "h", "view", nil}, {5, "h", "cart", nil}, {5, "h", "buy", nil}, // same time: step order decides
	}
	f := newTestFilter(t, conf(nil))
	tc := &fakeTC{}
	feed(t, f, tc, evs)
	f.FlushFilter(tc)
	want := "[10:00:5/4/2]"
	if got := totals(t, f); fmt.Sprint(got) != want {
		t.Fatalf("totals %v, want %s", got, want)
	}
	c := f.Counters()
	if c.OutOfOrder != 3 || c.NoEntry != 1 || c.Repeats != 2 {
		t.Fatalf("counters %+v", c)
	}
	// Any arrival order within the lateness (1m) gives the same counts:
	// shuffle events of the same minute.
	for seed := int64(1); seed <= 20; seed++ {
		sh := append([]ev(nil), evs...)
		r := rand.New(rand.NewSource(seed))
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		// Keep disorder within the lateness: stable sort by minute only
		// would undo the shuffle, so sort by 2-minute blocks.
		for i := 1; i < len(sh); i++ {
			for j := i; j > 0 && int(sh[j].min)/2 < int(sh[j-1].min)/2; j-- {
				sh[j], sh[j-1] = sh[j-1], sh[j]
			}
		}
		g := newTestFilter(t, conf(map[string]any{"lateness": "2m"}))
		tc := &fakeTC{}
		feedAsIs(t, g, tc, sh)
		g.FlushFilter(tc)
		if got := totals(t, g); fmt.Sprint(got) != want || g.Counters().Late != 0 {
			t.Fatalf("seed %d: totals %v, want %s (late %d)", seed, got, want, g.Counters().Late)
		}
	}
}

func TestFunnelWindowExpiry(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"lateness": "0s"}))
	tc := &fakeTC{}
	feed(t, f, tc, []ev{
		{0, "a", "view", nil}, {20, "a", "cart", nil}, {31, "a", "buy", nil}, // buy after 30m: not counted
		{0, "b", "view", nil}, {10, "b", "cart", nil}, {30, "b", "buy", nil}, // exactly 30m: counted
		{40, "a", "view", nil}, {45, "a", "cart", nil}, // a new journey for a
		{50, "x", "noise", nil}, // not a step: does not move event time
		{50, "w", "cart", nil},  // a step without a journey: moves event time
	})
	if got := totals(t, f); fmt.Sprint(got) != "[10:00:3/3/1]" {
		t.Fatalf("totals %v", got)
	}
	c := f.Counters()
	if c.Expired != 1 || c.NoEntry != 1 || c.Completed != 1 { // w's cart is still pending
		t.Fatalf("counters %+v", c)
	}
	// The watermark passing start+within ends a journey without events
	// of its user; journeys then in progress: only a's second one.
	if n := query(t, f, nil).ActiveUsers; n != 1 {
		t.Fatalf("active users %d, want 1", n)
	}
	feed(t, f, tc, []ev{{71, "y", "view", nil}, {71.5, "y", "cart", nil}})
	if n := query(t, f, nil).ActiveUsers; n != 1 || f.Counters().Expired != 2 {
		t.Fatalf("active users %d (want 1: y), counters %+v", n, f.Counters())
	}
	// Late: older than the watermark (71m, lateness 0).
	feed(t, f, tc, []ev{{60, "a", "buy", nil}})
	if tc.Dropped["late"] != 1 || f.Counters().Late != 1 {
		t.Fatalf("late %v", tc.Dropped)
	}
}

func TestFunnelDimensions(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"dimensions": []string{"country", "platform"}, "max_dimension_values": 2}))
	tc := &fakeTC{}
	feed(t, f, tc, []ev{
		{0, "a", "view", []string{"country", "FR", "platform", "ios"}},
		{1, "a", "cart", []string{"country", "DE", "platform", "web"}}, // dimensions come from the first step
		{2, "a", "buy", nil},
		{0, "b", "view", []string{"country", "FR", "platform", "web"}},
		{1, "b", "cart", nil},
		{0, "c", "view", []string{"country", "DE"}},
		{0, "d", "view", []string{"country", "US", "platform", "ios"}}, // third country: _other
		{1, "d", "cart", nil},
	})
	f.FlushFilter(tc)
	r := query(t, f, nil).Intervals[0]
	got := map[string]string{}
	for d, vals := range r.Dimensions {
		for v, c := range vals {
			got[d+"="+v] = fmt.Sprintf("%d/%d/%d", c.Steps[0].Count, c.Steps[1].Count, c.Steps[2].Count)
		}
	}
	want := map[string]string{"country=FR": "2/2/1", "country=DE": "1/0/0", "country=_other": "1/1/0",
		"platform=ios": "2/2/1", "platform=web": "1/1/0", "platform=_none": "1/0/0"}
	if fmt.Sprint(got) != fmt.Sprint(want) || r.Total.Entered != 4 {
		t.Fatalf("dimensions\n got %v\nwant %v", got, want)
	}
	// Emitted: total, then country values, then platform values, sorted.
	var order []string
	for _, p := range tc.Emitted {
		d, _ := p.Attrs.Str("dimension")
		v, _ := p.Attrs.Str("value")
		e, _ := p.Attrs.Get("entered")
		order = append(order, fmt.Sprintf("%s=%s:%d", d, v, e.I))
	}
	if fmt.Sprint(order) != "[=:4 country=DE:1 country=FR:2 country=_other:1 platform=_none:1 platform=ios:2 platform=web:1]" {
		t.Fatalf("emitted %v", order)
	}
}

func TestFunnelQuery(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"dimensions": []string{"country"}, "lateness": "0s"}))
	var _ engine.Queryable = f
	tc := &fakeTC{}
	feed(t, f, tc, []ev{
		{0, "a", "view", []string{"country", "FR"}}, {1, "a", "cart", nil},
		{5, "b", "view", []string{"country", "DE"}},
		{60, "c", "view", []string{"country", "FR"}}, {61, "c", "cart", nil}, {62, "c", "buy", nil},
		{125, "d", "view", []string{"country", "FR"}},
		{126, "d", "cart", nil}, // pending: lateness 0 applies events older than the newest
	})
	rep := query(t, f, nil)
	if len(rep.Intervals) != 3 || !rep.Intervals[0].Final || rep.Intervals[1].Final || rep.ActiveUsers != 1 || rep.PendingEvents != 1 || rep.Watermark != "2024-05-01T12:06:00Z" {
		t.Fatalf("report %+v", rep)
	}
	rep = query(t, f, map[string]string{"dimension": "country", "value": "FR", "from": "2024-05-01T10:00:00Z", "to": "2024-05-01T12:00"})
	if len(rep.Intervals) != 2 || rep.Intervals[0].Total != nil || rep.Intervals[0].Dimensions["country"]["FR"].Entered != 1 ||
		rep.Intervals[1].Dimensions["country"]["FR"].Completed != 1 || len(rep.Intervals[0].Dimensions["country"]) != 1 {
		t.Fatalf("filtered %+v", rep.Intervals)
	}
	rep = query(t, f, map[string]string{"sum": "true"})
	if len(rep.Intervals) != 1 || rep.Intervals[0].Final || rep.Intervals[0].Start != "2024-05-01T10:00:00Z" || rep.Intervals[0].End != "2024-05-01T13:00:00Z" {
		t.Fatalf("sum %+v", rep.Intervals)
	}
	s := rep.Intervals[0]
	if s.Total.Entered != 4 || s.Total.Steps[1].Count != 2 || s.Total.Completed != 1 || s.Dimensions["country"]["FR"].Entered != 3 || s.Dimensions["country"]["DE"].Entered != 1 {
		t.Fatalf("sum counts %+v %+v", s.Total, s.Dimensions)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"steps":["view","cart","buy"]`) || !strings.Contains(string(b), `"within":"30m0s"`) {
		t.Fatalf("json %s", b)
	}
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"bogus": "1"}, `unknown parameter "bogus"`},
		{map[string]string{"dimension": "city"}, "not counted"},
		{map[string]string{"value": "FR"}, "value needs dimension"},
		{map[string]string{"from": "today"}, "bad time"},
		{map[string]string{"from": "2024-05-02", "to": "2024-05-01"}, "after from"},
		{map[string]string{"sum": "maybe"}, "sum"},
	} {
		if _, err := f.Query(tc.params); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.params, err, tc.want)
		}
	}
}

// Query runs while events are processed and emitted (go test -race).
func TestFunnelQueryConcurrent(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"dimensions": []string{"country"}, "lateness": "0s", "interval": "1m", "within": "2m"}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			if _, err := f.Query(map[string]string{"sum": "true"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	tc := &fakeTC{}
	steps := []string{"view", "cart", "buy"}
	for i := 0; i < 30000; i++ {
		e := ev{float64(i) / 100, fmt.Sprint("u", i%500), steps[i%3], []string{"country", fmt.Sprint("c", i%7)}}
		f.Process(tc, e.packet())
		if i%1000 == 0 {
			f.Tick(tc)
		}
	}
	<-done
}

func TestFunnelEmission(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"lateness": "1m", "keep": 2}))
	tc := &fakeTC{}
	feed(t, f, tc, []ev{{0, "a", "view", nil}, {10, "a", "cart", nil}, {65, "b", "view", nil}})
	f.Tick(tc)
	if len(tc.Emitted) != 0 {
		t.Fatalf("emitted before the interval was final: %d", len(tc.Emitted))
	}
	// Interval 10:00 is final when the watermark (newest - 1m) passes
	// 11:00 + 30m.
	feed(t, f, tc, []ev{{91, "b", "cart", nil}})
	f.Tick(tc)
	if len(tc.Emitted) != 1 {
		t.Fatalf("emitted %d, want the 10:00 summary", len(tc.Emitted))
	}
	p := tc.Emitted[0]
	start, _ := p.Attrs.Str("interval_start")
	s1, _ := p.Attrs.Get("step_1")
	s2, _ := p.Attrs.Get("step_2")
	partial, _ := p.Attrs.Get("partial")
	if string(start) != "2024-05-01T10:00:00Z" || s1.I != 1 || s2.I != 1 || partial.I != 0 || p.Ts != base.UnixNano() {
		t.Fatalf("summary %q", p.Payload)
	}
	var body struct {
		Start   string `json:"interval_start"`
		Partial bool   `json:"partial"`
		Counts
	}
	if err := json.Unmarshal(p.Payload, &body); err != nil || body.Entered != 1 || body.Steps[1].Step != "cart" || body.Steps[1].Conversion != 1 {
		t.Fatalf("payload %s: %v", p.Payload, err)
	}
	f.Tick(tc)
	if len(tc.Emitted) != 1 {
		t.Fatal("a summary was emitted twice")
	}
	// Shutdown: the 11:00 interval is emitted, partial (data ends at
	// 11:31, its time is up at 12:30).
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	if len(tc.Emitted) != 2 {
		t.Fatalf("after shutdown emitted %d", len(tc.Emitted))
	}
	p = tc.Emitted[1]
	partial, _ = p.Attrs.Get("partial")
	s2, _ = p.Attrs.Get("step_2")
	if partial.I != 1 || s2.I != 1 || f.Counters().Summaries != 2 {
		t.Fatalf("shutdown summary %q", p.Payload)
	}
	if n := query(t, f, nil).ActiveUsers; n != 0 {
		t.Fatalf("journeys left after shutdown: %d", n)
	}
}

func TestFunnelBoundedState(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"max_users": 3, "max_pending": 10, "lateness": "10m", "keep": 2, "interval": "1m", "within": "1m"}))
	tc := &fakeTC{}
	// 100 users start within 5 seconds: at most 3 journeys run.
	for i := 0; i < 100; i++ {
		feed(t, f, tc, []ev{{float64(i) / 20, fmt.Sprint("u", i), "view", nil}})
		if len(f.journeys) > 3 || len(f.jheap) != len(f.journeys) || len(f.pending) > 11 {
			t.Fatalf("after %d users: %d journeys, %d pending", i+1, len(f.journeys), len(f.pending))
		}
	}
	c := f.Counters()
	if c.Evicted == 0 || c.Forced == 0 || c.Journeys != c.Evicted+uint64(len(f.journeys)) {
		t.Fatalf("counters %+v", c)
	}
	// The newest users keep their journeys: u99 completes.
	feed(t, f, tc, []ev{{5, "u99", "cart", nil}, {5.1, "u99", "buy", nil}})
	// Hours of events: intervals are pruned to `keep` once emitted,
	// journeys expire.
	for m := 10; m < 300; m++ {
		feed(t, f, tc, []ev{{float64(m), fmt.Sprint("v", m), "view", nil}})
		if m%10 == 0 {
			f.Tick(tc)
		}
	}
	f.Tick(tc)
	if n := len(f.intervals); n > 2+13 { // kept + the ones within lateness and within
		t.Fatalf("%d intervals kept", n)
	}
	if len(f.journeys) > 3 {
		t.Fatalf("%d journeys", len(f.journeys))
	}
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	if len(f.intervals) != 2 || len(f.journeys) != 0 || len(f.pending) != 0 || len(f.jheap) != 0 {
		t.Fatalf("after shutdown: %d intervals %d journeys %d pending", len(f.intervals), len(f.journeys), len(f.pending))
	}
	var completed int64
	for _, p := range tc.Emitted {
		if c, _ := p.Attrs.Get("completed"); c != nil {
			completed += c.I
		}
	}
	if completed != 1 {
		t.Fatalf("completed %d, want 1 (u99)", completed)
	}
}

func TestFunnelEventTimeField(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"time_field": "at", "time_layout": "unix_ms"}))
	tc := &fakeTC{}
	for i, e := range []string{"view", "cart", "buy"} {
		p := &pack.Packet{Ts: 1} // ignored
		p.Attrs.SetString("user", "a")
		p.Attrs.SetString("event", e)
		p.Attrs.SetInt("at", base.Add(time.Duration(i)*time.Minute).UnixMilli())
		f.Process(tc, p)
	}
	p := &pack.Packet{}
	p.Attrs.SetString("user", "a")
	p.Attrs.SetString("event", "view")
	p.Attrs.SetString("at", "soon")
	f.Process(tc, p)
	f.FlushFilter(tc)
	if got := totals(t, f); fmt.Sprint(got) != "[10:00:1/1/1]" || tc.Dropped["bad_time"] != 1 {
		t.Fatalf("totals %v dropped %v", got, tc.Dropped)
	}
}

func TestFunnelConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{conf(map[string]any{"steps": []string{"view"}}), "at least 2 steps"},
		{conf(map[string]any{"steps": []string{"view", "buy", "view"}}), "listed twice"},
		{conf(map[string]any{"dimensions": []string{"a", "b", "c", "d", "e"}}), "at most 4"},
		{conf(map[string]any{"dimensions": []string{"a", "a"}}), "listed twice"},
		{conf(map[string]any{"time_field": "t", "time_layout": "nonsense"}), "time_layout"},
		{map[string]any{"step_field": "e", "steps": []string{"a", "b"}}, "user"},
		{conf(map[string]any{"within": "0s"}), "within"},
	} {
		c, err := engine.NewConf(reg, "f", "Funnel", tc.vals)
		if err == nil {
			_, err = newFilter(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
}

func BenchmarkFunnelProcess(b *testing.B) {
	f := newTestFilter(b, conf(map[string]any{"dimensions": []string{"country"}, "lateness": "0s"}))
	tc := &fakeTC{}
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	steps := []string{"view", "cart", "buy", "search"}
	p := &pack.Packet{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Attrs.Reset()
		p.Ts = base.UnixNano() + int64(i)*int64(time.Millisecond)
		p.Attrs.SetString("user", users[i%len(users)])
		p.Attrs.SetString("event", steps[(i/len(users))%len(steps)])
		p.Attrs.SetString("country", "FR")
		f.Process(tc, p)
		i++
	}
}

// Steps of users with a journey running, and other actions, allocate
// nothing.
func TestFunnelNoAllocsForRunningJourneys(t *testing.T) {
	f := newTestFilter(t, conf(map[string]any{"dimensions": []string{"country"}, "lateness": "0s"}))
	tc := &fakeTC{}
	for u := 0; u < 100; u++ {
		feed(t, f, tc, []ev{{0, fmt.Sprint("u", u), "view", []string{"country", "FR"}}})
	}
	p := &pack.Packet{}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		p.Attrs.Reset()
		p.Ts = base.Add(time.Second + time.Duration(i)*time.Millisecond).UnixNano()
		p.Attrs.SetString("user", "u"+string(rune('0'+i%10)))
		p.Attrs.SetString("event", []string{"view", "search"}[i%2])
		i++
		f.Process(tc, p)
	})
	if n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
	if c := f.Counters(); c.Repeats == 0 || c.NotStep == 0 {
		t.Fatalf("counters %+v", c)
	}
}
