package metrics

import (
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Source is what the collector reads; *engine.Supervisor implements it.
type Source interface {
	Stats() []engine.NodeSnapshot
	Generation() int64
	Uptime() time.Duration
}

// ClusterStats is a cluster member's view, read at scrape time.
type ClusterStats struct {
	Members          int    // live members seen in the cluster
	MemberLosses     uint64 // members whose session ended without leaving, since start
	Leader           bool   // this member is the leader
	ResourcesOwned   int    // resources this member runs
	ResourcesPending int    // resources assigned to nobody
	// Set by a cluster member's admin API (cluster.MemberAdmin).
	ResourcesFailed   int     // owned resources this member cannot run now
	Epoch             uint64  // assignment epoch this member last saw
	Rebalances        uint64  // assignment changes (new epochs) seen since start
	FencingRejections uint64  // checkpoint writes refused by fencing since start
	SessionState      string  // one of SessionStates; "" outside a cluster
	LeaseSeconds      float64 // time left on the member's lease (0: ran out)
}

// SessionStates are the values of dbus_cluster_session_state's state
// label: "connected" (the session is established), "connecting" (a
// server is being dialled or the session is being set up),
// "disconnected", "expired".
var SessionStates = []string{"connected", "connecting", "disconnected", "expired"}

// Options tune a Collector.
type Options struct {
	// Version is reported by dbus_build_info.
	Version string
	// Cluster, when set, is called at scrape time for the dbus_cluster_*
	// metrics; nil reports zeros (a single node).
	Cluster func() ClusterStats
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
	// EngineOnly leaves out dbus_build_info and the dbus_cluster_*
	// series: the collector of one of a member's resource engines,
	// registered with a resource label (ResourceGatherer).
	EngineOnly bool
}

// Collector turns Source snapshots into Prometheus metrics at scrape time.
type Collector struct {
	src  Source
	opts Options
}

// NewCollector returns a collector reading src.
func NewCollector(src Source, opts Options) *Collector {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	return &Collector{src: src, opts: opts}
}

var nodeLabels = []string{"plugin", "kind", "class"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func nodeDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, nodeLabels...), extra...), nil)
}

