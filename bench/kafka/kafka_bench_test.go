package kafkabench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/kafka"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

const valueSize = 128

func registry() *engine.Registry {
	reg := engine.NewRegistry()
	kafka.Register(reg)
	mock.Register(reg)
	return reg
}

func runEngine(b *testing.B, yaml string) (stop func()) {
	reg := registry()
	cfg, err := engine.Parse("bench.yaml", []byte(yaml), reg)
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
	return func() { cancel(); <-done }
}

func preload(b *testing.B, c *kfaketest.Cluster, topic string, n int) {
	cl := kfaketest.Client(b, c.Seeds, kgo.ProducerLinger(0))
	val := make([]byte, valueSize)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%1000), Value: val})
		if len(recs) == 10000 || i == n-1 {
			kfaketest.Produce(b, cl, recs...)
			recs = recs[:0]
		}
	}
}

func waitTotal(b *testing.B, seeds []string, topic string, n int64, timeout time.Duration) {
	adm := kadm.NewClient(kfaketest.Client(b, seeds))
	deadline := time.Now().Add(timeout)
	for {
		var s int64
		if lo, err := adm.ListEndOffsets(context.Background(), topic); err == nil {
			lo.Each(func(o kadm.ListedOffset) { s += o.Offset })
		}
		if s >= n {
			adm.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s holds %d of %d records after %v", topic, s, n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Producer settings shared by the bare loop and the dbus mirror
// (KafkaOutput profile throughput: linger 5ms, 8192 buffered records,
// 1 MiB batches; compression none; acks=all, idempotent).
const (
	mirrorLinger     = 5 * time.Millisecond
	mirrorBuffered   = 8192
	mirrorBatchBytes = 1 << 20
	mirrorPoll       = 4096
)

// bareMirror is the baseline: one franz-go client consuming topic from
// src and producing every record to out on dst (same partition), as fast
// as it can, with the producer settings KafkaOutput uses. acked counts
// the records dst confirmed.
func bareMirror(b *testing.B, src, dst *kfaketest.Cluster, topic, out string, n int, acked *atomic.Int64) {
	cons := kfaketest.Client(b, src.Seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16<<20))
	prod := kfaketest.Client(b, dst.Seeds, kgo.ProducerLinger(mirrorLinger), kgo.MaxBufferedRecords(mirrorBuffered),
		kgo.ProducerBatchMaxBytes(mirrorBatchBytes), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var failed atomic.Int64
	got := 0
	ctx := context.Background()
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
		acked.Add(1)
	}
	for got < n {
		f := cons.PollRecords(ctx, mirrorPoll)
		f.EachRecord(func(r *kgo.Record) {
			got++
			prod.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp, Partition: r.Partition}, promise)
		})
	}
	if err := prod.Flush(ctx); err != nil || failed.Load() > 0 {
		b.Fatalf("bare mirror: %v, %d failed", err, failed.Load())
	}
	cons.Close()
	prod.Close()
}

// mirrorYAML is the dbus side: KafkaInput on the source partitions (no
// group, like the bare loop) -> KafkaOutput, profile throughput, 16
// batches in flight (etc/mirror.yaml), the engine and plugin defaults
// otherwise. DBUS_BENCH_INPUT / DBUS_BENCH_OUTPUT append fields to the
// input / output (", pool: 65536"), to compare settings.
const mirrorYAML = `
engine: {checkpoint_interval: 200ms}
inputs:
  - {name: a, class: KafkaInput, brokers: %s, topics: [src]%s}
outputs:
  - {name: b, class: KafkaOutput, match: [a], brokers: %s, topic: %s, partitioner: attr, profile: throughput, in_flight: 16%s}
`

