package binlog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
	"github.com/dbus-project/dbus/plugins/stream"
)

// The broker every headline row uses: kfake in a child process that
// stores the records (3 brokers, 3 partitions, as a small real cluster),
// a fresh one per run. Its CPU comes out of the same two cores.
// DBUS_KFAKE_CPUPROFILE=file profiles the broker process.
var storing = kfaketest.ProcessSpec{Brokers: 3, Partitions: 3, Topics: []string{"dbus_bench.t"}}

// friendly is the earlier benchmark's broker: one broker, 8 partitions,
// produce acknowledged without storing.
var friendly = kfaketest.ProcessSpec{Partitions: 8, Topics: []string{"dbus_bench.t"}, Blackhole: true}

// sampleOutputs is the outputs: block of etc/binlog-to-kafka.yaml as
// shipped, with only the addresses changed: the brokers, the dead-letter
// file and the match (the bench input is named bl).
func sampleOutputs(b *testing.B, seeds string) string {
	data, err := os.ReadFile("../../etc/binlog-to-kafka.yaml")
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\noutputs:\n")
	if i < 0 {
		b.Fatal("etc/binlog-to-kafka.yaml: no outputs: block")
	}
	s = s[i+1:]
	s = regexp.MustCompile(`brokers: \[[^\]]*\]`).ReplaceAllString(s, "brokers: "+seeds)
	s = strings.ReplaceAll(s, "match: [shop_binlog]", "match: [bl]")
	s = regexp.MustCompile(`path: \S+`).ReplaceAllString(s, "path: "+b.TempDir()+"/dead-letter.jsonl")
	// DBUS_BENCH_KAFKA_EXTRA adds settings to the sample's KafkaOutput
	// (indented by four spaces) for experiments, e.g. "    in_flight: 1".
	if x := os.Getenv("DBUS_BENCH_KAFKA_EXTRA"); x != "" {
		s = strings.Replace(s, "    dead_letter: rejected\n", "    dead_letter: rejected\n"+strings.TrimRight(x, "\n")+"\n", 1)
	}
	return s
}

// compactOutputs is the sample with the input's columns: none (its first
// line continues the inputs: block binlogInputYAML ends with): the same
// rows without the column list in each payload.
func compactOutputs(b *testing.B, seeds string) string {
	return "    columns: none\n" + sampleOutputs(b, seeds)
}

// friendlyOutputs is the earlier benchmark's output: throughput profile,
// 8 engine batches in flight, no compression.
func friendlyOutputs(_ *testing.B, seeds string) string {
	return fmt.Sprintf(`outputs:
  - name: kafka
    class: KafkaOutput
    match: [bl]
    brokers: %s
    topic: "{db}.{table}"
    profile: throughput
    compression: none
    in_flight: 8
`, seeds)
}

// viaKafka runs MysqlbinlogInput -> KafkaOutput over the range with the
// outputs block out(seeds) against a fresh broker process of spec, and
// measures until every row was acknowledged by the broker.
func viaKafka(b *testing.B, addr, user, pw string, r binlogRange, spec kfaketest.ProcessSpec, out func(*testing.B, string) string) run {
	cl := kfaketest.StartProcess(b, spec)
	defer cl.Close()
	return viaKafkaTo(b, addr, user, pw, r, cl, out)
}

