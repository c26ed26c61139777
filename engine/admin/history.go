package admin

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// History settings: one sample a second, the last hour kept (3 600
// samples per node, about 300 KiB for 10 nodes).
const (
	historyEvery  = time.Second
	historyKeep   = time.Hour
	reloadLogSize = 50
)

// sampleHistory records a history sample every interval until the server
// closes. Stats are read from the supervisor's published view: a sample
// never waits for a reload.
func (s *Server) sampleHistory(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	s.hist.observe(time.Now(), s.b.Stats())
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.hist.observe(now, s.b.Stats())
		}
	}
}

// handleHistory serves GET /api/v1/history?minutes=N (1..60, default 15).
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	minutes := 15
	for k, v := range r.URL.Query() {
		if k != "minutes" || len(v) != 1 {
			writeError(w, http.StatusBadRequest, "unexpected query parameter %q (want minutes=1..60)", k)
			return
		}
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > int(historyKeep/time.Minute) {
			writeError(w, http.StatusBadRequest, "minutes=%q: want a whole number from 1 to %d", v[0], int(historyKeep/time.Minute))
			return
		}
		minutes = n
	}
	writeJSON(w, http.StatusOK, s.hist.view(time.Now().Add(-time.Duration(minutes)*time.Minute), historyEvery))
}

// ReloadsView is the body of GET /api/v1/reloads.
type ReloadsView struct {
	Reloads []ReloadResult `json:"reloads"` // oldest first, the last 50
}

func (s *Server) handleReloads(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, "unexpected query %q", r.URL.RawQuery)
		return
	}
	writeJSON(w, http.StatusOK, ReloadsView{Reloads: s.reloads.all()})
}

// history keeps the last minutes of per-node samples in memory for the
// live page's charts: no external database. A sampler calls observe once
// per interval; readers take columnar series. Memory is bounded by
// capacity (samples) x nodes; samples of nodes that went away (a reload)
// age out with their samples. Safe for concurrent use.
type history struct {
	mu       sync.Mutex // guards everything below
	capacity int
	samples  []histSample // ring, oldest at head once full
	head     int
	prev     map[string]histCounters // counters of the previous observation
	prevAt   time.Time
}

// histSample is one observation of every node.
type histSample struct {
	at    int64 // unix milliseconds
	nodes map[string]HistPoint
}

type histCounters struct{ in, out, drops, retries, held uint64 }

// HistPoint is one node's values at one sample.
type HistPoint struct {
	In        float64 `json:"in"`         // packets/s in
	Out       float64 `json:"out"`        // packets/s out
	Drops     float64 `json:"drops"`      // drops/s (every reason)
	Retries   float64 `json:"retries"`    // retries/s (outputs)
	Held      float64 `json:"held"`       // packets held/s (outputs)
	QueueFill float64 `json:"queue_fill"` // ring depth / capacity, 0..1
	CkptAge   float64 `json:"ckpt_age"`   // seconds since the node's checkpoint moved (inputs; 0 when none)
	AckP50    float64 `json:"ack_p50"`    // seconds from input hand-off to output ack (outputs)
	AckP99    float64 `json:"ack_p99"`
	Lag       float64 `json:"lag"` // input lag in seconds, when reported
}

func newHistory(capacity int) *history {
	if capacity < 2 {
		capacity = 2
	}
	return &history{capacity: capacity}
}

