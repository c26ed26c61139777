package window

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

// The last window's alert and summary exist only once the engine calls
// FlushFilter at shutdown (the watermark never passed the window's end).
func TestWindowAlarmShutdownEmitsPendingAlert(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	rec := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	var set []func(p *pack.Packet)
	for i := 0; i <= 10; i++ {
		set = append(set, func(p *pack.Packet) {
			p.Ts = int64(i) * int64(6*time.Second) // 0s..60s: the newest event ends minute 0
			p.Attrs.SetString("host", "a")
		})
	}
	reg.MustRegister(engine.Spec{Class: "Slice", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return &sliceInput{Set: set}, nil }})
	cfg, err := engine.Parse("test.yaml", []byte(`
inputs:
  - {name: in, class: Slice}
filters:
  - name: alarm
    class: WindowAlarm
    match: [in]
    group_by: [host]
    length: 1m
    slide: 1m
    lateness: 30s
    tick: 1h
    emit_windows: true
    sinks: {log: false}
    rules: [{name: busy, metric: count, op: ">", threshold: 5}]
outputs:
  - {name: out, class: Rec, match: [alarm]}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	attrs := rec.Attrs()
	if len(attrs) != 2 || attrs[0]["type"] != "alert" || attrs[0]["rule"] != "busy" || attrs[0]["value"] != "10" ||
		attrs[1]["type"] != "window" || attrs[1]["count"] != "10" {
		t.Fatalf("at shutdown recorded %v, want the busy alert and the window summary", attrs)
	}
}
