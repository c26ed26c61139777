package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// Config renders shape as a dbus config of MockInput -> MockFilter ->
// MockOutput (acking on receipt).
func Config(shape Shape, payload int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "engine: {batch: 256, ring: 4096, pool: 16384, checkpoint_interval: 1s, fuse_outputs: %v}\ninputs:\n", !shape.Ring)
	for i := 0; i < shape.Inputs; i++ {
		fmt.Fprintf(&b, "  - {name: in%d, class: MockInput, payload: %d}\n", i, payload)
	}
	up := "in*"
	if shape.Filter {
		b.WriteString("filters:\n")
		for i := 0; i < shape.Inputs; i++ {
			fmt.Fprintf(&b, "  - {name: f%d, class: MockFilter, match: in%d}\n", i, i)
		}
		up = "f*"
	}
	b.WriteString("outputs:\n")
	for o := 0; o < shape.Outputs; o++ {
		fmt.Fprintf(&b, "  - {name: out%d, class: MockOutput, match: %q}\n", o, up)
	}
	return b.String()
}

// Result is one measured dbus run.
type Result struct {
	Packets         uint64
	Seconds         float64
	PacketsPerSec   float64
	AllocsPerPacket float64
	// CPUNanosPerPacket is process CPU time (user+system, every
	// goroutine) per packet: steadier than the rate on a shared machine.
	CPUNanosPerPacket float64
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RunDBus runs the config for warmup+d and measures the packets acked by
// the first output during d, and allocations per packet over the same
// window. extra, if set, runs alongside (e.g. a metrics scraper).
func RunDBus(conf string, reg *engine.Registry, warmup, d time.Duration, extra func(ctx context.Context, sup *engine.Supervisor)) (Result, error) {
	cfg, err := engine.Parse("bench.yaml", []byte(conf), reg)
	if err != nil {
		return Result{}, err
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	if extra != nil {
		go extra(ctx, sup)
	}
	count := func() uint64 {
		for _, s := range sup.Stats() {
			if s.Name == "out0" {
				return s.Out
			}
		}
		return 0
	}
	time.Sleep(warmup)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	n0, t0, c0 := count(), time.Now(), cpuNow()
	time.Sleep(d)
	n1, t1, c1 := count(), time.Now(), cpuNow()
	runtime.ReadMemStats(&ms1)
	cancel()
	if err := <-done; err != nil {
		return Result{}, err
	}
	r := Result{Packets: n1 - n0, Seconds: t1.Sub(t0).Seconds()}
	r.PacketsPerSec = float64(r.Packets) / r.Seconds
	if r.Packets > 0 {
		r.AllocsPerPacket = float64(ms1.Mallocs-ms0.Mallocs) / float64(r.Packets)
		r.CPUNanosPerPacket = float64(c1-c0) / float64(r.Packets)
	}
	return r, nil
}
