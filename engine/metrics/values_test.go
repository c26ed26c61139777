package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/metrics"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
	dto "github.com/prometheus/client_model/go"
)

// laggingInput emits a few packets, then waits; it reports lag the way
// KafkaInput does (RecordLagReporter, LagReporter, MetricsReporter).
type laggingInput struct{}

func (laggingInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	for i := 0; i < 10; i++ {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = append(p.Payload[:0], "x"...)
		p.Pos.Offset = int64(i + 1)
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
	}
	ic.Flush(ctx)
	<-ctx.Done()
	return nil
}
func (laggingInput) LagRecords() int64  { return 42 }
func (laggingInput) Lag() time.Duration { return 3 * time.Second }
func (laggingInput) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	emit("dbus_test_partition_lag_records", "test", engine.MetricGauge, 42, "topic", "t", "partition", "0")
}

// panicOnce panics in its first Write (a plugin panic and a restart).
type panicOnce struct{ n *atomic.Int32 }

func (o panicOnce) Write(ctx context.Context, batch []*pack.Packet) error {
	if o.n.Add(1) == 1 {
		panic("test panic")
	}
	return nil
}

// TestMetricsEtcNamesAreNonZero: every metric named in
// etc/prometheus-alerts.yaml and etc/grafana-dashboard.json takes a
// non-zero value in a pipeline that exercises it (lag, dead letters,
// retries, held packets, panics, pool waits, ring depth, cluster): a
// counter the README promises but nobody can see fails here. Before,
// dbus_input_lag_records had no writer in any shipped plugin, and plugins
// had no way to publish their own metrics (dbus_test_partition_lag_records
// comes through engine.MetricsReporter).
func TestMetricsEtcNamesAreNonZero(t *testing.T) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	var panics atomic.Int32
	reg.MustRegister(engine.Spec{Class: "Lagging", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return laggingInput{}, nil }})
	reg.MustRegister(engine.Spec{Class: "PanicOnce", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return panicOnce{&panics}, nil }})
	dlq := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Dlq", dlq); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.Parse("m.yaml", []byte(`
engine: {checkpoint_interval: 10ms, fuse_outputs: false, restart_backoff: 1ms, batch: 16, shutdown_timeout: 1s}
inputs:
  - {name: gen, class: MockInput, payload: 64, rate: 20000, pool: 64}
  - {name: lagging, class: Lagging}
  - {name: stuck, class: MockInput, payload: 16, rate: 1000}
filters:
  - {name: f, class: MockFilter, drop_ratio: 0.1, match: gen}
outputs:
  - {name: out, class: MockOutput, latency: 2ms, fail_ratio: 0.05, fail_permanent: true, retries: 1, retry_backoff: 1ms, dead_letter: dlq, match: f}
  - {name: dlq, class: Dlq}
  - {name: pan, class: PanicOnce, match: lagging}
  - {name: held, class: MockOutput, fail_first: 1000000000, retries: 0, retry_backoff: 1ms, retry_backoff_max: 5ms, match: stuck}
`), reg)
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
	defer func() {
		cancel()
		// The held output never delivers: the stop is a hard one.
		if err := <-done; err != nil && !strings.Contains(err.Error(), "stopped hard") {
			t.Errorf("supervisor: %v", err)
		}
	}()
	c := metrics.NewCollector(sup, metrics.Options{Cluster: func() metrics.ClusterStats {
		return metrics.ClusterStats{Members: 3, MemberLosses: 1, Leader: true, ResourcesOwned: 2, ResourcesPending: 1}
	}})

	used := etcMetricNames(t)
	used["dbus_test_partition_lag_records"] = true
	nonZero := map[string]bool{}
	missing := func() []string {
		var m []string
		for n := range used {
			if !nonZero[n] {
				m = append(m, n)
			}
		}
		sort.Strings(m)
		return m
	}
	var left []string
	ok := testenv.WaitFor(20*time.Second, func() bool {
		for name, mf := range gather(t, c) {
			for _, m := range mf.GetMetric() {
				if metricNonZero(m) {
					nonZero[name] = true
					switch mf.GetType() {
					case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
						for _, suf := range []string{"_sum", "_count", "_bucket"} {
							nonZero[name+suf] = true
						}
					}
				}
			}
		}
		left = missing()
		return len(left) == 0
	})
	if !ok {
		t.Fatalf("metrics named in etc/ still zero: %v", left)
	}
}

func metricNonZero(m *dto.Metric) bool {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue() != 0
	case m.Gauge != nil:
		return m.Gauge.GetValue() != 0
	case m.Histogram != nil:
		return m.Histogram.GetSampleCount() != 0
	case m.Summary != nil:
		return m.Summary.GetSampleCount() != 0
	}
	return false
}

// etcMetricNames returns the dbus_ metric names the shipped alert rules
// and dashboard use.
func etcMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range []string{"../../etc/prometheus-alerts.yaml", "../../etc/grafana-dashboard.json"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range metricRef.FindAllString(string(raw), -1) {
			if strings.HasPrefix(n, "dbus_") {
				out[n] = true
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d metric names found in etc/", len(out))
	}
	return out
}
