package engine_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/mock"
)

// BenchmarkEngineHotPath moves b.N packets input -> fused filter ->
// output through the engine (rings, window, acks, recycling) with the
// stepping input of TestEngineAllocsPerPacketZero; ns/op is per packet.
func BenchmarkEngineHotPath(b *testing.B) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	in := &stepInput{step: make(chan struct{}), per: 4096, data: make([]byte, 128)}
	var count atomic.Int64
	reg.MustRegister(engine.Spec{Class: "Step", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return in, nil }})
	reg.MustRegister(engine.Spec{Class: "Count", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return countOutput{&count}, nil }})
	cfg, err := engine.Parse("b.yaml", []byte(`
engine: {checkpoint_interval: 1h, ring: 4096}
inputs:
  - {name: in, class: Step, pool: 16384}
filters:
  - {name: f, class: MockFilter, match: in}
outputs:
  - {name: out, class: Count, match: f}
`), reg)
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var want int64
	step := func() {
		in.step <- struct{}{}
		want += int64(in.per)
		for count.Load() < want {
			runtime.Gosched()
		}
	}
	step() // warm up
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += in.per {
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	cancel()
	<-done
}