// span watches an acked-records counter and returns the time from the
// first acked record to the n-th (the steady-state span of a run, without
// client start, metadata and the consumer's first fetch), the time from
// the call, and the process CPU time used during the span.
func span(b *testing.B, count func() int64, n int64, timeout time.Duration) (steady, all, cpu time.Duration) {
	t0 := time.Now()
	var first time.Time
	var cpu0 time.Duration
	deadline := t0.Add(timeout)
	for {
		c := count()
		now := time.Now()
		if c > 0 && first.IsZero() {
			first, cpu0 = now, cpuTime()
		}
		if c >= n {
			return now.Sub(first), now.Sub(t0), cpuTime() - cpu0
		}
		if now.After(deadline) {
			b.Fatalf("%d of %d records acked after %v", c, n, timeout)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKafkaMirror mirrors n preloaded 128-byte records from cluster
// A to cluster B, with the bare franz-go loop and with dbus, on the same
// clusters and records with the same producer settings, alternating
// which goes first; each op runs both once. Rates are over the
// steady-state span (first record acked by B to the last) and the ratio
// is dbus/bare of the summed spans; the per-op ratios, CPU use and
// request counts are logged. A warm-up op (not counted) runs first. The
// two paths run under pprof labels: with -cpuprofile, compare them with
// `go tool pprof -tags` and `-tagfocus path=dbus` (or path=bare).
func BenchmarkKafkaMirror(b *testing.B) {
	const n = 1000000
	a := kfaketest.Start(b, 1, 4, []string{"src"})
	dst := kfaketest.Start(b, 1, 4, nil)
	preload(b, a, "src", n)
	adm := kadm.NewClient(kfaketest.Client(b, dst.Seeds))
	// Count the produce and fetch requests the clusters see: the
	// shape of the traffic (fewer, larger requests) matters as much as
	// the clients' CPU, as each kfake cluster serves requests serially.
	var produceReqs, fetchReqs atomic.Int64
	dst.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		dst.KeepControl()
		produceReqs.Add(1)
		return nil, nil, false
	})
	a.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		a.KeepControl()
		fetchReqs.Add(1)
		return nil, nil, false
	})

	// The engine builds the output; keep it to read its acked counter.
	reg2, out := capturingRegistry(nil, "KafkaInput")

	runBare := func(topic string) (time.Duration, time.Duration, time.Duration) {
		var acked atomic.Int64
		done := make(chan struct{})
		go pprof.Do(context.Background(), pprof.Labels("path", "bare"), func(context.Context) {
			defer close(done)
			bareMirror(b, a, dst, "src", topic, n, &acked)
		})
		s, t, c := span(b, acked.Load, n, 120*time.Second)
		<-done
		return s, t, c
	}
	runDbus := func(topic string) (time.Duration, time.Duration, time.Duration) {
		out.Store(nil)
		y := fmt.Sprintf(mirrorYAML, a.SeedList(), os.Getenv("DBUS_BENCH_INPUT"), dst.SeedList(), topic, os.Getenv("DBUS_BENCH_OUTPUT"))
		cfg, err := engine.Parse("bench.yaml", []byte(y), reg2)
		if err != nil {
			b.Fatal(err)
		}
		e, err := engine.New(cfg, engine.Options{Registry: reg2, Store: engine.NewMemoryStore()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go pprof.Do(ctx, pprof.Labels("path", "dbus"), func(ctx context.Context) { done <- e.Run(ctx) })
		s, t, c := span(b, func() int64 {
			if o := out.Load(); o != nil {
				return int64(o.Stats().Produced)
			}
			return 0
		}, n, 120*time.Second)
		cancel()
		<-done
		return s, t, c
	}
	drop := func(topics ...string) {
		ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		adm.DeleteTopics(ctx, topics...)
		runtime.GC()
	}

	runtime.GC()
	runBare("warm_bare")
	runDbus("warm_dbus")
	drop("warm_bare", "warm_dbus")

	var bare, dbus, bareAll, dbusAll, bareCPU, dbusCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt, dt := fmt.Sprintf("bare%d", i), fmt.Sprintf("dbus%d", i)
		var bs, ba, bc, ds, da, dc time.Duration
		var bp, bf, dp, df int64
		reqs := func(p, f *int64) {
			*p, *f = produceReqs.Swap(0), fetchReqs.Swap(0)
		}
		if i%2 == 0 {
			reqs(new(int64), new(int64))
			bs, ba, bc = runBare(bt)
			reqs(&bp, &bf)
			ds, da, dc = runDbus(dt)
			reqs(&dp, &df)
		} else {
			reqs(new(int64), new(int64))
			ds, da, dc = runDbus(dt)
			reqs(&dp, &df)
			bs, ba, bc = runBare(bt)
			reqs(&bp, &bf)
		}
		bare += bs
		dbus += ds
		bareAll += ba
		dbusAll += da
		bareCPU += bc
		dbusCPU += dc
		b.Logf("op %d: bare %.2fM rec/s (%v, %v with start, %.0f%% CPU, %d produce/%d fetch requests), dbus %.2fM rec/s (%v, %v with start, %.0f%% CPU, %d/%d requests): ratio %.3f",
			i, float64(n)/bs.Seconds()/1e6, bs.Round(time.Millisecond), ba.Round(time.Millisecond), 100*bc.Seconds()/bs.Seconds(), bp, bf,
			float64(n)/ds.Seconds()/1e6, ds.Round(time.Millisecond), da.Round(time.Millisecond), 100*dc.Seconds()/ds.Seconds(), dp, df, bs.Seconds()/ds.Seconds())
		b.StopTimer()
		drop(bt, dt)
		b.StartTimer()
	}
	b.StopTimer()
	bareRate := float64(n*b.N) / bare.Seconds()
	dbusRate := float64(n*b.N) / dbus.Seconds()
	b.ReportMetric(bareRate, "bare_rec/s")
	b.ReportMetric(dbusRate, "dbus_rec/s")
	b.ReportMetric(dbusRate/bareRate, "ratio")
	b.ReportMetric(bareAll.Seconds()/dbusAll.Seconds(), "ratio_with_start")
	// Process CPU (both clusters, clients, dbus) per record on each path.
	b.ReportMetric(float64(bareCPU.Nanoseconds())/float64(n*b.N), "bare_cpu_ns/rec")
	b.ReportMetric(float64(dbusCPU.Nanoseconds())/float64(n*b.N), "dbus_cpu_ns/rec")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkKafkaOutput runs MockInput -> KafkaOutput for n records per op
// and reports records/s and the whole process's allocations per record
// (dbus + franz-go + the in-process kfake broker).
func BenchmarkKafkaOutput(b *testing.B) {
	const n = 200000
	c := kfaketest.Start(b, 1, 4, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		out := fmt.Sprintf("out%d", i)
		stop := runEngine(b, fmt.Sprintf(`
engine: {batch: 1024, pool: 16384}
inputs:
  - {name: m, class: MockInput, count: %d, keys: 1000, payload: %d}
outputs:
  - {name: k, class: KafkaOutput, match: [m], brokers: %s, topic: %s, profile: throughput, linger: 5ms, in_flight: 8}
`, n, valueSize, c.SeedList(), out))
		waitTotal(b, c.Seeds, out, n, 120*time.Second)
		stop()
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "rec/s")
	b.ReportMetric(0, "ns/op")
}

type nopCompletion struct{}

func (nopCompletion) Done(error) {}

// BenchmarkKafkaOutputEncode measures dbus's own per-record path (build
// the record: topic template, headers, key, timestamp; partition) in dry
// run: allocs/op must be 0.
func BenchmarkKafkaOutputEncode(b *testing.B) {
	reg := registry()
	c, err := engine.NewConf(reg, "out", "KafkaOutput", map[string]any{
		"brokers": []string{"127.0.0.1:1"}, "check_seeds": false, "dryrun_partitions": 12, "topic": "{db}.{table}", "origin_id": "dcA"})
	if err != nil {
		b.Fatal(err)
	}
	o, err := kafka.NewOutput(c)
	if err != nil {
		b.Fatal(err)
	}
	o.SetDryRun(true)
	batch := make([]*pack.Packet, 256)
	for i := range batch {
		p := &pack.Packet{Payload: make([]byte, valueSize), Key: fmt.Appendf(nil, "k%d", i), Ts: time.Now().UnixNano()}
		p.Attrs.SetString("db", "shop")
		p.Attrs.SetString("table", "orders")
		p.Attrs.SetString("kafka.header.trace", "x")
		batch[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		o.WriteAsync(context.Background(), batch, nopCompletion{})
	}
}

// BenchmarkKafkaProfileLatency produces timestamped records to A at a
// steady rate, mirrors them to B with each profile, and reports the
// end-to-end p50/p99 (B's consume time minus the record's timestamp).
func BenchmarkKafkaProfileLatency(b *testing.B) {
	for _, prof := range []string{"latency", "throughput"} {
		b.Run(prof, func(b *testing.B) {
			a := kfaketest.Start(b, 1, 4, []string{"lat"})
			dst := kfaketest.Start(b, 1, 4, []string{"lat_out"})
			stop := runEngine(b, fmt.Sprintf(`
engine: {checkpoint_interval: 200ms}
inputs:
  - {name: a, class: KafkaInput, brokers: %s, topics: [lat], group: lat}
outputs:
  - {name: b, class: KafkaOutput, match: [a], brokers: %s, topic: lat_out, partitioner: attr, profile: %s}
`, a.SeedList(), dst.SeedList(), prof))
			defer stop()
			cons := kfaketest.Client(b, dst.Seeds, kgo.ConsumeTopics("lat_out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			prod := kfaketest.Client(b, a.Seeds, kgo.ProducerLinger(0))
			const rate, secs = 2000, 2
			n := rate * secs
			go func() {
				t0 := time.Now()
				for i := 0; i < n; i++ {
					if d := time.Until(t0.Add(time.Duration(i) * time.Second / rate)); d > 0 {
						time.Sleep(d)
					}
					prod.Produce(context.Background(), &kgo.Record{Topic: "lat", Value: make([]byte, valueSize), Timestamp: time.Now()}, nil)
				}
			}()
			var lats []time.Duration
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			b.ResetTimer()
			for len(lats) < n && ctx.Err() == nil {
				f := cons.PollFetches(ctx)
				now := time.Now()
				f.EachRecord(func(r *kgo.Record) { lats = append(lats, now.Sub(r.Timestamp)) })
			}
			b.StopTimer()
			if len(lats) < n {
				b.Fatalf("got %d of %d records", len(lats), n)
			}
			sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
			b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// capturingRegistry returns a registry with KafkaOutput, whose instances
// it stores in the returned pointer (benchmarks read its acked counter),
// and the input classes named, taken from the Kafka plugins and from what
// register (nil: nothing else) adds.
func capturingRegistry(register func(*engine.Registry), inputs ...string) (*engine.Registry, *atomic.Pointer[kafka.Output]) {
	reg := engine.NewRegistry()
	kafka.Register(reg)
	if register != nil {
		register(reg)
	}
	spec, _ := reg.Lookup("KafkaOutput")
	out := new(atomic.Pointer[kafka.Output])
	wrapped := *spec
	wrapped.NewOutput = func(c *engine.Conf) (engine.Output, error) {
		o, err := kafka.NewOutput(c)
		if err == nil {
			out.Store(o)
		}
		return o, err
	}
	reg2 := engine.NewRegistry()
	reg2.MustRegister(wrapped)
	for _, in := range inputs {
		ispec, _ := reg.Lookup(in)
		reg2.MustRegister(*ispec)
	}
	return reg2, out
}

// runMockToKafka runs MockInput (n packets of valueSize bytes, 1000 keys)
// -> KafkaOutput (throughput profile, in_flight 16, plus extra keys such as
// tls:) to topic at seeds, and returns the steady-state duration and CPU.
// reg and out come from capturingRegistry(mock.Register, "MockInput").
func runMockToKafka(b *testing.B, reg *engine.Registry, out *atomic.Pointer[kafka.Output], n int64, seeds, topic, extra string) (steady, cpu time.Duration) {
	b.Helper()
	out.Store(nil)
	y := fmt.Sprintf(`
engine: {batch: 1024, pool: 16384}
inputs:
  - {name: m, class: MockInput, count: %d, keys: 1000, payload: %d}
outputs:
  - {name: k, class: KafkaOutput, match: [m], brokers: %s, topic: %s, profile: throughput, in_flight: 16%s}
`, n, valueSize, seeds, topic, extra)
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
	s, _, c := span(b, func() int64 {
		if o := out.Load(); o != nil {
			return int64(o.Stats().Produced)
		}
		return 0
	}, n, 120*time.Second)
	cancel()
	<-done
	runtime.GC()
	return s, c
}
