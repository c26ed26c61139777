package hll

import (
	"math"
	"strconv"
	"testing"
)

func relErr(est uint64, n int) float64 { return math.Abs(float64(est)-float64(n)) / float64(n) }

func TestCardinalityHLLWithinOnePercentOverOneMillion(t *testing.T) {
	s, _ := New(0)
	ints, _ := New(0)
	exact := map[string]struct{}{}
	buf := make([]byte, 0, 32)
	checkpoints := map[int]bool{1000: true, 10000: true, 50000: true, 100000: true, 500000: true, 1000000: true}
	for i := 0; i < 1000000; i++ {
		buf = append(buf[:0], "user-"...)
		buf = strconv.AppendInt(buf, int64(i)*7919, 10)
		s.AddBytes(buf)
		if i%3 == 0 {
			s.AddBytes(buf) // duplicates do not count
		}
		ints.AddInt64(int64(i))
		exact[string(buf)] = struct{}{}
		if n := i + 1; checkpoints[n] {
			if e := relErr(s.Estimate(), len(exact)); e > 0.01 {
				t.Fatalf("strings: estimate %d for %d distinct: error %.3f%%", s.Estimate(), len(exact), 100*e)
			}
			if e := relErr(ints.Estimate(), n); e > 0.01 {
				t.Fatalf("ints: estimate %d for %d distinct: error %.3f%%", ints.Estimate(), n, 100*e)
			}
			t.Logf("n=%d strings %.3f%% ints %.3f%%", n, 100*relErr(s.Estimate(), len(exact)), 100*relErr(ints.Estimate(), n))
		}
	}
	if !s.Dense() {
		t.Fatal("1M ids should be dense")
	}
}

func TestCardinalityHLLSparseSmallExactish(t *testing.T) {
	s, _ := New(14)
	for i := 0; i < 200; i++ {
		s.AddInt64(int64(i))
		s.AddInt64(int64(i))
	}
	if s.Dense() {
		t.Fatal("200 ids should stay sparse")
	}
	if e := s.Estimate(); e < 198 || e > 202 {
		t.Fatalf("estimate %d for 200", e)
	}
	if b, _ := s.MarshalBinary(); len(b) > 1000 {
		t.Fatalf("sparse sketch of 200 ids takes %d bytes", len(b))
	}
}

func TestCardinalityHLLMergeAndSerialise(t *testing.T) {
	a, _ := New(14)
	b, _ := New(14)
	c, _ := New(14)
	for i := 0; i < 300000; i++ {
		if i < 200000 {
			a.AddInt64(int64(i))
		}
		if i >= 100000 {
			b.AddInt64(int64(i))
		}
		if i < 500 {
			c.AddInt64(int64(i + 1000000))
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(c); err != nil { // sparse into dense
		t.Fatal(err)
	}
	if e := relErr(a.Estimate(), 300500); e > 0.02 {
		t.Fatalf("merged estimate %d for 300500", a.Estimate())
	}
	for _, s := range []*Sketch{a, c} {
		data, _ := s.MarshalBinary()
		var r Sketch
		if err := r.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		if r.Estimate() != s.Estimate() || r.Dense() != s.Dense() {
			t.Fatalf("round trip: %d vs %d", r.Estimate(), s.Estimate())
		}
	}
	// Sparse merged into sparse stays exact-ish.
	d, _ := New(14)
	d.Merge(c)
	d.Merge(c)
	if d.Estimate() != c.Estimate() {
		t.Fatalf("merge is not idempotent: %d vs %d", d.Estimate(), c.Estimate())
	}
	x, _ := New(12)
	if x.Merge(a) == nil {
		t.Fatal("merging different precisions must fail")
	}
	for _, bad := range [][]byte{nil, {1, 14, 1, 0}, {2, 14, 0, 0}, {1, 14, 0, 5, 1}} {
		var r Sketch
		if r.UnmarshalBinary(bad) == nil {
			t.Fatalf("corrupt %v accepted", bad)
		}
	}
}

func BenchmarkCardinalityHLLAdd(b *testing.B) {
	s, _ := New(0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.AddUint64(uint64(i))
	}
}