// observe records stats taken at now: rates against the previous call.
func (h *history) observe(now time.Time, stats []engine.NodeSnapshot) {
	cur := make(map[string]histCounters, len(stats))
	for _, st := range stats {
		cur[st.Name] = histCounters{in: st.In, out: st.Out, drops: st.DropTotal(), retries: st.Retries, held: st.Held}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	secs := now.Sub(h.prevAt).Seconds()
	if h.prev == nil || secs <= 0 {
		h.prev, h.prevAt = cur, now
		return
	}
	pts := make(map[string]HistPoint, len(stats))
	for _, st := range stats {
		c, b := cur[st.Name], h.prev[st.Name]
		p := HistPoint{
			In: delta(c.in, b.in, secs), Out: delta(c.out, b.out, secs), Drops: delta(c.drops, b.drops, secs),
			Retries: delta(c.retries, b.retries, secs), Held: delta(c.held, b.held, secs),
			Lag: st.LagSeconds,
		}
		if st.QueueCap > 0 {
			p.QueueFill = float64(st.QueueLen) / float64(st.QueueCap)
		}
		if st.CkptUnixNano > 0 {
			p.CkptAge = math.Max(0, now.Sub(time.Unix(0, st.CkptUnixNano)).Seconds())
		}
		if st.AckSeconds != nil {
			p.AckP50, p.AckP99 = quantile(st.AckSeconds, 0.5), quantile(st.AckSeconds, 0.99)
		}
		pts[st.Name] = p
	}
	s := histSample{at: now.UnixMilli(), nodes: pts}
	if len(h.samples) < h.capacity {
		h.samples = append(h.samples, s)
	} else {
		h.samples[h.head] = s
		h.head = (h.head + 1) % h.capacity
	}
	h.prev, h.prevAt = cur, now
}

// HistoryView is the body of GET /api/v1/history: per node, a time axis
// (unix milliseconds) and one column per value, oldest first.
type HistoryView struct {
	IntervalMS int64                     `json:"interval_ms"`
	Nodes      map[string]*HistorySeries `json:"nodes"`
}

// HistorySeries is one node's columns.
type HistorySeries struct {
	T         []int64   `json:"t"`
	In        []float64 `json:"in"`
	Out       []float64 `json:"out"`
	Drops     []float64 `json:"drops"`
	Retries   []float64 `json:"retries"`
	Held      []float64 `json:"held"`
	QueueFill []float64 `json:"queue_fill"`
	CkptAge   []float64 `json:"ckpt_age"`
	AckP50    []float64 `json:"ack_p50"`
	AckP99    []float64 `json:"ack_p99"`
	Lag       []float64 `json:"lag"`
}

// view returns the samples taken at or after since.
func (h *history) view(since time.Time, interval time.Duration) HistoryView {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := HistoryView{IntervalMS: interval.Milliseconds(), Nodes: map[string]*HistorySeries{}}
	from := since.UnixMilli()
	for i := range h.samples {
		s := h.samples[(h.head+i)%len(h.samples)]
		if s.at < from {
			continue
		}
		for name, p := range s.nodes {
			ser := v.Nodes[name]
			if ser == nil {
				ser = &HistorySeries{}
				v.Nodes[name] = ser
			}
			ser.T = append(ser.T, s.at)
			ser.In = append(ser.In, round3(p.In))
			ser.Out = append(ser.Out, round3(p.Out))
			ser.Drops = append(ser.Drops, round3(p.Drops))
			ser.Retries = append(ser.Retries, round3(p.Retries))
			ser.Held = append(ser.Held, round3(p.Held))
			ser.QueueFill = append(ser.QueueFill, round3(p.QueueFill))
			ser.CkptAge = append(ser.CkptAge, round3(p.CkptAge))
			ser.AckP50 = append(ser.AckP50, p.AckP50)
			ser.AckP99 = append(ser.AckP99, p.AckP99)
			ser.Lag = append(ser.Lag, round3(p.Lag))
		}
	}
	return v
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// quantile estimates the q-quantile of a bucketed histogram: the upper
// bound of the bucket holding it (the last finite bound for overflow).
func quantile(h *engine.HistogramSnapshot, q float64) float64 {
	if h == nil || h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if i < len(h.Bounds) {
				return h.Bounds[i]
			}
			return h.Bounds[len(h.Bounds)-1]
		}
	}
	return h.Bounds[len(h.Bounds)-1]
}

// reloadLog keeps the last reload attempts, applied or rejected, newest
// last. Safe for concurrent use.
type reloadLog struct {
	mu   sync.Mutex // guards list
	list []ReloadResult
	max  int
}

func (l *reloadLog) add(r ReloadResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, r)
	if n := len(l.list) - l.max; l.max > 0 && n > 0 {
		l.list = append(l.list[:0], l.list[n:]...)
	}
}

func (l *reloadLog) all() []ReloadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ReloadResult{}, l.list...)
}
