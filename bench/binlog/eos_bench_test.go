package binlog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
	"github.com/dbus-project/dbus/plugins/stream"
)

// The exactly-once benchmark has a database of its own, so it can run
// while BenchmarkBinlogToKafka reloads dbus_bench.
const (
	eosDB   = "dbus_bench_eos"
	eosRows = 100_000
)

// eosStoring is the storing broker of the headline rows (3 brokers, 3
// partitions) with this benchmark's topic.
var eosStoring = kfaketest.ProcessSpec{Brokers: 3, Partitions: 3, Topics: []string{eosDB + ".t"}}

var (
	eosLoadOnce  sync.Once
	eosLoadRange binlogRange
)

// eosLoaded writes eosRows rows (INSERTs of rowsPerTxn rows, each its
// own transaction) into eosDB.t once per process, in a fresh binlog file,
// and returns their range.
func eosLoaded(b *testing.B, addr, user, pw string) binlogRange {
	eosLoadOnce.Do(func() {
		c, err := client.Connect(addr, user, pw, "")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		exec := func(q string) {
			if _, err := c.Execute(q); err != nil {
				b.Fatalf("%s: %v", q[:min(len(q), 80)], err)
			}
		}
		pos := func() mysqlbinlog.Position {
			r, err := c.Execute("SHOW MASTER STATUS")
			if err != nil {
				b.Fatal(err)
			}
			f, _ := r.GetString(0, 0)
			p, _ := r.GetUint(0, 1)
			return mysqlbinlog.Position{File: f, Pos: uint32(p)}
		}
		exec("SET NAMES utf8mb4")
		exec("DROP DATABASE IF EXISTS " + eosDB)
		exec("CREATE DATABASE " + eosDB)
		exec(`CREATE TABLE ` + eosDB + `.t (id BIGINT PRIMARY KEY, a INT, b INT UNSIGNED, c VARCHAR(64), d DECIMAL(12,2),
		e DATETIME(3), f DOUBLE, g TINYINT, h TEXT, i CHAR(8))`)
		exec("FLUSH BINARY LOGS")
		start := pos()
		var sb strings.Builder
		for i := 0; i < eosRows; i += rowsPerTxn {
			sb.Reset()
			sb.WriteString("INSERT INTO " + eosDB + ".t VALUES ")
			for j := i; j < i+rowsPerTxn; j++ {
				if j > i {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, "(%d,%d,%d,'name-%d',%d.25,'2024-01-02 03:04:05.678',%d.5,%d,'some text for row %d','c%d')", j, j, j*3, j, j, j, j%100, j, j%1000)
			}
			exec(sb.String())
		}
		eosLoadRange = binlogRange{start: start, end: pos(), rows: eosRows}
	})
	if eosLoadRange.end.File == "" {
		b.Fatal("loading the exactly-once benchmark table failed earlier")
	}
	return eosLoadRange
}

// eosOutputs is the outputs: block of etc/binlog-to-kafka.yaml
// (sampleOutputs) for this benchmark's database; with exactly it is
// made exactly-once the way a user would: exactly_once: true with the
// defaults (commit_interval 100ms, commit_records 50000), and without
// the dead-letter output, which exactly_once refuses.
func eosOutputs(b *testing.B, seeds string, exactly bool) string {
	s := sampleOutputs(b, seeds)
	if !exactly {
		return s
	}
	i := strings.Index(s, "  - name: rejected")
	if i < 0 || !strings.Contains(s, "    dead_letter: rejected\n") {
		b.Fatalf("etc/binlog-to-kafka.yaml: no dead-letter output to remove:\n%s", s)
	}
	s = s[:i]
	return strings.Replace(s, "    dead_letter: rejected\n", "    exactly_once: true\n", 1)
}

