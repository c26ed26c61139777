package binlog

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
)

const (
	benchRows  = 200_000
	rowsPerTxn = 100
)

type binlogRange struct {
	start, end mysqlbinlog.Position
	rows       int // row changes in the range
}

// load writes benchRows rows of a 10-column table and returns the binlog
// range holding them.
func load(b *testing.B, addr, user, pw string) binlogRange {
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
	exec("DROP DATABASE IF EXISTS dbus_bench")
	exec("CREATE DATABASE dbus_bench")
	exec(`CREATE TABLE dbus_bench.t (id BIGINT PRIMARY KEY, a INT, b INT UNSIGNED, c VARCHAR(64), d DECIMAL(12,2),
		e DATETIME(3), f DOUBLE, g TINYINT, h TEXT, i CHAR(8))`)
	// A fresh binlog file: the input's start (BINLOG_GTID_POS on MariaDB)
	// reads the file up to the start position, so its cost would grow with
	// every earlier run.
	exec("FLUSH BINARY LOGS")
	start := pos()
	var sb strings.Builder
	for i := 0; i < benchRows; i += rowsPerTxn {
		sb.Reset()
		sb.WriteString("INSERT INTO dbus_bench.t VALUES ")
		for j := i; j < i+rowsPerTxn; j++ {
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,%d,%d,'name-%d',%d.25,'2024-01-02 03:04:05.678',%d.5,%d,'some text for row %d','c%d')", j, j, j*3, j, j, j, j%100, j, j%1000)
		}
		exec(sb.String())
	}
	ins := binlogRange{start: start, end: pos(), rows: benchRows}
	// The updates load: updateRows single-row UPDATE transactions over the
	// inserted rows, in a binlog file of their own.
	exec("FLUSH BINARY LOGS")
	ustart := pos()
	for j := 0; j < updateRows; j++ {
		exec(fmt.Sprintf("UPDATE dbus_bench.t SET a=a+1, c='upd-%d' WHERE id=%d", j, j))
	}
	updRange = binlogRange{start: ustart, end: pos(), rows: updateRows}
	return ins
}

const updateRows = 100_000

var updRange binlogRange

// loadedKind is the range of the inserts or the updates load.
func loadedKind(b *testing.B, addr, user, pw, kind string) binlogRange {
	r := loaded(b, addr, user, pw)
	if kind == "updates" {
		return updRange
	}
	return r
}

var (
	loadOnce  sync.Once
	loadRange binlogRange
)

// loaded loads the table once per process: the benchmark function runs
// more than once (b.N = 1, then the -benchtime count).
func loaded(b *testing.B, addr, user, pw string) binlogRange {
	loadOnce.Do(func() { loadRange = load(b, addr, user, pw) })
	if loadRange.end.File == "" {
		b.Fatal("loading the benchmark table failed earlier")
	}
	return loadRange
}

// syncerConfig is the replication configuration MysqlbinlogInput uses
// (startStream) with the input's default heartbeat and read timeout, so
// both paths parse the same events the same way.
func syncerConfig(addr, user, pw string) replication.BinlogSyncerConfig {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return replication.BinlogSyncerConfig{
		ServerID: uint32(50000 + time.Now().UnixNano()%10000), Flavor: mysql.MariaDBFlavor, Host: host, Port: uint16(p),
		User: user, Password: pw, HeartbeatPeriod: time.Second, ReadTimeout: 10 * time.Second,
		DisableRetrySync: true, ParseTime: false, TimestampStringLocation: time.UTC,
		UseDecimal: false, RenderJSONAsMySQLText: true, DiscardGTIDSet: true,
	}
}

// run is one measured pass over the range.
type run struct {
	rows   int
	wall   time.Duration // connect to last row
	steady time.Duration // first row to last row
	cpu    time.Duration // process CPU time (user+system) of the pass
	allocs uint64
}

func (r run) rate() float64    { return float64(r.rows) / r.steady.Seconds() }
func (r run) cpuNs() float64   { return float64(r.cpu.Nanoseconds()) / float64(r.rows) }
func (r run) allocs1() float64 { return float64(r.allocs) / float64(r.rows) }

type sample struct {
	cpu    time.Duration
	allocs uint64
}

func now() sample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), allocs: m.Mallocs}
}

// measure runs f after a GC (so neither path pays for the other's
// garbage) and fills in CPU time and allocations. Goroutines f starts
// carry the pprof label path=<path> (go tool pprof -tagfocus path=dbus).
func measure(path string, f func() run) run {
	runtime.GC()
	s0 := now()
	var r run
	pprof.Do(context.Background(), pprof.Labels("path", path), func(context.Context) { r = f() })
	s1 := now()
	r.cpu, r.allocs = s1.cpu-s0.cpu, s1.allocs-s0.allocs
	return r
}

// bare decodes the range with go-mysql alone.
func bare(b *testing.B, addr, user, pw string, r binlogRange) run {
	s := replication.NewBinlogSyncer(syncerConfig(addr, user, pw))
	defer s.Close()
	began := time.Now()
	st, err := s.StartSync(mysql.Position{Name: r.start.File, Pos: r.start.Pos})
	if err != nil {
		b.Fatal(err)
	}
	file := r.start.File
	rows := 0
	var first time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
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
			if isUpdate(ev.Header.EventType) {
				rows += len(e.Rows) / 2 // before and after images
			} else {
				rows += len(e.Rows)
			}
		}
		if file == r.end.File && ev.Header.LogPos >= r.end.Pos {
			end := time.Now()
			return run{rows: rows, wall: end.Sub(began), steady: end.Sub(first)}
		}
	}
}

