package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/dbus-project/dbus/bench"
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/metrics"
)

func init() { metricsOverhead = measureMetricsOverhead }

// measureMetricsOverhead runs the headline scenario alternately without
// and with a Prometheus registry scraped every 100 ms (a busy Prometheus
// scrapes every 15 s), three times each, and reports the medians.
func measureMetricsOverhead(w io.Writer, conf string, reg *engine.Registry, warm, d time.Duration) error {
	scrape := func(ctx context.Context, sup *engine.Supervisor) {
		pr := metrics.NewRegistry(metrics.NewCollector(sup, metrics.Options{}))
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := pr.Gather(); err != nil {
					return
				}
			}
		}
	}
	var off, on []float64
	for i := 0; i < 3; i++ {
		r, err := bench.RunDBus(conf, reg, warm, d, nil)
		if err != nil {
			return err
		}
		off = append(off, r.PacketsPerSec)
		r, err = bench.RunDBus(conf, reg, warm, d, scrape)
		if err != nil {
			return err
		}
		on = append(on, r.PacketsPerSec)
	}
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	mOff, mOn := med(off), med(on)
	fmt.Fprintln(w, "## Metrics overhead (input -> filter -> output, 128 B; scraped every 100 ms vs not scraped; medians of 3 alternating runs)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| metrics | packets/s | ratio |")
	fmt.Fprintln(w, "|---|---|---|")
	fmt.Fprintf(w, "| off | %s | 1.00 |\n| on (scraped) | %s | %.2f |\n\n", human(mOff), human(mOn), mOn/mOff)
	return nil
}
