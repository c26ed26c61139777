package kafkabench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// BenchmarkKafkaExactlyOnce mirrors n preloaded 128-byte records
// from cluster A to cluster B with dbus twice per op, at least once
// (etc/mirror.yaml's settings, as BenchmarkKafkaMirror) and with
// exactly_once: true (defaults: commit_interval 100ms, commit_records
// 50000), alternating which goes first. Rates are over the steady-state
// span (records acked, for exactly_once records committed); ratio is
// exactly-once / at-least-once of the summed spans.
func BenchmarkKafkaExactlyOnce(b *testing.B) {
	const n = 300000
	a := kfaketest.Start(b, 1, 4, []string{"src"})
	dst := kfaketest.Start(b, 1, 4, nil)
	preload(b, a, "src", n)
	adm := kadm.NewClient(kfaketest.Client(b, dst.Seeds))
	reg, out := capturingRegistry(nil, "KafkaInput")
	run := func(topic, extra string) time.Duration {
		out.Store(nil)
		y := fmt.Sprintf(mirrorYAML, a.SeedList(), "", dst.SeedList(), topic, extra)
		cfg, err := engine.Parse("bench.yaml", []byte(y), reg)
		if err != nil {
			b.Fatal(err)
		}
		e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		s, _, _ := span(b, func() int64 {
			if o := out.Load(); o != nil {
				return int64(o.Stats().Produced)
			}
			return 0
		}, n, 120*time.Second)
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("engine: %v", err)
		}
		ctx2, c := context.WithTimeout(context.Background(), 10*time.Second)
		adm.DeleteTopics(ctx2, topic)
		c()
		runtime.GC()
		return s
	}
	const eos = ", exactly_once: true"
	run("warm_alo", "")
	run("warm_eos", eos+", transactional_id: warm, checkpoint_topic: cp_warm")
	var alo, exo time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var as, es time.Duration
		// A transactional id and checkpoint topic per run: each run
		// reads src from the start.
		tid := fmt.Sprintf(", transactional_id: eos%d, checkpoint_topic: cp%d", i, i)
		if i%2 == 0 {
			as = run(fmt.Sprintf("alo%d", i), "")
			es = run(fmt.Sprintf("eos%d", i), eos+tid)
		} else {
			es = run(fmt.Sprintf("eos%d", i), eos+tid)
			as = run(fmt.Sprintf("alo%d", i), "")
		}
		alo += as
		exo += es
		b.Logf("op %d: at-least-once %.2fM rec/s, exactly-once %.2fM rec/s: ratio %.3f",
			i, float64(n)/as.Seconds()/1e6, float64(n)/es.Seconds()/1e6, as.Seconds()/es.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/alo.Seconds(), "alo_rec/s")
	b.ReportMetric(float64(n*b.N)/exo.Seconds(), "eos_rec/s")
	b.ReportMetric(alo.Seconds()/exo.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op")
}
