package cardinality

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
)

type fakeTC = enginetest.FakeContext

func newTestFilter(t testing.TB, vals map[string]any) *Filter {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "dau", "Cardinality", vals)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter)
}

func TestCardinalityDailyMonthlyActiveUsers(t *testing.T) {
	dir := t.TempDir()
	conf := map[string]any{"field": "user", "key_by": []string{"app"}, "periods": []string{"day", "month"}, "state_dir": dir}
	f := newTestFilter(t, conf)
	tc := &fakeTC{}
	day1 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	// Day 1: users 0..59999 of app web (string ids); day 2: 30000..99999
	// (integer ids for app api).
	p := &pack.Packet{}
	for i := 0; i < 60000; i++ {
		p.Attrs.Reset()
		p.Ts = day1.Add(time.Duration(i) * time.Second).UnixNano()
		p.Attrs.SetString("app", "web")
		p.Attrs.SetString("user", "u"+strconv.Itoa(i))
		f.Process(tc, p)
	}
	for i := 30000; i < 100000; i++ {
		p.Attrs.Reset()
		p.Ts = day1.Add(24*time.Hour + time.Duration(i%80000)*time.Second).UnixNano()
		p.Attrs.SetString("app", "web")
		p.Attrs.SetString("user", "u"+strconv.Itoa(i))
		f.Process(tc, p)
		p.Attrs.SetString("app", "api")
		p.Attrs.SetInt("user", int64(i))
		f.Process(tc, p)
	}
	p.Attrs.Reset()
	f.Process(tc, p)
	if tc.Dropped["no_id"] != 1 {
		t.Fatalf("packet without id not dropped: %v", tc.Dropped)
	}
	check := func(f *Filter, key, period string, at time.Time, want int) {
		t.Helper()
		got, ok := f.Count(key, period, at)
		if !ok || math.Abs(float64(got)-float64(want)) > 0.01*float64(want) {
			t.Fatalf("%s %s %v: %d (%v), want %d", key, period, at, got, ok, want)
		}
	}
	check(f, "web", "day", day1, 60000)
	check(f, "web", "day", day1.Add(24*time.Hour), 70000)
	check(f, "web", "month", day1, 100000)
	check(f, "api", "month", day1.Add(48*time.Hour), 70000)
	if got := f.Merged("web", "day", day1, day1.Add(48*time.Hour)); math.Abs(float64(got)-100000) > 1000 {
		t.Fatalf("merged days: %d", got)
	}
	// Emission: one packet per changed (key, period, bucket).
	if err := f.Tick(tc); err != nil {
		t.Fatal(err)
	}
	if len(tc.Emitted) != 5 {
		t.Fatalf("emitted %d packets, want 5", len(tc.Emitted))
	}
	first := tc.Emitted[0]
	if k, _ := first.Attrs.Str("period"); string(k) != "day" {
		t.Fatalf("first emitted %q", first.Payload)
	}
	tc.Emitted = nil
	f.Tick(tc)
	if len(tc.Emitted) != 0 {
		t.Fatalf("unchanged counts emitted again: %d", len(tc.Emitted))
	}
	// Saved at FlushFilter, loaded by a new instance.
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	g := newTestFilter(t, conf)
	check(g, "web", "month", day1, 100000)
	check(g, "api", "day", day1.Add(24*time.Hour), 70000)
	if len(g.Snapshot()) != 5 {
		t.Fatalf("snapshot after reload: %v", g.Snapshot())
	}
}

func TestCardinalityKeepsNewestBuckets(t *testing.T) {
	f := newTestFilter(t, map[string]any{"field": "u", "periods": []string{"hour"}, "keep": 2})
	tc := &fakeTC{}
	for h := 0; h < 5; h++ {
		p := &pack.Packet{Ts: int64(h) * int64(time.Hour)}
		p.Attrs.SetInt("u", 1)
		f.Process(tc, p)
	}
	f.Tick(tc)
	if s := f.Snapshot(); len(s) != 2 || s[0].Bucket != "1970-01-01T03:00:00Z" {
		t.Fatalf("snapshot %v", s)
	}
}

func BenchmarkCardinalityProcess(b *testing.B) {
	f := newTestFilter(b, map[string]any{"field": "user", "key_by": []string{"app"}})
	tc := &fakeTC{}
	p := &pack.Packet{Ts: time.Now().UnixNano()}
	p.Attrs.SetString("app", "web")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Attrs.SetInt("user", int64(i))
		f.Process(tc, p)
	}
}
