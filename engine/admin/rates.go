package admin

import (
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// rateTracker turns counter snapshots taken at request time into rates.
// It samples only when asked (no background goroutine): each request
// records a sample (at most one per minGap) and compares with the newest
// sample at least rateWindow old, or the oldest one it has.
type rateTracker struct {
	mu      sync.Mutex // guards samples
	samples []rateSample
}

type rateSample struct {
	t time.Time
	c map[string]counters
}

type counters struct{ in, out, bytes, drops uint64 }

type rates struct{ in, out, bytes, drops float64 }

const (
	rateWindow = time.Second
	minGap     = 200 * time.Millisecond
	keepFor    = 10 * time.Second
)

// observe records stats taken at now and returns per-node rates and the
// window they cover in seconds (0 when there is no earlier sample).
func (rt *rateTracker) observe(now time.Time, stats []engine.NodeSnapshot) (map[string]rates, float64) {
	cur := make(map[string]counters, len(stats))
	for _, st := range stats {
		cur[st.Name] = counters{in: st.In, out: st.Out, bytes: st.Bytes, drops: st.DropTotal()}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	// Pick the base: the newest sample at least rateWindow old, else the oldest.
	var base *rateSample
	for i := len(rt.samples) - 1; i >= 0; i-- {
		if now.Sub(rt.samples[i].t) >= rateWindow {
			base = &rt.samples[i]
			break
		}
	}
	if base == nil && len(rt.samples) > 0 && now.Sub(rt.samples[0].t) > 50*time.Millisecond {
		base = &rt.samples[0]
	}
	out := make(map[string]rates, len(cur))
	window := 0.0
	if base != nil {
		window = now.Sub(base.t).Seconds()
		for name, c := range cur {
			b := base.c[name] // zero for a node that did not exist: counts since it started
			out[name] = rates{
				in: delta(c.in, b.in, window), out: delta(c.out, b.out, window),
				bytes: delta(c.bytes, b.bytes, window), drops: delta(c.drops, b.drops, window),
			}
		}
	}
	if n := len(rt.samples); n == 0 || now.Sub(rt.samples[n-1].t) >= minGap {
		rt.samples = append(rt.samples, rateSample{t: now, c: cur})
	}
	// Drop samples too old to be a base, keeping the newest such one.
	drop := 0
	for drop+1 < len(rt.samples) && now.Sub(rt.samples[drop+1].t) >= keepFor {
		drop++
	}
	rt.samples = append(rt.samples[:0], rt.samples[drop:]...)
	return out, window
}

// delta is a counter's rate; a counter that went down was reset (its
// component was replaced by a reload) and counts from zero.
func delta(cur, base uint64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	if cur < base {
		return float64(cur) / secs
	}
	return float64(cur-base) / secs
}