// viaKafkaTo is viaKafka against the running broker process cl.
func viaKafkaTo(b *testing.B, addr, user, pw string, r binlogRange, cl *kfaketest.Process, out func(*testing.B, string) string) run {
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		b.Fatal(err)
	}
	kafka.Register(reg)
	stream.Register(reg)
	conf := binlogInputYAML(addr, user, pw, r, 61000) + out(b, cl.SeedList())
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
		if n >= uint64(r.rows) {
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

// producerOpts are the franz-go settings KafkaOutput uses with the
// sample's output block (acks=all, idempotent, the sample's compression,
// murmur2 keys, its default linger and buffered records): the bare
// producer and the bare loop use exactly these.
func producerOpts(seeds []string) []kgo.Opt {
	d := kafka.DefaultProducer()
	return []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(d.Linger), kgo.ProducerBatchMaxBytes(int32(d.BatchBytes)), kgo.MaxBufferedRecords(d.BatchRecords),
		kgo.ProducerBatchCompression(sampleCompression()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.AllowAutoTopicCreation()}
}

// sampleCompression is the codec of the sample's KafkaOutput (none when
// it sets no compression).
func sampleCompression() kgo.CompressionCodec {
	data, err := os.ReadFile("../../etc/binlog-to-kafka.yaml")
	if err != nil {
		panic(err)
	}
	m := regexp.MustCompile(`(?m)^\s+compression: (\w+)`).FindSubmatch(data)
	if m == nil {
		return kgo.NoCompression()
	}
	switch string(m[1]) {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// rowRecord is what a user's own loop would produce for one row image:
// topic db.table, key db.table[pk], value the row as a JSON object.
func rowRecord(e *replication.RowsEvent, row []any) *kgo.Record {
	names := e.Table.ColumnNameString()
	m := make(map[string]any, len(row))
	for i, v := range row {
		if i < len(names) {
			m[names[i]] = v
		}
	}
	val, _ := json.Marshal(m)
	topic := string(e.Table.Schema) + "." + string(e.Table.Table)
	return &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "%s[%v]", topic, row[0]), Value: val}
}

func isUpdate(t replication.EventType) bool {
	return t == replication.UPDATE_ROWS_EVENTv0 || t == replication.UPDATE_ROWS_EVENTv1 || t == replication.UPDATE_ROWS_EVENTv2
}

// bareLoop is the program a user would write instead of dbus: a go-mysql
// decode loop that produces every row (the after image of updates) with
// franz-go (producerOpts) and waits until Kafka acknowledged all of them.
// With keep it also returns the records (for bareProduce).
func bareLoop(b *testing.B, addr, user, pw string, r binlogRange, seeds []string, keep bool) (run, []*kgo.Record) {
	client, err := kgo.NewClient(producerOpts(seeds)...)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	s := replication.NewBinlogSyncer(syncerConfig(addr, user, pw))
	defer s.Close()
	began := time.Now()
	st, err := s.StartSync(mysql.Position{Name: r.start.File, Pos: r.start.Pos})
	if err != nil {
		b.Fatal(err)
	}
	var kept []*kgo.Record
	var failed atomic.Int64
	var wg sync.WaitGroup
	file := r.start.File
	rows := 0
	var first time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
		wg.Done()
	}
	for {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			b.Fatal(err)
		}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			file = string(e.NextLogName)
		case *replication.RowsEvent:
			if rows == 0 {
				first = time.Now()
			}
			step := 1
			if isUpdate(ev.Header.EventType) {
				step = 2
			}
			for i := step - 1; i < len(e.Rows); i += step {
				rec := rowRecord(e, e.Rows[i])
				if keep {
					kept = append(kept, &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value})
				}
				wg.Add(1)
				client.Produce(ctx, rec, done)
				rows++
			}
		}
		if file == r.end.File && ev.Header.LogPos >= r.end.Pos {
			break
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("bare loop: %d records failed", failed.Load())
	}
	end := time.Now()
	return run{rows: rows, wall: end.Sub(began), steady: end.Sub(first)}, kept
}