// Descriptors. Keep Names() in step.
var (
	dBuildInfo  = desc("dbus_build_info", "Build information; the value is 1.", "version", "go_version")
	dGeneration = desc("dbus_config_generation", "Generation of the running config (1 at start, +1 per applied reload).")
	dUptime     = desc("dbus_uptime_seconds", "Seconds since the pipeline started.")

	dIn      = nodeDesc("dbus_plugin_packets_in_total", "Packets received by the plugin (inputs: packets read from the source).")
	dOut     = nodeDesc("dbus_plugin_packets_out_total", "Packets passed on by the plugin (outputs: packets delivered to the sink).")
	dFailed  = nodeDesc("dbus_plugin_packets_failed_total", "Packets that failed in the plugin (filter error, output error after retries).")
	dDropped = nodeDesc("dbus_plugin_packets_dropped_total", "Packets discarded on purpose, by reason.", "reason")
	dPanics  = nodeDesc("dbus_plugin_panics_total", "Panics recovered in the plugin.")
	dRestart = nodeDesc("dbus_plugin_restarts_total", "Times the plugin was restarted after a failure.")

	dRingDepth = nodeDesc("dbus_ring_depth_packets", "Packets waiting in the plugin's inbound ring.")
	dRingCap   = nodeDesc("dbus_ring_capacity_packets", "Capacity of the plugin's inbound ring.")

	dCopies = nodeDesc("dbus_filter_copies_total", "Copy-on-write copies made by the filter.")

	dPoolWaits = nodeDesc("dbus_input_pool_waits_total", "Times the input waited for a free packet (back pressure).")
	dPoolFree  = nodeDesc("dbus_input_pool_free_packets", "Free packets in the input's pool.")
	dPoolCap   = nodeDesc("dbus_input_pool_capacity_packets", "Capacity of the input's pool.")
	dPoolRes   = nodeDesc("dbus_input_pool_resident_bytes", "Payload and key buffer bytes the input's pool keeps (bounded by pool_bytes).")
	dInFlight  = nodeDesc("dbus_input_in_flight_packets", "Packets emitted by the input and not yet acked (in-flight window use).")
	dPaused    = nodeDesc("dbus_input_paused", "1 while the input is paused.")
	dLagSec    = nodeDesc("dbus_input_lag_seconds", "How far the input is behind its source in time (binlog); 0 when unknown.")
	dLagRec    = nodeDesc("dbus_input_lag_records", "Records the input is behind its source (Kafka consumer lag); 0 when unknown.")
	dCkptOff   = nodeDesc("dbus_checkpoint_offset", "Offset of the input's last committed checkpoint.")
	dCkptTime  = nodeDesc("dbus_checkpoint_timestamp_seconds", "Unix time of the input's last checkpoint commit (0: none yet).")
	dCkptAge   = nodeDesc("dbus_checkpoint_age_seconds", "Seconds since the input's last checkpoint commit (since start when none yet).")

	dOutBytes   = nodeDesc("dbus_output_bytes_total", "Payload bytes delivered by the output.")
	dRetries    = nodeDesc("dbus_output_retries_total", "Write retries of the output.")
	dDeadLetter = nodeDesc("dbus_output_dead_letters_total", "Packets the output sent to its dead-letter output.")
	dHeld       = nodeDesc("dbus_output_held_packets", "Packets held after the retry budget with no dead-letter output: the pipeline stops advancing.")
	dWrite      = nodeDesc("dbus_output_write_duration_seconds", "Duration of the output's write calls (count is write attempts).")
	dBatch      = nodeDesc("dbus_output_batch_size_packets", "Packets per write attempt of the output.")
	dAck        = nodeDesc("dbus_output_ack_latency_seconds", "Time from the input's hand-off of a batch's first packet to the output's ack (one sample per acked batch).")
	dHeldSec    = nodeDesc("dbus_output_held_seconds", "How long the oldest batch the output holds has waited for its sink (0 when idle).")

	dMembers    = desc("dbus_cluster_members", "Live members of the cluster this node belongs to (0 outside a cluster).")
	dLosses     = desc("dbus_cluster_member_losses_total", "Members lost (session ended without leaving) since this node started.")
	dLeader     = desc("dbus_cluster_leader", "1 when this node is the cluster leader.")
	dOwned      = desc("dbus_cluster_resources_owned", "Resources this node runs.")
	dUnassigned = desc("dbus_cluster_resources_unassigned", "Resources assigned to no member.")
	dResFailed  = desc("dbus_cluster_resources_failed", "Resources this node owns but cannot run now (failed, retried with backoff).")
	dEpoch      = desc("dbus_cluster_assignment_epoch", "Epoch of the newest assignment this node saw (grows with every assignment change).")
	dRebalances = desc("dbus_cluster_rebalances_total", "Assignment changes (new epochs) this node saw since it started.")
	dFenced     = desc("dbus_cluster_fencing_rejections_total", "Checkpoint writes of this node refused by fencing (the resource was granted again elsewhere) since it started.")
	dSession    = desc("dbus_cluster_session_state", "1 for the ZooKeeper session's current state, 0 for the others.", "state")
	dLease      = desc("dbus_cluster_lease_remaining_seconds", "Time left on this node's lease: its outputs stop writing when it reaches 0.")
)

var allDescs = []*prometheus.Desc{
	dBuildInfo, dGeneration, dUptime,
	dIn, dOut, dFailed, dDropped, dPanics, dRestart, dRingDepth, dRingCap, dCopies,
	dPoolWaits, dPoolFree, dPoolCap, dPoolRes, dInFlight, dPaused, dLagSec, dLagRec, dCkptOff, dCkptTime, dCkptAge,
	dOutBytes, dRetries, dDeadLetter, dHeld, dWrite, dBatch, dAck, dHeldSec,
	dMembers, dLosses, dLeader, dOwned, dUnassigned,
	dResFailed, dEpoch, dRebalances, dFenced, dSession, dLease,
}