// eosRun runs MysqlbinlogInput -> KafkaOutput over r (at least once with
// the sample, or exactly once) against a fresh storing broker process.
// Its rate is over the span from the first row the input emitted to the
// last row the broker acknowledged (at least once) or committed
// (exactly once: KafkaOutput counts a record produced at its
// transaction's commit), so exactly-once pays for its last commit.
// With check, a read_committed consumer then reads the topic and every
// row must be there exactly once.
func eosRun(b *testing.B, addr, user, pw string, r binlogRange, exactly, check bool) run {
	cl := kfaketest.StartProcess(b, eosStoring)
	defer cl.Close()
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		b.Fatal(err)
	}
	stream.Register(reg)
	kreg := engine.NewRegistry()
	kafka.Register(kreg)
	spec, _ := kreg.Lookup("KafkaOutput")
	var out atomic.Pointer[kafka.Output]
	wrapped := *spec
	wrapped.NewOutput = func(c *engine.Conf) (engine.Output, error) {
		o, err := kafka.NewOutput(c)
		if err == nil {
			out.Store(o)
		}
		return o, err
	}
	reg.MustRegister(wrapped)
	in := strings.Replace(binlogInputYAML(addr, user, pw, r, 62000), "include: [dbus_bench]", "include: ["+eosDB+"]", 1)
	conf := in + eosOutputs(b, cl.SeedList(), exactly)
	cfg, err := engine.Parse("bench.yaml", []byte(conf), reg)
	if err != nil {
		b.Fatalf("%v\n%s", err, conf)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- sup.Run(ctx) }()
	emitted := func() uint64 {
		for _, s := range sup.Stats() {
			if s.Name == "bl" {
				return s.Out
			}
		}
		return 0
	}
	produced := func() uint64 {
		if o := out.Load(); o != nil {
			return o.Stats().Produced
		}
		return 0
	}
	var first, last time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if first.IsZero() && emitted() > 0 {
			first = time.Now()
		}
		n := produced()
		if n >= uint64(r.rows) {
			last = time.Now()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("exactly_once=%v: only %d rows in Kafka after 5 minutes", exactly, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if first.IsZero() {
		first = began
	}
	if check {
		checkCommitted(b, cl.Seeds, r.rows)
	}
	return run{rows: r.rows, wall: last.Sub(began), steady: last.Sub(first)}
}

// checkCommitted reads the topic with read_committed and fails unless
// every one of the n rows is there exactly once.
func checkCommitted(b *testing.B, seeds []string, n int) {
	c := kfaketest.Client(b, seeds, kgo.ConsumeTopics(eosDB+".t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := make(map[string]int, n)
	total := 0
	for total < n && ctx.Err() == nil {
		c.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen[string(r.Key)]++
			total++
		})
	}
	if total != n || len(seen) != n {
		b.Fatalf("read_committed consumer read %d records of %d distinct keys, want %d once each", total, len(seen), n)
	}
	// One checkpoint record per committed transaction: proof that the
	// run was transactional, and the rows per transaction.
	cc := kfaketest.Client(b, seeds, kgo.ConsumeTopics("__dbus_checkpoints"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	txns := 0
	for {
		pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
		f := cc.PollFetches(pctx)
		pcancel()
		if f.NumRecords() == 0 {
			break
		}
		txns += f.NumRecords()
	}
	if txns == 0 {
		b.Fatal("no record in __dbus_checkpoints: the exactly-once run did not commit a transaction")
	}
	b.Logf("exactly once: %d rows read once each by a read_committed consumer, %d transactions (%.0f rows each)", n, txns, float64(n)/float64(txns))
}

// BenchmarkBinlogExactlyOnce measures binlog -> Kafka with
// etc/binlog-to-kafka.yaml (at least once, as shipped) against the same
// with exactly_once: true (its defaults; the dead-letter output removed,
// as exactly_once refuses it) over the same 100 000 inserted rows
// (INSERTs of 100), each run against a fresh storing broker process
// (3 brokers, 3 partitions). Each iteration is a pair, alternating which
// mode goes first. Metrics are medians over the pairs:
//
//	alo_rows/s, eos_rows/s  first row emitted -> last row acked / committed
//	eos_vs_alo              exactly-once / at-least-once per pair (goal >= 0.7)
//	eos_vs_alo_wall         the same from the pipeline's start (connect,
//	                        for exactly once also fencing and reading the
//	                        checkpoint topic) to the last row
func BenchmarkBinlogExactlyOnce(b *testing.B) {
	addr, user, pw := testenv.MySQL(b)
	r := eosLoaded(b, addr, user, pw)
	// Warm-up, and the check that the exactly-once run delivers every
	// row once to a read_committed consumer.
	eosRun(b, addr, user, pw, r, false, false)
	eosRun(b, addr, user, pw, r, true, true)
	var alo, eos, ratio, aloWall, eosWall, wallRatio []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		modes := []bool{false, true}
		if i%2 == 1 {
			slices.Reverse(modes)
		}
		var a, e run
		for _, exactly := range modes {
			x := measure(map[bool]string{false: "alo", true: "eos"}[exactly], func() run { return eosRun(b, addr, user, pw, r, exactly, false) })
			if exactly {
				e = x
			} else {
				a = x
			}
		}
		alo = append(alo, a.rate())
		eos = append(eos, e.rate())
		ratio = append(ratio, e.rate()/a.rate())
		aloWall = append(aloWall, float64(a.rows)/a.wall.Seconds())
		eosWall = append(eosWall, float64(e.rows)/e.wall.Seconds())
		wallRatio = append(wallRatio, eosWall[i]/aloWall[i])
		b.Logf("pair %d: at least once %.0f rows/s (%.0f from connect, %.0f ns CPU/row) | exactly once %.0f rows/s (%.0f from connect, %.0f ns CPU/row) | eos/alo %.3f",
			i, a.rate(), aloWall[i], a.cpuNs(), e.rate(), eosWall[i], e.cpuNs(), ratio[i])
	}
	b.StopTimer()
	b.ReportMetric(med(alo), "alo_rows/s")
	b.ReportMetric(med(eos), "eos_rows/s")
	b.ReportMetric(med(ratio), "eos_vs_alo")
	b.ReportMetric(med(wallRatio), "eos_vs_alo_wall")
	b.ReportMetric(0, "ns/op")
}