// bareProduce sends recs (dbus's records of the range) with a
// bare franz-go producer (producerOpts) and waits for every ack.
func bareProduce(b *testing.B, recs []*kgo.Record, seeds []string) run {
	client, err := kgo.NewClient(producerOpts(seeds)...)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	// Connect and learn the topic's metadata first, as the other paths
	// do before their first row.
	if err := client.ProduceSync(context.Background(), &kgo.Record{Topic: recs[0].Topic, Value: []byte("warm")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(len(recs))
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
		wg.Done()
	}
	began := time.Now()
	for _, rec := range recs {
		r := *rec
		client.Produce(ctx, &r, done)
	}
	wg.Wait()
	took := time.Since(began)
	if failed.Load() > 0 {
		b.Fatalf("bare producer: %d records failed", failed.Load())
	}
	return run{rows: len(recs), wall: took, steady: took}
}

// med is the median (the mean of the middle two for an even count).
func med(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// BenchmarkBinlogToKafka measures binlog -> Kafka exactly as a user gets
// it with etc/binlog-to-kafka.yaml (only addresses changed) against a
// storing broker process (3 brokers, 3 partitions), for two loads:
// inserts (200 000 rows, multi-row INSERTs of 100) and updates (100 000
// single-row UPDATE transactions). Each iteration measures, back to back
// in alternating order, the two bare ends (a go-mysql decode loop of the
// range; a franz-go producer sending the same rows with the same producer
// settings to a fresh storing broker), the bare decode-then-produce loop a
// user would write (go-mysql + franz-go), dbus with the sample, and dbus
// with the friendlier earlier setup (throughput profile, in_flight 8,
// 8 partitions, broker that discards), and the sample with the input's
// columns: none (compact payloads). Metrics are medians over the
// iterations of per-iteration ratios:
//
//	vs_slower_end  sample / min(bare decode, bare produce)   (goal >= 0.8)
//	vs_bare_loop   sample / bare decode-then-produce loop    (goal >= 1.0)
//	friendly_vs_decode  friendly setup / bare decode
//	compact_vs_sample   columns: none / sample (per_row)
func BenchmarkBinlogToKafka(b *testing.B) {
	addr, user, pw := testenv.MySQL(b)
	for _, load := range []string{"inserts", "updates"} {
		b.Run(load, func(b *testing.B) {
			r := loadedKind(b, addr, user, pw, load)
			// Warm-up, and the records the bare producer sends: dbus's own
			// records of the range (key, value, headers), read back from
			// the broker after a run with the sample.
			bk := kfaketest.StartProcess(b, storing)
			bareLoop(b, addr, user, pw, r, bk.Seeds, false)
			bk.Close()
			bk = kfaketest.StartProcess(b, storing)
			viaKafkaTo(b, addr, user, pw, r, bk, sampleOutputs)
			var recs []*kgo.Record
			for _, rec := range kfaketest.ConsumeN(b, bk.Seeds, r.rows, 2*time.Minute, "dbus_bench.t") {
				recs = append(recs, &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value, Headers: rec.Headers})
			}
			bk.Close()
			// The input reads on past the range (the updates load follows
			// the inserts) until the run is stopped: a few more records.
			if len(recs) < r.rows {
				b.Fatalf("read back %d rows, want %d", len(recs), r.rows)
			}
			recs = recs[:r.rows]
			var bytes int
			for _, rec := range recs {
				bytes += len(rec.Key) + len(rec.Value)
			}
			b.Logf("%s: dbus records average %d bytes (key+value)", load, bytes/len(recs))
			var vsEnd, vsLoop, vsFriendly, vsCompact []float64
			var dec, prod, loop, sample, fr, compact []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				steps := []func(){
					func() {
						x := measure("bare", func() run { return bare(b, addr, user, pw, r) })
						dec = append(dec, x.rate())
					},
					func() {
						k := kfaketest.StartProcess(b, storing)
						defer k.Close()
						x := measure("produce", func() run { return bareProduce(b, recs, k.Seeds) })
						prod = append(prod, x.rate())
					},
					func() {
						k := kfaketest.StartProcess(b, storing)
						defer k.Close()
						x := measure("loop", func() run { x, _ := bareLoop(b, addr, user, pw, r, k.Seeds, false); return x })
						loop = append(loop, x.rate())
					},
					func() {
						x := measure("sample", func() run { return viaKafka(b, addr, user, pw, r, storing, sampleOutputs) })
						sample = append(sample, x.rate())
					},
					func() {
						x := measure("friendly", func() run { return viaKafka(b, addr, user, pw, r, friendly, friendlyOutputs) })
						fr = append(fr, x.rate())
					},
					func() {
						x := measure("compact", func() run { return viaKafka(b, addr, user, pw, r, storing, compactOutputs) })
						compact = append(compact, x.rate())
					},
				}
				if i%2 == 1 {
					slices.Reverse(steps)
				}
				for _, f := range steps {
					f()
				}
				j := len(dec) - 1
				vsEnd = append(vsEnd, sample[j]/min(dec[j], prod[j]))
				vsLoop = append(vsLoop, sample[j]/loop[j])
				vsFriendly = append(vsFriendly, fr[j]/dec[j])
				vsCompact = append(vsCompact, compact[j]/sample[j])
				b.Logf("%s run %d: bare decode %.0f | bare produce %.0f | bare loop %.0f | dbus sample %.0f | dbus friendly %.0f | sample columns:none %.0f rows/s | sample/slower end %.3f, sample/loop %.3f, compact/sample %.3f",
					load, i, dec[j], prod[j], loop[j], sample[j], fr[j], compact[j], vsEnd[j], vsLoop[j], vsCompact[j])
			}
			b.StopTimer()
			b.ReportMetric(med(dec), "decode_rows/s")
			b.ReportMetric(med(prod), "produce_rows/s")
			b.ReportMetric(med(loop), "loop_rows/s")
			b.ReportMetric(med(sample), "sample_rows/s")
			b.ReportMetric(med(fr), "friendly_rows/s")
			b.ReportMetric(med(vsEnd), "vs_slower_end")
			b.ReportMetric(med(vsLoop), "vs_bare_loop")
			b.ReportMetric(med(vsFriendly), "friendly_vs_decode")
			b.ReportMetric(med(compact), "compact_rows/s")
			b.ReportMetric(med(vsCompact), "compact_vs_sample")
		})
	}
}
