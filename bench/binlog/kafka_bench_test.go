package binlog

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
)

// viaKafka runs MysqlbinlogInput -> KafkaOutput over the range and
// measures until every row was acknowledged by the broker. The broker is
// kfake in a child process on loopback, acknowledging produce requests
// without storing the records (a fresh one per run): a real broker runs on
// other machines, and kfake's in-memory log (which regrows and copies
// itself as it fills) and its per-request allocations would otherwise be
// charged to dbus's heap and garbage collector. The broker's CPU still
// comes out of the same two cores. DBUS_KFAKE_CPUPROFILE=file profiles the
// broker process.
func viaKafka(b *testing.B, addr, user, pw string, r binlogRange) run {
	cl := kfaketest.StartProcess(b, kfaketest.ProcessSpec{Partitions: 8, Topics: []string{"dbus_bench.t"}, Blackhole: true})
	defer cl.Close()
	seeds := cl.SeedList()
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		b.Fatal(err)
	}
	kafka.Register(reg)
	// DBUS_BENCH_KAFKA_EXTRA appends output settings (indented by four
	// spaces) for experiments, e.g. "    batch_records: 32768".
	conf := binlogInputYAML(addr, user, pw, r, 61000) + fmt.Sprintf(`outputs:
  - name: kafka
    class: KafkaOutput
    match: [bl]
    brokers: %s
    topic: "{db}.{table}"
    profile: throughput
    compression: none
    in_flight: 8
`, seeds) + os.Getenv("DBUS_BENCH_KAFKA_EXTRA")
	cfg, err := engine.Parse("bench.yaml", []byte(conf), reg)
	if err != nil {
		b.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- sup.Run(ctx) }()
	acked := func() uint64 {
		for _, s := range sup.Stats() {
			if s.Name == "kafka" {
				return s.Out
			}
		}
		return 0
	}
	var first, last time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n := acked()
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= benchRows {
			last = time.Now()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d rows acked by Kafka after 5 minutes", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return run{rows: int(acked()), wall: last.Sub(began), steady: last.Sub(first)}
}

// BenchmarkBinlogToKafka compares binlog -> KafkaOutput (acks=all,
// idempotent, kfake broker process on loopback) with the bare go-mysql
// decoding loop over the same range in the same run.
func BenchmarkBinlogToKafka(b *testing.B) {
	addr, user, pw := testenv.MySQL(b)
	r := loaded(b, addr, user, pw)
	bare(b, addr, user, pw, r) // warm-up
	viaKafka(b, addr, user, pw, r)
	var ratios, bareRates, kafkaRates []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var x, y run
		if i%2 == 0 {
			x = measure("bare", func() run { return bare(b, addr, user, pw, r) })
			y = measure("kafka", func() run { return viaKafka(b, addr, user, pw, r) })
		} else {
			y = measure("kafka", func() run { return viaKafka(b, addr, user, pw, r) })
			x = measure("bare", func() run { return bare(b, addr, user, pw, r) })
		}
		ratios = append(ratios, y.rate()/x.rate())
		bareRates, kafkaRates = append(bareRates, x.rate()), append(kafkaRates, y.rate())
		b.Logf("run %d: bare %.0f rows/s | binlog->kafka %.0f rows/s %.0f cpu_ns/row | ratio %.3f", i, x.rate(), y.rate(), y.cpuNs(), y.rate()/x.rate())
	}
	b.StopTimer()
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(med(bareRates), "bare_rows/s")
	b.ReportMetric(med(kafkaRates), "kafka_rows/s")
	b.ReportMetric(med(ratios), "ratio")
}

// BenchmarkBinlogKafkaCeiling is the ceiling of the Kafka half of
// BenchmarkBinlogToKafka: a bare franz-go producer (the same client
// settings as KafkaOutput's throughput profile: acks=all, idempotent, 5 ms
// linger, 1 MiB batches, 8192 buffered records) sending benchRows records
// of the size and keys of the bench table's row changes to the same kind
// of kfake broker process. binlog -> Kafka cannot beat it on this machine.
func BenchmarkBinlogKafkaCeiling(b *testing.B) {
	value := make([]byte, 664) // a bench row's JSON (see mysqlbinlog's benchTable)
	for i := range value {
		value[i] = 'x'
	}
	var rates []float64
	for i := 0; i < b.N; i++ {
		cl := kfaketest.StartProcess(b, kfaketest.ProcessSpec{Partitions: 8, Topics: []string{"dbus_bench.t"}, Blackhole: true})
		client, err := kgo.NewClient(kgo.SeedBrokers(cl.Seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(8192),
			kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.DefaultProduceTopic("dbus_bench.t"))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var failed atomic.Int64
		var wg sync.WaitGroup
		began := time.Now()
		for j := 0; j < benchRows; j++ {
			wg.Add(1)
			r := &kgo.Record{Key: fmt.Appendf(nil, "dbus_bench.t[%d]", j), Value: value}
			client.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
				wg.Done()
			})
		}
		wg.Wait()
		took := time.Since(began)
		client.Close()
		cl.Close()
		if failed.Load() > 0 {
			b.Fatalf("%d records failed", failed.Load())
		}
		rates = append(rates, float64(benchRows)/took.Seconds())
	}
	slices.Sort(rates)
	b.ReportMetric(rates[len(rates)/2], "rows/s")
}
