package aggregate

import (
	"fmt"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
)

type fakeTC = enginetest.FakeContext

func TestAggregateSummariesWithLateAndOutOfOrder(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "agg", "Aggregate", map[string]any{"group_by": []string{"status"}, "field": "ms", "interval": "1m", "lateness": "10s"})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	f := fi.(*Filter)
	tc := &fakeTC{}
	send := func(sec int, status string, ms float64) {
		p := &pack.Packet{Ts: int64(sec) * int64(time.Second)}
		p.Attrs.SetString("status", status)
		p.Attrs.SetFloat("ms", ms)
		f.Process(tc, p)
	}
	send(5, "200", 10)
	send(50, "500", 100)
	send(65, "200", 30) // minute 1
	send(30, "200", 20) // out of order, within lateness: minute 0 still open
	send(75, "200", 50) // watermark 65s: minute 0 closes
	send(40, "200", 99) // late: dropped
	send(130, "200", 1)
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range tc.Emitted {
		k, _ := p.Attrs.Str("status")
		cnt, _ := p.Attrs.Get("count")
		mean, _ := p.Attrs.Get("mean")
		mv, _ := mean.Float()
		got = append(got, fmt.Sprintf("%ds/%s/%d/%g", p.Ts/1e9, k, cnt.I, mv))
	}
	want := "[0s/200/2/15 0s/500/1/100 60s/200/2/40 120s/200/1/1]"
	if fmt.Sprint(got) != want {
		t.Fatalf("summaries\n got %v\nwant %s", got, want)
	}
	if f.Counters().Late != 1 || tc.Dropped["late"] != 1 {
		t.Fatalf("late %+v %v", f.Counters(), tc.Dropped)
	}
}
