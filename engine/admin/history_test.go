package admin

import (
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

func TestAPIHistoryRatesAndRing(t *testing.T) {
	h := newHistory(3)
	t0 := time.Unix(1000, 0)
	snap := func(in, out uint64, qlen int) []engine.NodeSnapshot {
		return []engine.NodeSnapshot{{Name: "gen", In: in, Out: out, QueueLen: qlen, QueueCap: 100,
			AckSeconds: &engine.HistogramSnapshot{Bounds: []float64{0.001, 0.01, 0.1}, Counts: []uint64{90, 9, 1, 0}, Count: 100}}}
	}
	h.observe(t0, snap(0, 0, 0)) // the base: no sample yet
	if v := h.view(time.Time{}, time.Second); len(v.Nodes) != 0 {
		t.Fatalf("a first observation gave samples: %+v", v)
	}
	for i := 1; i <= 5; i++ {
		h.observe(t0.Add(time.Duration(i)*time.Second), snap(uint64(i*100), uint64(i*50), i*10))
	}
	v := h.view(time.Time{}, time.Second)
	s := v.Nodes["gen"]
	if s == nil || len(s.T) != 3 {
		t.Fatalf("want the 3 newest samples (capacity 3), got %+v", s)
	}
	if s.T[0] != t0.Add(3*time.Second).UnixMilli() || s.T[2] != t0.Add(5*time.Second).UnixMilli() {
		t.Fatalf("samples not oldest first: %v", s.T)
	}
	for i := range s.T {
		if s.In[i] != 100 || s.Out[i] != 50 {
			t.Fatalf("rates in %v out %v, want 100 and 50 per second", s.In, s.Out)
		}
	}
	if s.QueueFill[2] != 0.5 || s.AckP50[0] != 0.001 || s.AckP99[0] != 0.01 {
		t.Fatalf("queue fill %v, ack p50 %v p99 %v", s.QueueFill, s.AckP50, s.AckP99)
	}
	if v := h.view(t0.Add(5*time.Second), time.Second); len(v.Nodes["gen"].T) != 1 {
		t.Fatalf("since filter: %+v", v.Nodes["gen"])
	}
	// A counter that went down (a reload replaced the node) counts from 0.
	h.observe(t0.Add(6*time.Second), snap(30, 10, 0))
	v = h.view(t0.Add(6*time.Second), time.Second)
	if got := v.Nodes["gen"].In[0]; got != 30 {
		t.Fatalf("rate after a counter reset %v, want 30", got)
	}
}

func TestAPIReloadLogKeepsNewest(t *testing.T) {
	l := reloadLog{max: 3}
	for i := int64(1); i <= 5; i++ {
		l.add(ReloadResult{Generation: i})
	}
	got := l.all()
	if len(got) != 3 || got[0].Generation != 3 || got[2].Generation != 5 {
		t.Fatalf("reload log %+v", got)
	}
}