// countOutput acks everything and counts packets. Like MockOutput it is
// inline (chained into the input's goroutine).
type countOutput struct {
	n           atomic.Int64
	first, last atomic.Int64 // UnixNano of the first and the benchRows-th packet
	done        chan struct{}
}

func (c *countOutput) Inline() bool { return true }

func (c *countOutput) Write(_ context.Context, batch []*pack.Packet) error {
	if c.first.Load() == 0 {
		c.first.Store(time.Now().UnixNano())
	}
	if n := c.n.Add(int64(len(batch))); n >= benchRows && n-int64(len(batch)) < benchRows {
		c.last.Store(time.Now().UnixNano())
		close(c.done)
	}
	return nil
}

// viaDbus runs MysqlbinlogInput -> counting output over the range.
func viaDbus(b *testing.B, addr, user, pw string, r binlogRange) run {
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		b.Fatal(err)
	}
	out := &countOutput{done: make(chan struct{})}
	reg.MustRegister(engine.Spec{Class: "Count", Kind: engine.KindOutput, NewOutput: func(*engine.Conf) (engine.Output, error) { return out, nil }})
	yaml := binlogInputYAML(addr, user, pw, r, 60000) + `outputs:
  - name: out
    class: Count
    match: [bl]
`
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
	began := time.Now()
	go func() { done <- e.Run(ctx) }()
	select {
	case err := <-done:
		b.Fatalf("engine stopped after %d rows: %v", out.n.Load(), err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d rows after 5 minutes", out.n.Load())
	case <-out.done:
	}
	cancel()
	<-done
	first, last := time.Unix(0, out.first.Load()), time.Unix(0, out.last.Load())
	return run{rows: int(out.n.Load()), wall: last.Sub(began), steady: last.Sub(first)}
}

// BenchmarkBinlog decodes the same 200 000-row binlog range with a bare
// go-mysql loop and through dbus (MysqlbinlogInput -> inline counting
// output, the MockOutput shape), with the same syncer settings. Each
// iteration runs both paths, alternating which goes first, after one
// unmeasured warm-up pass of each. Rates are steady-state (first row to
// last row: connection set-up and the input's preflight queries are
// reported apart as wall_ratio); CPU is the process's user+system time per
// row of each pass, overhead_cpu_ns/row dbus's minus bare's in the same
// iteration. Per-run figures are logged (-v); the metrics are medians.
// The machine is shared: compare CPU per row rather than rates when the
// load average is above the core count.
func BenchmarkBinlog(b *testing.B) {
	addr, user, pw := testenv.MySQL(b)
	r := loaded(b, addr, user, pw)
	bare(b, addr, user, pw, r) // warm-up: server caches, our heap
	viaDbus(b, addr, user, pw, r)
	var bs, ds []run
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var x, y run
		if i%2 == 0 {
			x = measure("bare", func() run { return bare(b, addr, user, pw, r) })
			y = measure("dbus", func() run { return viaDbus(b, addr, user, pw, r) })
		} else {
			y = measure("dbus", func() run { return viaDbus(b, addr, user, pw, r) })
			x = measure("bare", func() run { return bare(b, addr, user, pw, r) })
		}
		if x.rows != benchRows || y.rows < benchRows {
			b.Fatalf("rows: bare %d, dbus %d, want %d", x.rows, y.rows, benchRows)
		}
		bs, ds = append(bs, x), append(ds, y)
		b.Logf("run %d: bare %.0f rows/s %.0f cpu_ns/row %.2f allocs/row | dbus %.0f rows/s %.0f cpu_ns/row %.2f allocs/row | ratio %.3f cpu_ratio %.3f wall_ratio %.3f",
			i, x.rate(), x.cpuNs(), x.allocs1(), y.rate(), y.cpuNs(), y.allocs1(),
			y.rate()/x.rate(), x.cpuNs()/y.cpuNs(), x.wall.Seconds()/y.wall.Seconds())
	}
	b.StopTimer()
	median := func(f func(i int) float64) float64 {
		v := make([]float64, len(bs))
		for i := range v {
			v[i] = f(i)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	b.ReportMetric(median(func(i int) float64 { return bs[i].rate() }), "bare_rows/s")
	b.ReportMetric(median(func(i int) float64 { return ds[i].rate() }), "dbus_rows/s")
	b.ReportMetric(median(func(i int) float64 { return ds[i].rate() / bs[i].rate() }), "ratio")
	b.ReportMetric(median(func(i int) float64 { return bs[i].wall.Seconds() / ds[i].wall.Seconds() }), "wall_ratio")
	b.ReportMetric(median(func(i int) float64 { return bs[i].cpuNs() }), "bare_cpu_ns/row")
	b.ReportMetric(median(func(i int) float64 { return ds[i].cpuNs() }), "dbus_cpu_ns/row")
	b.ReportMetric(median(func(i int) float64 { return ds[i].cpuNs() - bs[i].cpuNs() }), "overhead_cpu_ns/row")
	b.ReportMetric(median(func(i int) float64 { return bs[i].allocs1() }), "bare_allocs/row")
	b.ReportMetric(median(func(i int) float64 { return ds[i].allocs1() }), "dbus_allocs/row")
}

// binlogInputYAML is the inputs: block both dbus paths read the range
// with; serverBase spreads the replica server ids of successive runs.
func binlogInputYAML(addr, user, pw string, r binlogRange, serverBase int64) string {
	return fmt.Sprintf(`inputs:
  - name: bl
    class: MysqlbinlogInput
    addr: %q
    user: %q
    password: %q
    server_id: %d
    start: file
    start_file: %s
    start_pos: %d
    include: [dbus_bench]
`, addr, user, pw, serverBase+time.Now().UnixNano()%10000, r.start.File, r.start.Pos)
}
