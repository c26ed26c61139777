package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

// meteredOutput discards packets and reports two series of its own, as a
// Kafka mirror reports its lag per partition.
type meteredOutput struct{}

func (meteredOutput) Write(context.Context, []*pack.Packet) error { return nil }

func (meteredOutput) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	emit("dbus_kafka_mirror_lag_records", "lag", engine.MetricGauge, 42, "topic", "orders", "partition", "1")
	emit("dbus_kafka_mirror_latency_records_total", "count", engine.MetricCounter, 7)
}

// TestAPIDbcMetrics: dbc metrics lists the plugins' own series with their
// labels, all or one plugin's, and names an unknown plugin.
func TestAPIDbcMetrics(t *testing.T) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	reg.MustRegister(engine.Spec{Class: "Metered", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return meteredOutput{}, nil }})
	path := filepath.Join(t.TempDir(), "dbus.yaml")
	conf := `
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 1000}
outputs:
  - {name: mirror, class: Metered, match: gen}
admin: {token: tok}
`
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.LoadFile(path, reg)
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
	srv, err := admin.Start(ctx, admin.Options{Supervisor: sup, Registry: reg, ConfigPath: path, Logger: log,
		Version: "v-dbc", Section: cfg.Sections["admin"], ListenOverride: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Close()
		cancel()
		<-done
	}()
	n := &node{sup: sup, addr: srv.Addr(), path: path}
	code, out, errOut := n.dbc(t, "", "metrics")
	if code != 0 {
		t.Fatalf("metrics = %d: %s", code, errOut)
	}
	for _, want := range []string{"PLUGIN", "kafka_mirror_lag_records", "topic=orders,partition=1", "42", "kafka_mirror_latency_records_total", "7"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dbc metrics output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ = n.dbc(t, "", "metrics", "gen"); code != 0 || strings.Contains(out, "kafka_mirror") {
		t.Fatalf("metrics gen = %d, want no mirror series:\n%s", code, out)
	}
	if code, _, errOut = n.dbc(t, "", "metrics", "nope"); code == 0 || !strings.Contains(errOut, `no plugin "nope"`) {
		t.Fatalf("metrics nope = %d, stderr %q", code, errOut)
	}
}
