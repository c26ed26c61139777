// Package histogram counts observations into fixed buckets with atomic
// counters: one Observe per batch on the engine's hot path (no lock, no
// allocation), read at scrape time with Snapshot. Observe and Snapshot are
// safe from any goroutine. It sits under engine/internal so that plugins
// cannot depend on it; engine.HistogramSnapshot is its Snapshot.
package histogram

import "sync/atomic"

// Histogram counts observations into fixed buckets.
type Histogram struct {
	bounds []float64 // upper bounds, ascending; an overflow bucket follows
	counts []atomic.Uint64
	sum    atomic.Uint64 // sum in units of scale
	count  atomic.Uint64
	scale  float64 // observations are stored as uint64(v*scale) in sum
}

// New returns a histogram with the given ascending upper bounds (an
// overflow bucket follows them); observations are summed as uint64(v*scale).
func New(bounds []float64, scale float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1), scale: scale}
}

// Observe counts v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	if v > 0 {
		h.sum.Add(uint64(v * h.scale))
	}
}

// Snapshot is a histogram read at one moment.
type Snapshot struct {
	// Bounds are the buckets' upper bounds; Counts[i] counts observations
	// <= Bounds[i] and > Bounds[i-1]; Counts[len(Bounds)] the rest.
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
	Count  uint64    `json:"count"`
}

// Snapshot reads the histogram. The caller owns the result; Bounds is
// shared and must not be changed.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.counts)), Count: h.count.Load()}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = float64(h.sum.Load()) / h.scale
	return s
}

// Buckets of the engine's histograms.
var (
	SecondsBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	BatchBuckets   = []float64{1, 4, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384}
)
