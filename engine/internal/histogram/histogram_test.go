package histogram

import "testing"

func TestEngineHistogramBuckets(t *testing.T) {
	h := New([]float64{1, 10, 100}, 1)
	for _, v := range []float64{0.5, 1, 2, 10, 50, 1000} {
		h.Observe(v)
	}
	s := h.Snapshot()
	want := []uint64{2, 2, 1, 1} // <=1, <=10, <=100, overflow
	for i, c := range want {
		if s.Counts[i] != c {
			t.Fatalf("bucket %d = %d, want %d (%v)", i, s.Counts[i], c, s.Counts)
		}
	}
	if s.Count != 6 || s.Sum != 1063 { // scale 1 keeps whole units: 0.5 counts as 0
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
}