// Names returns every metric family name the collector can produce
// (without the _sum/_count series of summaries), sorted.
func Names() []string {
	return []string{
		"dbus_build_info", "dbus_checkpoint_age_seconds", "dbus_checkpoint_offset", "dbus_checkpoint_timestamp_seconds",
		"dbus_cluster_assignment_epoch", "dbus_cluster_fencing_rejections_total",
		"dbus_cluster_leader", "dbus_cluster_lease_remaining_seconds", "dbus_cluster_member_losses_total", "dbus_cluster_members",
		"dbus_cluster_rebalances_total", "dbus_cluster_resources_failed", "dbus_cluster_resources_owned",
		"dbus_cluster_resources_unassigned", "dbus_cluster_session_state", "dbus_config_generation", "dbus_filter_copies_total",
		"dbus_input_in_flight_packets", "dbus_input_lag_records", "dbus_input_lag_seconds", "dbus_input_paused",
		"dbus_input_pool_capacity_packets", "dbus_input_pool_free_packets", "dbus_input_pool_waits_total",
		"dbus_output_ack_latency_seconds", "dbus_output_batch_size_packets", "dbus_output_bytes_total", "dbus_output_dead_letters_total",
		"dbus_output_held_packets", "dbus_output_held_seconds", "dbus_output_retries_total", "dbus_output_write_duration_seconds",
		"dbus_plugin_packets_dropped_total", "dbus_plugin_packets_failed_total", "dbus_plugin_packets_in_total",
		"dbus_plugin_packets_out_total", "dbus_plugin_panics_total", "dbus_plugin_restarts_total",
		"dbus_ring_capacity_packets", "dbus_ring_depth_packets", "dbus_uptime_seconds",
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats() call per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := c.opts.Now()
	uptime := c.src.Uptime()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	hist := func(d *prometheus.Desc, h *engine.HistogramSnapshot, lv ...string) {
		if h == nil {
			return
		}
		buckets := make(map[float64]uint64, len(h.Bounds))
		var cum uint64
		for i, b := range h.Bounds {
			cum += h.Counts[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, lv...)
	}
	if !c.opts.EngineOnly {
		gauge(dBuildInfo, 1, c.opts.Version, runtime.Version())
	}
	gauge(dGeneration, float64(c.src.Generation()))
	gauge(dUptime, uptime.Seconds())

	for _, s := range c.src.Stats() {
		collectPlugin(ch, &s)
		lv := []string{s.Name, s.Kind, s.Class}
		counter(dIn, s.In, lv...)
		counter(dOut, s.Out, lv...)
		counter(dFailed, s.Failed, lv...)
		counter(dPanics, s.Panics, lv...)
		counter(dRestart, s.Restarts, lv...)
		reasons := make([]string, 0, len(s.Drops))
		for r := range s.Drops {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			counter(dDropped, s.Drops[r], s.Name, s.Kind, s.Class, r)
		}
		if s.QueueCap > 0 {
			gauge(dRingDepth, float64(s.QueueLen), lv...)
			gauge(dRingCap, float64(s.QueueCap), lv...)
		}
		switch s.Kind {
		case engine.KindFilter.String():
			counter(dCopies, s.Copies, lv...)
		case engine.KindInput.String():
			counter(dPoolWaits, s.PoolWaits, lv...)
			gauge(dPoolFree, float64(s.PoolFree), lv...)
			gauge(dPoolCap, float64(s.PoolCap), lv...)
			gauge(dPoolRes, float64(s.PoolResidentBytes), lv...)
			gauge(dInFlight, float64(s.InFlight), lv...)
			gauge(dPaused, b2f(s.Paused), lv...)
			// Wired when the engine reports a plugin's lag (see doc.go).
			gauge(dLagSec, s.LagSeconds, lv...)
			gauge(dLagRec, float64(s.LagRecords), lv...)
			gauge(dCkptOff, float64(s.CkptOffset), lv...)
			age := uptime.Seconds()
			ts := 0.0
			if s.CkptUnixNano > 0 {
				ts = float64(s.CkptUnixNano) / 1e9
				age = max(now.Sub(time.Unix(0, s.CkptUnixNano)).Seconds(), 0)
			}
			gauge(dCkptTime, ts, lv...)
			gauge(dCkptAge, age, lv...)
		case engine.KindOutput.String():
			counter(dOutBytes, s.Bytes, lv...)
			counter(dRetries, s.Retries, lv...)
			counter(dDeadLetter, s.DeadLettered, lv...)
			gauge(dHeld, float64(s.Held), lv...)
			gauge(dHeldSec, s.HeldSeconds, lv...)
			hist(dWrite, s.WriteSeconds, lv...)
			hist(dBatch, s.BatchSize, lv...)
			hist(dAck, s.AckSeconds, lv...)
		}
	}

	if c.opts.EngineOnly {
		return
	}
	var cs ClusterStats
	if c.opts.Cluster != nil {
		cs = c.opts.Cluster()
	}
	gauge(dMembers, float64(cs.Members))
	counter(dLosses, cs.MemberLosses)
	gauge(dLeader, b2f(cs.Leader))
	gauge(dOwned, float64(cs.ResourcesOwned))
	gauge(dUnassigned, float64(cs.ResourcesPending))
	gauge(dResFailed, float64(cs.ResourcesFailed))
	gauge(dEpoch, float64(cs.Epoch))
	counter(dRebalances, cs.Rebalances)
	counter(dFenced, cs.FencingRejections)
	for _, st := range SessionStates {
		gauge(dSession, b2f(cs.SessionState == st), st)
	}
	gauge(dLease, cs.LeaseSeconds)
}

// Resource is one of a cluster member's resource engines.
type Resource struct {
	Name   string
	Source Source
}

// ResourceGatherer gathers base plus, for every resource list returns at
// scrape time, the engine series of its Source (EngineOnly) with a
// "resource" label: a member's /metrics. Resources come and go, so
// their collectors live in a registry built per scrape.
func ResourceGatherer(base prometheus.Gatherer, list func() []Resource) prometheus.Gatherer {
	return prometheus.Gatherers{base, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		reg := prometheus.NewRegistry()
		for _, r := range list() {
			w := prometheus.WrapRegistererWith(prometheus.Labels{"resource": r.Name}, reg)
			if err := w.Register(NewCollector(r.Source, Options{EngineOnly: true})); err != nil {
				return nil, fmt.Errorf("resource %s: %w", r.Name, err)
			}
		}
		return reg.Gather()
	})}
}

