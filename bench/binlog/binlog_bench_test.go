package binlog

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
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
	benchRows  = 100_000
	rowsPerTxn = 100
)

type binlogRange struct {
	start, end mysqlbinlog.Position
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
	return binlogRange{start: start, end: pos()}
}

func syncerConfig(addr, user, pw string) replication.BinlogSyncerConfig {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return replication.BinlogSyncerConfig{
		ServerID: uint32(50000 + time.Now().UnixNano()%10000), Flavor: mysql.MariaDBFlavor, Host: host, Port: uint16(p),
		User: user, Password: pw, ParseTime: false, TimestampStringLocation: time.UTC, RenderJSONAsMySQLText: true,
		DiscardGTIDSet: true, DisableRetrySync: true,
	}
}

// bare decodes the range with go-mysql alone and returns rows and time.
func bare(b *testing.B, addr, user, pw string, r binlogRange) (int, time.Duration) {
	s := replication.NewBinlogSyncer(syncerConfig(addr, user, pw))
	defer s.Close()
	began := time.Now()
	st, err := s.StartSync(mysql.Position{Name: r.start.File, Pos: r.start.Pos})
	if err != nil {
		b.Fatal(err)
	}
	file := r.start.File
	rows := 0
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
			rows += len(e.Rows)
		}
		if file == r.end.File && ev.Header.LogPos >= r.end.Pos {
			return rows, time.Since(began)
		}
	}
}

// countOutput acks everything and counts packets (the MockOutput shape).
type countOutput struct{ n atomic.Int64 }

func (c *countOutput) Write(_ context.Context, batch []*pack.Packet) error {
	c.n.Add(int64(len(batch)))
	return nil
}

// viaDbus runs MysqlbinlogInput -> counting output over the range.
func viaDbus(b *testing.B, addr, user, pw string, r binlogRange) (int, time.Duration) {
	reg := engine.NewRegistry()
	if err := mysqlbinlog.Register(reg); err != nil {
		b.Fatal(err)
	}
	out := &countOutput{}
	reg.MustRegister(engine.Spec{Class: "Count", Kind: engine.KindOutput, NewOutput: func(*engine.Conf) (engine.Output, error) { return out, nil }})
	yaml := fmt.Sprintf(`inputs:
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
outputs:
  - name: out
    class: Count
    match: [bl]
`, addr, user, pw, 60000+time.Now().UnixNano()%10000, r.start.File, r.start.Pos)
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
	for out.n.Load() < benchRows {
		select {
		case err := <-done:
			b.Fatalf("engine stopped: %v", err)
		case <-time.After(time.Millisecond):
		}
		if time.Since(began) > 5*time.Minute {
			b.Fatalf("only %d rows after 5 minutes", out.n.Load())
		}
	}
	el := time.Since(began)
	cancel()
	<-done
	return int(out.n.Load()), el
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkBinlog decodes the same 100 000-row binlog range with a bare
// go-mysql loop and through dbus (MysqlbinlogInput -> counting output),
// alternately, and reports rows/s of each, their ratio (target >= 0.8)
// and allocations per row of each path (dbus's own encoding allocates
// nothing: TestBinlogEncodeRowNoAllocs; the difference is engine and
// connection overhead).
func BenchmarkBinlog(b *testing.B) {
	addr, user, pw := testenv.MySQL(b)
	r := load(b, addr, user, pw)
	var bareRows, dbusRows int
	var bareT, dbusT time.Duration
	var bareAllocs, dbusAllocs uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m0 := mallocs()
		n, t := bare(b, addr, user, pw, r)
		m1 := mallocs()
		bareRows, bareT, bareAllocs = bareRows+n, bareT+t, bareAllocs+m1-m0
		n, t = viaDbus(b, addr, user, pw, r)
		m2 := mallocs()
		dbusRows, dbusT, dbusAllocs = dbusRows+n, dbusT+t, dbusAllocs+m2-m1
	}
	bareRate := float64(bareRows) / bareT.Seconds()
	dbusRate := float64(dbusRows) / dbusT.Seconds()
	b.ReportMetric(bareRate, "bare_rows/s")
	b.ReportMetric(dbusRate, "dbus_rows/s")
	b.ReportMetric(dbusRate/bareRate, "ratio")
	b.ReportMetric(float64(bareAllocs)/float64(bareRows), "bare_allocs/row")
	b.ReportMetric(float64(dbusAllocs)/float64(dbusRows), "dbus_allocs/row")
}
