package engine

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dbus-project/dbus/engine/internal/histogram"
	"github.com/dbus-project/dbus/engine/internal/tap"
)

// NodeStats holds one plugin's counters. Writers add once per batch;
// readers (metrics, API, dry-run report) take snapshots.
type NodeStats struct {
	name  string
	kind  Kind
	class string

	// reporter is the plugin instance's MetricsReporter, if any (replaced
	// with the instance after a panic).
	reporter atomic.Pointer[reporterRef]

	in, out      atomic.Uint64 // packets received / passed on (or delivered, for outputs)
	bytes        atomic.Uint64 // payload bytes delivered (outputs)
	failed       atomic.Uint64 // packets that failed (filter error, output error after retries)
	retries      atomic.Uint64 // output write retries
	deadLettered atomic.Uint64
	held         atomic.Uint64 // packets held without a dead-letter output
	panics       atomic.Uint64
	restarts     atomic.Uint64
	copies       atomic.Uint64 // copy-on-write copies
	poolWaits    atomic.Uint64 // times an input waited for its pool
	batches      atomic.Uint64 // output writes
	ackNanos     atomic.Uint64 // sum of output write latencies
	ckptOffset   atomic.Int64
	ckptUnixNano atomic.Int64

	dmu   sync.Mutex
	drops map[string]*atomic.Uint64

	tap atomic.Pointer[tap.Sampler]

	// holdSince is when the oldest batch this output still holds was
	// handed to it (unix nanos), 0 when it holds nothing. The held-packet
	// watchdog reads it.
	holdSince atomic.Int64
	stuck     atomic.Bool

	lastErr atomic.Pointer[errRecord]

	// Outputs: per write, its duration and size; per acked batch, the
	// time from the input's hand-off of its first packet to the ack.
	writeHist *histogram.Histogram
	batchHist *histogram.Histogram
	ackHist   *histogram.Histogram
}

type errRecord struct {
	msg  string
	when int64
}

// setErr records the plugin's latest error for operators (API, dbc).
func (s *NodeStats) setErr(err error) {
	if err != nil {
		s.lastErr.Store(&errRecord{msg: err.Error(), when: nowNano()})
	}
}

func newNodeStats(name string, kind Kind, class string) *NodeStats {
	s := &NodeStats{name: name, kind: kind, class: class, drops: map[string]*atomic.Uint64{}}
	if kind == KindOutput {
		s.writeHist = histogram.New(histogram.SecondsBuckets, 1e9)
		s.batchHist = histogram.New(histogram.BatchBuckets, 1)
		s.ackHist = histogram.New(histogram.SecondsBuckets, 1e9)
	}
	return s
}

func (s *NodeStats) drop(reason string) {
	s.dmu.Lock()
	c, ok := s.drops[reason]
	if !ok {
		c = new(atomic.Uint64)
		s.drops[reason] = c
	}
	s.dmu.Unlock()
	c.Add(1)
}

func (s *NodeStats) checkpoint(off int64) {
	s.ckptOffset.Store(off)
	s.ckptUnixNano.Store(nowNano())
}

