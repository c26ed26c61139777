package winstat

import (
	"math"
	"sort"
)

const relAcc = 0.01

var (
	gamma    = (1 + relAcc) / (1 - relAcc)
	logGamma = math.Log(gamma)
)

// Stats summarises a set of float values.
type Stats struct {
	Count    int64
	Sum      float64
	SumSq    float64
	Min, Max float64
	pos, neg map[int32]int64 // histogram buckets of positive / negated negative values
	zero     int64
}

// Reset clears s, keeping its maps.
func (s *Stats) Reset() {
	s.Count, s.Sum, s.SumSq, s.Min, s.Max, s.zero = 0, 0, 0, 0, 0, 0
	clear(s.pos)
	clear(s.neg)
}

func bucket(v float64) int32 { return int32(math.Ceil(math.Log(v) / logGamma)) }

// Add adds one value.
func (s *Stats) Add(v float64) {
	if math.IsNaN(v) {
		return
	}
	if s.Count == 0 || v < s.Min {
		s.Min = v
	}
	if s.Count == 0 || v > s.Max {
		s.Max = v
	}
	s.Count++
	s.Sum += v
	s.SumSq += v * v
	switch {
	case v > 1e-300:
		if s.pos == nil {
			s.pos = map[int32]int64{}
		}
		s.pos[bucket(v)]++
	case v < -1e-300:
		if s.neg == nil {
			s.neg = map[int32]int64{}
		}
		s.neg[bucket(-v)]++
	default:
		s.zero++
	}
}

// AddCount counts n events without a value (count-only windows).
func (s *Stats) AddCount(n int64) { s.Count += n }

// Merge adds o into s.
func (s *Stats) Merge(o *Stats) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	if s.Count == 0 || o.Max > s.Max {
		s.Max = o.Max
	}
	s.Count += o.Count
	s.Sum += o.Sum
	s.SumSq += o.SumSq
	s.zero += o.zero
	if len(o.pos) > 0 && s.pos == nil {
		s.pos = map[int32]int64{}
	}
	for k, v := range o.pos {
		s.pos[k] += v
	}
	if len(o.neg) > 0 && s.neg == nil {
		s.neg = map[int32]int64{}
	}
	for k, v := range o.neg {
		s.neg[k] += v
	}
}

// Mean returns the mean (0 when empty).
func (s *Stats) Mean() float64 {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / float64(s.Count)
}

// Stddev returns the population standard deviation.
func (s *Stats) Stddev() float64 {
	if s.Count == 0 {
		return 0
	}
	m := s.Mean()
	v := s.SumSq/float64(s.Count) - m*m
	if v < 0 {
		return 0
	}
	return math.Sqrt(v)
}

// Percentile returns the q-quantile (0 <= q <= 1) of the added values
// within 1 % relative error, clamped to [Min, Max].
func (s *Stats) Percentile(q float64) float64 {
	n := s.zero
	for _, c := range s.pos {
		n += c
	}
	for _, c := range s.neg {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var val float64
	var seen int64
	// Negative values, most negative first.
	nk := keys(s.neg)
	for i := len(nk) - 1; i >= 0; i-- {
		seen += s.neg[nk[i]]
		if seen >= rank {
			val = -value(nk[i])
			return clamp(val, s.Min, s.Max)
		}
	}
	seen += s.zero
	if seen >= rank {
		return clamp(0, s.Min, s.Max)
	}
	for _, k := range keys(s.pos) {
		seen += s.pos[k]
		if seen >= rank {
			return clamp(value(k), s.Min, s.Max)
		}
	}
	return s.Max
}

func value(k int32) float64 { return 2 * math.Pow(gamma, float64(k)) / (gamma + 1) }

func keys(m map[int32]int64) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// Metric returns a named statistic: count, sum, mean, min, max, stddev,
// or pNN (p50, p99, p99.9).
func (s *Stats) Metric(name string) (float64, bool) {
	switch name {
	case "count":
		return float64(s.Count), true
	case "sum":
		return s.Sum, true
	case "mean":
		return s.Mean(), true
	case "min":
		return s.Min, true
	case "max":
		return s.Max, true
	case "stddev":
		return s.Stddev(), true
	}
	if q, ok := ParsePercentile(name); ok {
		return s.Percentile(q), true
	}
	return 0, false
}

// ParsePercentile parses "p50", "p99.9" into a quantile.
func ParsePercentile(name string) (float64, bool) {
	if len(name) < 2 || name[0] != 'p' {
		return 0, false
	}
	var v float64
	var frac float64
	dot := false
	for _, c := range name[1:] {
		switch {
		case c == '.' && !dot:
			dot, frac = true, 0.1
		case c >= '0' && c <= '9':
			if dot {
				v += float64(c-'0') * frac
				frac /= 10
			} else {
				v = v*10 + float64(c-'0')
			}
		default:
			return 0, false
		}
	}
	if v <= 0 || v > 100 {
		return 0, false
	}
	return v / 100, true
}

// ValidMetric reports whether name is a metric Metric knows.
func ValidMetric(name string) bool {
	var s Stats
	_, ok := s.Metric(name)
	return ok
}
