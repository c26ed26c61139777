package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/metrics"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

const pipeline = `
engine: {checkpoint_interval: 10ms, fuse_outputs: false}
inputs:
  - {name: gen, class: MockInput, payload: 64, rate: 20000}
filters:
  - {name: f, class: MockFilter, drop_ratio: 0.1, match: gen}
outputs:
  - {name: out, class: MockOutput, match: f}
`

func startSupervisor(t *testing.T, y string) *engine.Supervisor {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	cfg, err := engine.Parse("m.yaml", []byte(y), reg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})
	return sup
}

// gather returns family name -> family.
func gather(t *testing.T, c *metrics.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := metrics.NewRegistry(c).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the series of family name whose plugin label
// is plugin (and extra label k=v pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, plugin string, kv ...string) float64 {
	t.Helper()
	mf, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if plugin != "" && labels["plugin"] != plugin {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount())
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s{plugin=%q %v}", name, plugin, kv)
	return 0
}

func TestMetricsNamesAndMovementWithRunningPipeline(t *testing.T) {
	sup := startSupervisor(t, pipeline)
	c := metrics.NewCollector(sup, metrics.Options{Version: "v-test"})
	// Wait until packets flowed and a checkpoint was committed.
	var first map[string]*dto.MetricFamily
	testenv.Eventually(t, 10*time.Second, func() bool {
		first = gather(t, c)
		_, ok := first["dbus_checkpoint_offset"]
		return ok && value(t, first, "dbus_checkpoint_offset", "gen") > 0
	}, "no checkpoint committed")
	for _, n := range metrics.Names() {
		if _, ok := first[n]; !ok {
			t.Errorf("metric %s missing from the output", n)
		}
	}
	for _, n := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := first[n]; !ok {
			t.Errorf("runtime/process metric %s missing", n)
		}
	}
	if v := value(t, first, "dbus_build_info", "", "version", "v-test"); v != 1 {
		t.Fatalf("build info %v", v)
	}
	if v := value(t, first, "dbus_config_generation", ""); v != 1 {
		t.Fatalf("generation %v", v)
	}
	series := []struct{ name, plugin string }{
		{"dbus_plugin_packets_out_total", "gen"},
		{"dbus_plugin_packets_in_total", "f"},
		{"dbus_plugin_packets_out_total", "out"},
		{"dbus_output_bytes_total", "out"},
		{"dbus_output_write_duration_seconds", "out"},
		{"dbus_output_ack_latency_seconds", "out"},
		{"dbus_output_batch_size_packets", "out"},
		{"dbus_checkpoint_offset", "gen"},
	}
	// Scrape again until every series moved (or the wait ends; then the
	// loop below names those that did not).
	var second map[string]*dto.MetricFamily
	testenv.WaitFor(10*time.Second, func() bool {
		second = gather(t, c)
		for _, s := range series {
			if value(t, second, s.name, s.plugin) <= value(t, first, s.name, s.plugin) {
				return false
			}
		}
		return true
	})
	for _, s := range series {
		a, b := value(t, first, s.name, s.plugin), value(t, second, s.name, s.plugin)
		if b <= a {
			t.Errorf("%s{plugin=%s} did not move: %v -> %v", s.name, s.plugin, a, b)
		}
	}
	if d := second["dbus_plugin_packets_dropped_total"]; d == nil || len(d.GetMetric()) == 0 || d.GetMetric()[0].GetCounter().GetValue() == 0 {
		t.Errorf("drops not reported: %v", d)
	}
	if age := value(t, second, "dbus_checkpoint_age_seconds", "gen"); age < 0 || age > 5 {
		t.Errorf("checkpoint age %v", age)
	}
	if v := value(t, second, "dbus_input_pool_capacity_packets", "gen"); v <= 0 {
		t.Errorf("pool capacity %v", v)
	}
	if v := value(t, second, "dbus_ring_capacity_packets", "out"); v <= 0 {
		t.Errorf("ring capacity %v", v)
	}
	// Pause shows.
	if err := sup.Pause("gen"); err != nil {
		t.Fatal(err)
	}
	if v := value(t, gather(t, c), "dbus_input_paused", "gen"); v != 1 {
		t.Errorf("paused gauge %v", v)
	}
}

func TestMetricsExpositionFollowsConventions(t *testing.T) {
	sup := startSupervisor(t, pipeline)
	c := metrics.NewCollector(sup, metrics.Options{})
	time.Sleep(50 * time.Millisecond)
	// Conventions: dbus_ prefix, counters end in _total and only they do,
	// durations in _seconds, help text everywhere.
	for name, mf := range gather(t, c) {
		if !strings.HasPrefix(name, "dbus_") {
			continue
		}
		isCounter := mf.GetType() == dto.MetricType_COUNTER
		if isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: type %s and _total suffix disagree", name, mf.GetType())
		}
		if strings.Contains(name, "_nanos") || strings.Contains(name, "_millis") {
			t.Errorf("%s: not in base units", name)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help", name)
		}
	}
	// And the HTTP handler serves the text format.
	srv := httptest.NewServer(metrics.Handler(metrics.NewRegistry(c)))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `dbus_plugin_packets_out_total{class="MockInput",kind="input",plugin="gen"}`) {
		t.Fatalf("text exposition lacks the input counter:\n%.2000s", body)
	}
}