// NodeSnapshot is a point-in-time copy of a node's counters.
type NodeSnapshot struct {
	Name         string            `json:"name"`
	Kind         string            `json:"kind"`
	Class        string            `json:"class"`
	In           uint64            `json:"in"`
	Out          uint64            `json:"out"`
	Bytes        uint64            `json:"bytes"`
	Failed       uint64            `json:"failed"`
	Retries      uint64            `json:"retries"`
	DeadLettered uint64            `json:"dead_lettered"`
	Held         uint64            `json:"held"`
	Panics       uint64            `json:"panics"`
	Restarts     uint64            `json:"restarts"`
	Copies       uint64            `json:"copies"`
	PoolWaits    uint64            `json:"pool_waits"`
	Batches      uint64            `json:"batches"`
	WriteNanos   uint64            `json:"write_nanos"`
	Drops        map[string]uint64 `json:"drops,omitempty"`
	QueueLen     int               `json:"queue_len"`
	QueueCap     int               `json:"queue_cap"`
	PoolFree     int               `json:"pool_free"`
	PoolCap      int               `json:"pool_cap"`
	// PoolResidentBytes is the payload+key buffer capacity the input's
	// pool keeps (bounded by pool_bytes); PoolOutBytes the accounted bytes
	// of its packets in flight.
	PoolResidentBytes int64 `json:"pool_resident_bytes,omitempty"`
	PoolOutBytes      int64 `json:"pool_out_bytes,omitempty"`
	InFlight          int   `json:"in_flight"`
	Paused            bool  `json:"paused"`
	CkptOffset        int64 `json:"checkpoint_offset"`
	CkptUnixNano      int64 `json:"checkpoint_unix_nano"`
	// HeldSeconds is how long the oldest batch an output holds has been
	// waiting for its sink (0 when idle).
	HeldSeconds float64 `json:"held_seconds"`
	// LagSeconds and LagRecords come from inputs that report lag.
	LagSeconds float64 `json:"lag_seconds,omitempty"`
	LagRecords int64   `json:"lag_records,omitempty"`
	// LastError is the plugin's latest error (input failure, filter or
	// output error) and when it happened.
	LastError         string `json:"last_error,omitempty"`
	LastErrorUnixNano int64  `json:"last_error_unix_nano,omitempty"`
	// Outputs: write duration (seconds), packets per write, and ack
	// latency (seconds from the input's hand-off to the output's ack).
	WriteSeconds *HistogramSnapshot `json:"write_seconds,omitempty"`
	BatchSize    *HistogramSnapshot `json:"batch_size,omitempty"`
	AckSeconds   *HistogramSnapshot `json:"ack_seconds,omitempty"`
	// Metrics are the plugin's own (MetricsReporter).
	Metrics []PluginMetric `json:"metrics,omitempty"`
}

// PluginMetric is one series a plugin reported (MetricsReporter).
type PluginMetric struct {
	Name   string     `json:"name"`
	Help   string     `json:"-"`
	Kind   MetricKind `json:"-"`
	Labels []string   `json:"labels,omitempty"` // name, value pairs
	Value  float64    `json:"value"`
}

type reporterRef struct{ r MetricsReporter }

// setPlugin records inst's MetricsReporter (or none).
func (s *NodeStats) setPlugin(inst any) {
	if r, ok := inst.(MetricsReporter); ok {
		s.reporter.Store(&reporterRef{r})
	} else {
		s.reporter.Store(nil)
	}
}

// pluginMetrics reads the plugin's own metrics (scrape time).
func (s *NodeStats) pluginMetrics() []PluginMetric {
	ref := s.reporter.Load()
	if ref == nil {
		return nil
	}
	var out []PluginMetric
	ref.r.ReportMetrics(func(name, help string, kind MetricKind, value float64, labels ...string) {
		out = append(out, PluginMetric{Name: name, Help: help, Kind: kind, Value: value, Labels: append([]string(nil), labels...)})
	})
	return out
}

// DropTotal sums drops over reasons.
func (n NodeSnapshot) DropTotal() uint64 {
	var t uint64
	for _, v := range n.Drops {
		t += v
	}
	return t
}

func (s *NodeStats) snapshot() NodeSnapshot {
	ns := NodeSnapshot{
		Name: s.name, Kind: s.kind.String(), Class: s.class,
		In: s.in.Load(), Out: s.out.Load(), Bytes: s.bytes.Load(), Failed: s.failed.Load(),
		Retries: s.retries.Load(), DeadLettered: s.deadLettered.Load(), Held: s.held.Load(),
		Panics: s.panics.Load(), Restarts: s.restarts.Load(), Copies: s.copies.Load(),
		PoolWaits: s.poolWaits.Load(), Batches: s.batches.Load(), WriteNanos: s.ackNanos.Load(),
		CkptOffset: s.ckptOffset.Load(), CkptUnixNano: s.ckptUnixNano.Load(),
	}
	ns.Metrics = s.pluginMetrics()
	if s.writeHist != nil {
		w, b, a := s.writeHist.Snapshot(), s.batchHist.Snapshot(), s.ackHist.Snapshot()
		ns.WriteSeconds, ns.BatchSize, ns.AckSeconds = &w, &b, &a
	}
	if r := s.lastErr.Load(); r != nil {
		ns.LastError, ns.LastErrorUnixNano = r.msg, r.when
	}
	if hs := s.holdSince.Load(); hs != 0 {
		ns.HeldSeconds = float64(nowNano()-hs) / 1e9
	}
	s.dmu.Lock()
	if len(s.drops) > 0 {
		ns.Drops = make(map[string]uint64, len(s.drops))
		keys := make([]string, 0, len(s.drops))
		for k := range s.drops {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ns.Drops[k] = s.drops[k].Load()
		}
	}
	s.dmu.Unlock()
	return ns
}