// GathererHandler serves g in the Prometheus text (or negotiated) format.
func GathererHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry holding c plus the Go runtime and process
// collectors.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text (or negotiated) format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: reg})
}

// collectPlugin exports the metrics a plugin publishes itself
// (engine.MetricsReporter), read at scrape time with the node's labels.
// Their names are not known in advance, so Describe does not list them (a
// normal registry accepts them; only a pedantic one would not).
func collectPlugin(ch chan<- prometheus.Metric, s *engine.NodeSnapshot) {
	for _, m := range s.Metrics {
		names := append([]string(nil), nodeLabels...)
		vals := []string{s.Name, s.Kind, s.Class}
		for i := 0; i+1 < len(m.Labels); i += 2 {
			names = append(names, m.Labels[i])
			vals = append(vals, m.Labels[i+1])
		}
		vt := prometheus.GaugeValue
		if m.Kind == engine.MetricCounter {
			vt = prometheus.CounterValue
		}
		help := m.Help
		if help == "" {
			help = "Reported by the plugin."
		}
		d := prometheus.NewDesc(m.Name, help, names, nil)
		mt, err := prometheus.NewConstMetric(d, vt, m.Value, vals...)
		if err != nil {
			mt = prometheus.NewInvalidMetric(d, err)
		}
		ch <- mt
	}
}