// countingSource counts Stats calls.
type countingSource struct{ calls atomic.Int64 }

func (s *countingSource) Stats() []engine.NodeSnapshot {
	s.calls.Add(1)
	return []engine.NodeSnapshot{{Name: "x", Kind: "input", Class: "C", In: 1}}
}
func (s *countingSource) Generation() int64     { return 3 }
func (s *countingSource) Uptime() time.Duration { return time.Second }

func TestMetricsCollectorIdleUntilScraped(t *testing.T) {
	src := &countingSource{}
	c := metrics.NewCollector(src, metrics.Options{Cluster: func() metrics.ClusterStats { return metrics.ClusterStats{Members: 3, Leader: true} }})
	reg := metrics.NewRegistry(c)
	time.Sleep(20 * time.Millisecond)
	if n := src.calls.Load(); n != 0 {
		t.Fatalf("Stats called %d times before any scrape", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("Stats called %d times for one scrape", n)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	if v := value(t, fams, "dbus_cluster_members", ""); v != 3 {
		t.Fatalf("cluster members %v", v)
	}
	// A checkpoint never committed ages from start.
	if v := value(t, fams, "dbus_checkpoint_age_seconds", "x"); v != 1 {
		t.Fatalf("age without a checkpoint %v, want uptime", v)
	}
}

// metricRef matches metric names in PromQL expressions.
var metricRef = regexp.MustCompile(`\b(?:dbus|go|process)_[a-z0-9_]+\b`)

// TestMetricsEtcFilesUseExistingNames checks every metric the Grafana
// dashboard and the alert rules name exists in the collector's output.
func TestMetricsEtcFilesUseExistingNames(t *testing.T) {
	sup := startSupervisor(t, pipeline)
	time.Sleep(50 * time.Millisecond)
	fams := gather(t, metrics.NewCollector(sup, metrics.Options{}))
	exists := func(n string) bool {
		if _, ok := fams[n]; ok {
			return true
		}
		for _, suf := range []string{"_sum", "_count", "_bucket"} {
			if b, ok := strings.CutSuffix(n, suf); ok {
				if mf, ok := fams[b]; ok && (mf.GetType() == dto.MetricType_SUMMARY || mf.GetType() == dto.MetricType_HISTOGRAM) {
					return true
				}
			}
		}
		return false
	}
	var exprs []string
	// Alerts.
	raw, err := os.ReadFile("../../etc/prometheus-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("prometheus-alerts.yaml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert rule %+v lacks a name, expr, severity or summary", r)
			}
			alerts[r.Alert] = true
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"DbusSourceLagHigh", "DbusCheckpointStale", "DbusDeadLetters", "DbusRetriesHigh", "DbusHeldPackets", "DbusClusterMemberLost"} {
		if !alerts[want] {
			t.Errorf("alert %s missing", want)
		}
	}
	// Dashboard.
	raw, err = os.ReadFile("../../etc/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(dash)
	if len(exprs) < 15 {
		t.Fatalf("only %d expressions found", len(exprs))
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricRef.FindAllString(e, -1) {
			used[n] = true
		}
	}
	var missing []string
	for n := range used {
		if !exists(n) {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("etc/ names metrics the collector does not produce: %v", missing)
	}
	t.Logf("%d expressions use %d metric names, all produced", len(exprs), len(used))
}

// manySource is a 30-node pipeline snapshot.
type manySource struct{ nodes []engine.NodeSnapshot }

func (s *manySource) Stats() []engine.NodeSnapshot { return s.nodes }
func (s *manySource) Generation() int64            { return 1 }
func (s *manySource) Uptime() time.Duration        { return time.Minute }

// BenchmarkMetricsScrape measures one scrape of a 30-plugin pipeline's
// dbus_ metrics (the pipeline pays nothing between scrapes).
func BenchmarkMetricsScrape(b *testing.B) {
	src := &manySource{}
	for i := range 30 {
		kind := []string{"input", "filter", "output"}[i%3]
		src.nodes = append(src.nodes, engine.NodeSnapshot{Name: "n" + string(rune('a'+i)), Kind: kind, Class: "C",
			In: uint64(i), Out: uint64(i), Drops: map[string]uint64{"r": 1}, QueueCap: 1024, Batches: 3, CkptUnixNano: 1})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(src, metrics.Options{}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
