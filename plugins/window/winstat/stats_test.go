package winstat

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestWindowStatsPercentilesWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var a, b Stats
	var all []float64
	for i := 0; i < 100000; i++ {
		v := math.Exp(r.NormFloat64()*2) * 100
		if i%10 == 0 {
			v = -v
		}
		all = append(all, v)
		if i%2 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	sort.Float64s(all)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := a.Percentile(q)
		if math.Abs(got-exact) > 0.0101*math.Abs(exact) {
			t.Fatalf("p%v = %v, exact %v", q*100, got, exact)
		}
	}
	if a.Count != 100000 || a.Min != all[0] || a.Max != all[len(all)-1] {
		t.Fatalf("count/min/max %d %v %v", a.Count, a.Min, a.Max)
	}
	if q, ok := ParsePercentile("p99.9"); !ok || math.Abs(q-0.999) > 1e-12 {
		t.Fatalf("p99.9 -> %v %v", q, ok)
	}
}
