package funnel

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

// A replay through the engine: raw packets are consumed (the checkpoint
// reaches the last one), the summaries come out at shutdown, and the
// engine answers queries for the filter.
func TestFunnelReplayThroughEngine(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	rec := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	steps := []string{"view", "cart", "buy"}
	var set []func(p *pack.Packet)
	// 300 users; user u reaches step u%3 (0-based), platform by parity.
	for m := 0; m < 3; m++ {
		for u := 0; u < 300; u++ {
			if m > u%3 {
				continue
			}
			set = append(set, func(p *pack.Packet) {
				p.Attrs.SetString("at", base.Add(time.Duration(m)*time.Minute+time.Duration(u)*time.Millisecond).Format(time.RFC3339Nano))
				p.Attrs.SetInt("uid", int64(u))
				p.Attrs.SetString("action", steps[m])
				p.Attrs.SetString("platform", []string{"ios", "web"}[u%2])
			})
		}
	}
	total := len(set)
	reg.MustRegister(engine.Spec{Class: "Slice", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return &sliceInput{Set: set}, nil }})
	cfg, err := engine.Parse("test.yaml", []byte(`
inputs:
  - {name: in, class: Slice}
filters:
  - {name: checkout, class: Funnel, match: [in], user: uid, step_field: action, steps: [view, cart, buy],
     within: 30m, dimensions: [platform], time_field: at, tick: 1h}
outputs:
  - {name: out, class: Rec, match: [checkout]}
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
	if len(attrs) != 3 {
		t.Fatalf("recorded %v, want total, ios, web", attrs)
	}
	if a := attrs[0]; a["type"] != "funnel" || a["entered"] != "300" || a["step_2"] != "200" || a["completed"] != "100" || a["partial"] != "true" || a["dimension"] != "" {
		t.Fatalf("total summary %v", a)
	}
	if a := attrs[1]; a["dimension"] != "platform" || a["value"] != "ios" || a["entered"] != "150" || a["completed"] != "50" {
		t.Fatalf("ios summary %v", a)
	}
	v, err := e.Query("checkout", map[string]string{"dimension": "platform", "value": "web"})
	if err != nil {
		t.Fatal(err)
	}
	if iv := v.(*Report).Intervals; len(iv) != 1 || iv[0].Dimensions["platform"]["web"].Steps[1].Count != 100 {
		t.Fatalf("query %+v", iv)
	}
	if _, err := e.Query("out", nil); err == nil {
		t.Fatal("output answered a query")
	}
	cp, ok, err := store.Load("in")
	if err != nil || !ok || cp.Offset != int64(total) {
		t.Fatalf("checkpoint %+v %v %v, want offset %d", cp, ok, err, total)
	}
}
