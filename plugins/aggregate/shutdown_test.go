package aggregate

import (
	"context"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

// sliceInput emits one packet per setter, then finishes (a replay).
type sliceInput = enginetest.SliceInput

func TestAggregateShutdownEmitsPendingSummary(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	rec := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	var set []func(p *pack.Packet)
	for i := 0; i < 10; i++ {
		set = append(set, func(p *pack.Packet) {
			p.Ts = int64(i) * int64(time.Second) // all in minute 0: never closed by the watermark
			p.Attrs.SetString("status", "200")
			p.Attrs.SetFloat("ms", float64(i))
		})
	}
	reg.MustRegister(engine.Spec{Class: "Slice", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return &sliceInput{Set: set}, nil }})
	cfg, err := engine.Parse("test.yaml", []byte(`
inputs:
  - {name: in, class: Slice}
filters:
  - {name: agg, class: Aggregate, match: [in], group_by: [status], field: ms, interval: 1m, lateness: 10s, tick: 1h}
outputs:
  - {name: out, class: Rec, match: [agg]}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	store := engine.NewMemoryStore()
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	attrs := rec.Attrs()
	if len(attrs) != 1 || attrs[0]["type"] != "aggregate" || attrs[0]["status"] != "200" || attrs[0]["count"] != "10" || attrs[0]["max"] != "9" {
		t.Fatalf("at shutdown recorded %v, want one summary of 10 events", attrs)
	}
}
