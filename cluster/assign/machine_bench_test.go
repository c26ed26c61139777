package assign

import (
	"fmt"
	"testing"
)

// BenchmarkClusterAssign10kOver50 computes a full assignment of 10 000
// resources over 50 members from scratch (target: < 10 ms per op).
func BenchmarkClusterAssign10kOver50(b *testing.B) {
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("res-%05d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := New(Config{})
		for i := 0; i < 50; i++ {
			m.addMember(fmt.Sprintf("m%03d", i), 1+i%3)
		}
		for _, id := range ids {
			m.addResource(&Resource{ID: id})
		}
		if acts := m.Step(Leadership{Active: true}); len(acts) != len(ids) {
			b.Fatalf("%d actions", len(acts))
		}
	}
}

// BenchmarkClusterAssignJoin measures one member joining 50 members that
// hold 10 000 resources, and reports moved/ideal (target: <= 1).
func BenchmarkClusterAssignJoin(b *testing.B) {
	var moved, ideal int
	for b.Loop() {
		b.StopTimer()
		m, _ := bigMachine(10000, 50)
		b.StartTimer()
		acts := m.Step(MemberJoined{Name: "new", Weight: 1})
		moved = 0
		for _, a := range acts {
			if a.Kind == Start {
				moved++
			}
		}
		ideal = 10000 / 51
	}
	b.ReportMetric(float64(moved), "moved")
	b.ReportMetric(float64(ideal), "ideal")
	b.ReportMetric(float64(moved)/float64(ideal), "moved/ideal")
}

// BenchmarkClusterAssignTick is the idle cost of the per-second tick.
func BenchmarkClusterAssignTick(b *testing.B) {
	m, _ := bigMachine(10000, 50)
	b.ReportAllocs()
	for b.Loop() {
		m.Step(Tick{})
	}
}
