package mysqlbinlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

// snapRows is the table size of the snapshot tests: 20 000, 1 000 000
// under make soak.
func snapRows() int {
	if os.Getenv("DBUS_SOAK") != "" {
		return 1_000_000
	}
	return 20_000
}

// fillSnapTable creates table name (id INT PK, v INT, s VARCHAR) with
// ids 1..n.
func fillSnapTable(t testing.TB, d *db, name string, n int) {
	t.Helper()
	d.exec("CREATE TABLE " + name + " (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(40) NOT NULL, dt DATETIME(3) NOT NULL, u BIGINT UNSIGNED)")
	var b strings.Builder
	for lo := 1; lo <= n; lo += 2000 {
		b.Reset()
		b.WriteString("INSERT INTO " + name + " VALUES ")
		for id := lo; id < lo+2000 && id <= n; id++ {
			if id > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,0,'row %d é','2024-01-02 03:04:05.%03d',%d)", id, id, id%1000, uint64(id)<<40)
		}
		d.exec(b.String())
	}
}

// load writes random inserts, updates and deletes of ids in [1, maxID]
// into table from its own connection until stop is closed.
type load struct {
	stop chan struct{}
	done chan struct{}
	ops  atomic.Int64
	err  atomic.Value
}

func startLoad(t testing.TB, d *db, table string, maxID int) *load {
	c, err := client.Connect(d.addr, d.user, d.pw, d.name)
	if err != nil {
		t.Fatal(err)
	}
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer c.Close()
		rng := rand.New(rand.NewSource(time.Now().UnixNano()))
		for seq := 1; ; seq++ {
			select {
			case <-l.stop:
				return
			default:
			}
			id := 1 + rng.Intn(maxID)
			var q string
			switch rng.Intn(10) {
			case 0, 1:
				q = fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id)
			case 2, 3:
				q = fmt.Sprintf("INSERT INTO %s VALUES (%d, %d, 'ins %d', NOW(3), NULL) ON DUPLICATE KEY UPDATE v = %d", table, id, seq, seq, seq)
			default:
				// A transaction of a few updates.
				q = fmt.Sprintf("UPDATE %s SET v = %d, s = CONCAT('upd ', %d) WHERE id IN (%d, %d, %d)", table, seq, seq, id, 1+rng.Intn(maxID), 1+rng.Intn(maxID))
			}
			if _, err := c.Execute(q); err != nil {
				if me := myError(err); me != nil && (me.Code == mysql.ER_LOCK_DEADLOCK || me.Code == mysql.ER_LOCK_WAIT_TIMEOUT) {
					continue // two load connections: a deadlock rolls one back
				}
				l.err.Store(err)
				return
			}
			l.ops.Add(1)
		}
	}()
	return l
}

func (l *load) finish(t testing.TB) {
	t.Helper()
	close(l.stop)
	<-l.done
	if err, _ := l.err.Load().(error); err != nil {
		t.Fatalf("load: %v", err)
	}
}

// fence writes a row into table fence and waits until the recorder has
// it: everything written before is in.
func fence(t testing.TB, d *db, recs func() [][]byte, within time.Duration) {
	t.Helper()
	d.exec("CREATE TABLE IF NOT EXISTS fence (id INT PRIMARY KEY)")
	id := rand.Intn(1 << 30)
	d.exec(fmt.Sprintf("INSERT INTO fence VALUES (%d)", id))
	want := fmt.Sprintf(`"table":"fence"`)
	wantID := fmt.Sprintf(`"after":{"id":%d}`, id)
	testenv.Eventually(t, within, func() bool {
		for _, p := range recs() {
			if bytes.Contains(p, []byte(want)) && bytes.Contains(p, []byte(wantID)) {
				return true
			}
		}
		return false
	}, "the fence row reaches the output")
}

// checkConverged compares the last record per key of table with the
// table's rows: every row's last record is its current state (insert,
// update or read), every other key seen ends with a delete.
func checkConverged(t testing.TB, d *db, table string, recs [][]byte) (reads int) {
	t.Helper()
	type last struct {
		kind  string
		after map[string]json.RawMessage
	}
	lastOf := map[string]last{}
	for _, p := range recs {
		r := decode(t, p)
		if r.Table != table {
			continue
		}
		if r.Kind == "read" {
			reads++
		}
		lastOf[string(r.Key["id"])] = last{r.Kind, r.After}
	}
	res, err := d.c.Execute("SELECT id, v, s, DATE_FORMAT(dt, '%Y-%m-%d %H:%i:%s.%f'), u FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	inTable := map[string]bool{}
	for i := 0; i < res.RowNumber(); i++ {
		id, _ := res.GetInt(i, 0)
		v, _ := res.GetInt(i, 1)
		s, _ := res.GetString(i, 2)
		dt, _ := res.GetString(i, 3)
		key := fmt.Sprint(id)
		inTable[key] = true
		l, ok := lastOf[key]
		switch {
		case !ok:
			t.Errorf("id %d (v=%d) is in the table but no record has it", id, v)
			bad++
		case l.kind == "delete":
			t.Errorf("id %d is in the table but its last record is a delete", id)
			bad++
		case string(l.after["v"]) != fmt.Sprint(v) || string(l.after["s"]) != mustJSON(s) || string(l.after["dt"]) != mustJSON(dt[:23]):
			t.Errorf("id %d: last record (%s) has v=%s s=%s dt=%s, the table v=%d s=%q dt=%s", id, l.kind, l.after["v"], l.after["s"], l.after["dt"], v, s, dt[:23])
			bad++
		}
		if bad > 10 {
			t.Fatalf("too many differences")
		}
	}
	for key, l := range lastOf {
		if !inTable[key] && l.kind != "delete" {
			t.Errorf("id %s is not in the table but its last record is %s", key, l.kind)
			if bad++; bad > 10 {
				t.Fatalf("too many differences")
			}
		}
	}
	return reads
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// snapWM is the snapshot_watermarks setting of the running test.
var snapWM = "auto"

func snapWatermarks() string { return snapWM }

// bothWatermarks runs f with each snapshot_watermarks setting: auto (on
// the test MariaDB: consistent-snapshot positions) and signal_table.
func bothWatermarks(t *testing.T, f func(t *testing.T)) {
	for _, wm := range []string{"auto", "signal_table"} {
		t.Run(wm, func(t *testing.T) {
			snapWM = wm
			defer func() { snapWM = "auto" }()
			f(t)
		})
	}
}

// snapFields are the input settings of the snapshot tests.
func snapFields(d *db, mode string, chunk int) string {
	return fmt.Sprintf("snapshot: %s\nsnapshot_chunk_rows: %d\nsnapshot_signal_table: %s.dbus_signal\nsnapshot_watermarks: %s", mode, chunk, d.name, snapWatermarks())
}

func snapDone(p *pipeline, table string) bool {
	pr := p.input.Progress()
	if pr.Pending > 0 {
		return false
	}
	for _, t := range pr.Tables {
		if t.Table == table && !t.Finished.IsZero() {
			return true
		}
	}
	return false
}

// TestBinlogSnapshotInitialUnderLoad: snapshot: initial of a table of N
// rows while inserts, updates and deletes go on: after the snapshot and
// the stream caught up, the last record per key equals the table.
func TestBinlogSnapshotInitialUnderLoad(t *testing.T) {
	bothWatermarks(t, testBinlogSnapshotInitialUnderLoad)
}

func testBinlogSnapshotInitialUnderLoad(t *testing.T) {
	d := testDB(t)
	n := snapRows()
	fillSnapTable(t, d, "big", n)
	l := startLoad(t, d, "big", n+n/10)
	l2 := startLoad(t, d, "big", n+n/10)
	p := startPipeline(t, d, snapFields(d, "initial", 200), engine.NewMemoryStore())
	testenv.Eventually(t, 10*time.Minute, func() bool { return snapDone(p, d.name+".big") }, "the snapshot finishes")
	// Some more load after the snapshot.
	ops := l.ops.Load()
	testenv.Eventually(t, time.Minute, func() bool { return l.ops.Load() > ops+100 }, "load goes on")
	l.finish(t)
	l2.finish(t)
	fence(t, d, p.rec.Payloads, 2*time.Minute)
	reads := checkConverged(t, d, "big", p.rec.Payloads())
	pr := p.input.Progress()
	t.Logf("%d rows, %d load ops, %d read records, %d chunks, %d rows superseded by the stream", n, l.ops.Load()+l2.ops.Load(), reads, pr.Chunks, pr.Dropped)
	if reads < n/2 {
		t.Errorf("%d read records, want most of %d", reads, n)
	}
	if pr.Chunks < uint64(reads/200) {
		t.Errorf("%d chunks of at most 200 rows for %d reads", pr.Chunks, reads)
	}
	for _, r := range p.rec.Payloads() {
		if bytes.Contains(r, []byte(`"table":"dbus_signal"`)) {
			t.Fatalf("a signal table change was emitted: %s", r)
		}
	}
	p.waitLog(time.Second, "snapshot of table done", "big")
}

// freezableStore is a checkpoint store that can stop saving, as if the
// process was killed at that moment (kill -9: nothing saved after).
type freezableStore struct {
	*engine.MemoryStore
	frozen atomic.Bool
}

func (f *freezableStore) Save(cps map[string]engine.Checkpoint) error {
	if f.frozen.Load() {
		return nil
	}
	return f.MemoryStore.Save(cps)
}

// TestBinlogSnapshotKillResumesFromLastChunk: the process "dies" (the
// store stops saving, then the engine stops) several times during a
// snapshot under load: each restart resumes the snapshot from the last
// finished chunk in the checkpoint, not from the start, and the final
// state still matches the table.
func TestBinlogSnapshotKillResumesFromLastChunk(t *testing.T) {
	bothWatermarks(t, testBinlogSnapshotKillResumesFromLastChunk)
}

func testBinlogSnapshotKillResumesFromLastChunk(t *testing.T) {
	d := testDB(t)
	n := snapRows()
	fillSnapTable(t, d, "big", n)
	l := startLoad(t, d, "big", n+n/10)
	store := &freezableStore{MemoryStore: engine.NewMemoryStore()}
	var all [][]byte
	fields := snapFields(d, "initial", 500)
	for round := 0; round < 3; round++ {
		store.frozen.Store(false)
		p := startPipeline(t, d, fields, store)
		if round > 0 {
			line := p.waitLog(30*time.Second, "resuming from checkpoint")
			if !strings.Contains(line, "snapshot_tables_left=1") {
				t.Fatalf("round %d: resumed without the snapshot in the checkpoint: %s", round, line)
			}
		}
		// Let a few chunks finish and be checkpointed.
		base := p.input.snapRows.Load()
		testenv.Eventually(t, 2*time.Minute, func() bool { return p.input.snapRows.Load() > base+uint64(n/8) }, "chunks are read")
		cp, _, _ := store.Load("bl")
		_, st, err := splitSnapToken(cp.Token)
		if err != nil || st == nil || len(st.After) != 1 {
			t.Fatalf("round %d: checkpoint %q has no snapshot progress (%v)", round, cp.Token, err)
		}
		store.frozen.Store(true)
		if round > 0 {
			// The first read of this round continues after the last chunk
			// saved by the previous round, not from id 1.
			for _, r := range p.rec.Payloads() {
				if rc := decode(t, r); rc.Kind == "read" {
					if string(rc.Key["id"]) == "1" {
						t.Fatalf("round %d read id 1 again: the snapshot restarted from the beginning", round)
					}
					break
				}
			}
		}
		p.stop()
		all = append(all, p.rec.Payloads()...)
	}
	store.frozen.Store(false)
	p := startPipeline(t, d, fields, store)
	testenv.Eventually(t, 10*time.Minute, func() bool { return snapDone(p, d.name+".big") }, "the snapshot finishes")
	l.finish(t)
	fence(t, d, p.rec.Payloads, 2*time.Minute)
	all = append(all, p.rec.Payloads()...)
	reads := checkConverged(t, d, "big", all)
	t.Logf("%d rows, %d load ops, %d read records over 4 runs", n, l.ops.Load(), reads)
}

// TestBinlogSnapshotAdHocWhileStreaming: an ad hoc snapshot of one table
// (through the Command hook dbc uses) while another table streams: the
// snapshotted table converges and the streamed table loses nothing.
func TestBinlogSnapshotAdHocWhileStreaming(t *testing.T) {
	bothWatermarks(t, testBinlogSnapshotAdHocWhileStreaming)
}

func testBinlogSnapshotAdHocWhileStreaming(t *testing.T) {
	d := testDB(t)
	fillSnapTable(t, d, "old", 5000)
	d.exec("CREATE TABLE live (id INT AUTO_INCREMENT PRIMARY KEY, x INT)")
	p := startPipeline(t, d, snapFields(d, "never", 700), engine.NewMemoryStore())
	p.waitLog(10*time.Second, "starting without checkpoint")
	stop := make(chan struct{})
	var inserted atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := client.Connect(d.addr, d.user, d.pw, d.name)
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Execute(fmt.Sprintf("INSERT INTO live (x) VALUES (%d)", i)); err != nil {
				return
			}
			inserted.Add(1)
		}
	}()
	l := startLoad(t, d, "old", 5500)
	if _, err := p.input.Command(context.Background(), "snapshot", []string{d.name + ".nope.x"}); err == nil {
		t.Fatal("a bad table name was accepted")
	}
	if _, err := p.input.Command(context.Background(), "snapshot", []string{"other_db.old"}); err == nil || !strings.Contains(err.Error(), "include") {
		t.Fatalf("a table outside include was accepted: %v", err)
	}
	if _, err := p.input.Command(context.Background(), "snapshot", []string{d.name + ".old"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, func() bool { return snapDone(p, d.name+".old") }, "the ad hoc snapshot finishes")
	close(stop)
	wg.Wait()
	l.finish(t)
	fence(t, d, p.rec.Payloads, time.Minute)
	recs := p.rec.Payloads()
	if reads := checkConverged(t, d, "old", recs); reads < 2500 {
		t.Errorf("%d read records of old, want most of 5000", reads)
	}
	live := 0
	for _, r := range recs {
		if rc := decode(t, r); rc.Table == "live" {
			if rc.Kind != "insert" {
				t.Fatalf("live: %s record", rc.Kind)
			}
			live++
		}
	}
	if int64(live) != inserted.Load() {
		t.Errorf("live: %d insert records, %d rows inserted", live, inserted.Load())
	}
	p.waitLog(time.Second, "ad hoc snapshot requested")
}

// TestBinlogSnapshotRowsMatchStream: a read record carries the same
// columns, key and values as the insert record the stream wrote for the
// same row, for every column type.
func TestBinlogSnapshotRowsMatchStream(t *testing.T) {
	bothWatermarks(t, testBinlogSnapshotRowsMatchStream)
}

func testBinlogSnapshotRowsMatchStream(t *testing.T) {
	d := testDB(t)
	p := startPipeline(t, d, snapFields(d, "never", 2), engine.NewMemoryStore())
	p.waitLog(10*time.Second, "starting without checkpoint")
	d.exec(`CREATE TABLE types (
		id INT PRIMARY KEY,
		ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
		mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
		dec1 DECIMAL(10,2), dec2 DECIMAL(65,30), f FLOAT, dbl DOUBLE,
		dt DATE, tm TIME(3), tm0 TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL, ts0 TIMESTAMP NULL, yr YEAR,
		c CHAR(10), vc VARCHAR(100), tx TEXT, mtx MEDIUMTEXT, ltx LONGTEXT,
		bn BINARY(4), vb VARBINARY(10), bl BLOB, tbl TINYBLOB,
		e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64), j JSON, n INT NULL, l1 VARCHAR(10) CHARACTER SET latin1
	) DEFAULT CHARSET=utf8mb4`)
	d.exec(`INSERT INTO types VALUES (1,
		-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
		-12345678.91, '12345678901234567890123456789012345.123456789012345678901234567890', 0.1, 0.1,
		'2024-02-29', '-12:34:56.789', '838:59:59', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999', '1970-01-01 00:00:01', 2155,
		'héllo', 'emoji 😀 "quote" \\ back', 'line1\nline2\ttab', REPEAT('m', 1000), '日本語テキスト',
		0x00FF0102, 0x000102, 0xDEADBEEF00, '',
		'b', 'x,z', b'1', 0xFFFFFFFFFFFFFFFF, '{"a": [1, 2.5, "x"], "b": null}', NULL, 'café')`)
	d.exec(`INSERT INTO types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec1, dec2, f, dbl, dt, tm, tm0, dtm, dtm0, ts, ts0, yr,
		c, vc, tx, mtx, ltx, bn, vb, bl, tbl, e, s, b1, b64, j, n) VALUES (2,
		127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
		0.00, '-0.000000000000000000000000000001', -1.25e-5, 1.7976931348623157e308,
		'1000-01-01', '00:00:00.000', '-838:59:59', '1000-01-01 00:00:00.000001', '2000-01-01 12:00:00', '1970-01-01 00:00:01.001', '2038-01-19 03:14:07', 1901,
		'', '', '', '', '', 0x00000000, '', '', 0x00,
		'c', '', b'0', 0, '[]', 0)`)
	d.exec(`INSERT INTO types (id) VALUES (3)`)
	p.wait(3, 30*time.Second)
	if _, err := p.input.Command(context.Background(), "snapshot", []string{d.name + ".types"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func() bool { return snapDone(p, d.name+".types") }, "the snapshot finishes")
	fence(t, d, p.rec.Payloads, 30*time.Second)
	recs := p.rec.Payloads()
	keys := p.rec.Keys()
	ins := map[string]rowChange{}
	insKey := map[string]string{}
	reads := 0
	for i, r := range recs {
		rc := decode(t, r)
		if rc.Table != "types" {
			continue
		}
		id := string(rc.Key["id"])
		switch rc.Kind {
		case "insert":
			ins[id], insKey[id] = rc, string(keys[i])
		case "read":
			reads++
			want, ok := ins[id]
			if !ok {
				t.Fatalf("read of id %s without its insert", id)
			}
			if string(keys[i]) != insKey[id] {
				t.Errorf("id %s: read key %q, insert key %q", id, keys[i], insKey[id])
			}
			if mustJSON(rc.Columns) != mustJSON(want.Columns) || mustJSON(rc.PK) != mustJSON(want.PK) {
				t.Errorf("id %s: columns\nread   %s %s\ninsert %s %s", id, mustJSON(rc.Columns), rc.PK, mustJSON(want.Columns), want.PK)
			}
			for col, v := range want.After {
				if string(rc.After[col]) != string(v) {
					t.Errorf("id %s column %s: read %s, insert %s", id, col, rc.After[col], v)
				}
			}
			if rc.Before != nil {
				t.Errorf("read has a before image: %v", rc.Before)
			}
		}
	}
	if reads != 3 {
		t.Fatalf("%d read records, want 3", reads)
	}
}

// BenchmarkBinlogSnapshot: snapshot rows/s (the table's first chunk read
// to its last emitted; pipeline_rows/s adds the engine's start and stop)
// into MockOutput (acks at once) against a bare SELECT scan of the same
// table (go-mysql's streaming reader, values parsed, nothing else) in the
// same run. snapshot_watermarks as in the environment (DBUS_SNAP_WATERMARKS,
// default auto).
func BenchmarkBinlogSnapshot(b *testing.B) {
	d := testDB(b)
	if wm := os.Getenv("DBUS_SNAP_WATERMARKS"); wm != "" {
		snapWM = wm
		defer func() { snapWM = "auto" }()
	}
	n := 200_000
	fillSnapTable(b, d, "bench", n)
	var bare, snap, whole time.Duration
	for i := 0; i < b.N; i++ {
		c, err := client.Connect(d.addr, d.user, d.pw, d.name)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var res mysql.Result
		rows := 0
		if err := c.ExecuteSelectStreaming("SELECT id, v, s, dt, u FROM bench", &res, func([]mysql.FieldValue) error { rows++; return nil }, nil); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
		c.Close()
		if rows != n {
			b.Fatalf("bare scan: %d rows", rows)
		}
		start = time.Now()
		in := runSnapshotDiscard(b, d)
		whole += time.Since(start)
		if got := in.snapRows.Load(); got != uint64(n) {
			b.Fatalf("snapshot emitted %d rows, want %d", got, n)
		}
		pr := in.Progress()
		if len(pr.Tables) != 1 || pr.Tables[0].Finished.IsZero() {
			b.Fatalf("progress %+v", pr)
		}
		snap += pr.Tables[0].Finished.Sub(pr.Tables[0].Started)
	}
	bareRate := float64(n*b.N) / bare.Seconds()
	snapRate := float64(n*b.N) / snap.Seconds()
	b.ReportMetric(bareRate, "bare_rows/s")
	b.ReportMetric(snapRate, "snapshot_rows/s")
	b.ReportMetric(snapRate/bareRate, "x_bare")
	// With the engine's start (preflight, replica registration) and stop.
	b.ReportMetric(float64(n*b.N)/whole.Seconds(), "pipeline_rows/s")
}

// runSnapshotDiscard runs MysqlbinlogInput (snapshot: initial_only) into
// MockOutput (acks at once, keeps nothing) until the input stops.
func runSnapshotDiscard(b *testing.B, d *db) *Input {
	reg := engine.NewRegistry()
	mock.Register(reg)
	var in *Input
	if err := reg.Register(engine.Spec{Class: "MysqlbinlogInput", Kind: engine.KindInput, Fields: spec.Fields,
		NewInput: func(c *engine.Conf) (engine.Input, error) {
			i, err := newInput(c)
			in = i
			return i, err
		}}); err != nil {
		b.Fatal(err)
	}
	yaml := fmt.Sprintf(`inputs:
  - name: bl
    class: MysqlbinlogInput
    addr: %q
    user: %q
    password: %q
    server_id: %d
    include: [%q]
%s
outputs:
  - name: out
    class: MockOutput
    match: [bl]
`, d.addr, d.user, d.pw, serverIDs.Add(1), d.name, indent(snapFields(d, "initial_only", benchChunk()), "    "))
	cfg, err := engine.Parse("bench.yaml", []byte(yaml), reg)
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return in
}

// TestBinlogSnapshotWhenNeededAfterPurge: with snapshot: when_needed a
// checkpoint whose binlog was purged restarts the stream at the current
// position and reads every table again (on_purged would stop the input).
func TestBinlogSnapshotWhenNeededAfterPurge(t *testing.T) {
	d := testDB(t)
	fillSnapTable(t, d, "old", 3000)
	store := engine.NewMemoryStore()
	// A position in a binlog file the server no longer has.
	if err := store.Save(map[string]engine.Checkpoint{"bl": {Offset: 1<<32 | 4, Token: "v1|mysql-bin.000000|4|"}}); err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, d, snapFields(d, "when_needed", 500)+"\nuse_gtid: false", store)
	p.waitLog(30*time.Second, "snapshot when_needed: reading every table again")
	testenv.Eventually(t, time.Minute, func() bool { return snapDone(p, d.name+".old") }, "the snapshot finishes")
	d.exec("UPDATE old SET v = 7 WHERE id = 10")
	fence(t, d, p.rec.Payloads, time.Minute)
	if reads := checkConverged(t, d, "old", p.rec.Payloads()); reads != 3000 {
		t.Errorf("%d read records, want 3000", reads)
	}
}

// TestBinlogSnapshotInitialOnlyStops: snapshot: initial_only reads the
// tables, then the input returns and the engine stops by itself; started
// again on the same checkpoint it reads nothing.
func TestBinlogSnapshotInitialOnlyStops(t *testing.T) {
	d := testDB(t)
	fillSnapTable(t, d, "old", 2500)
	store := engine.NewMemoryStore()
	p := startPipeline(t, d, snapFields(d, "initial_only", 1000), store)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("engine: %v", err)
		}
	case <-time.After(testenv.Scaled(time.Minute)):
		t.Fatal("initial_only did not stop")
	}
	p.cancel = nil
	if reads := checkConverged(t, d, "old", p.rec.Payloads()); reads != 2500 {
		t.Errorf("%d read records, want 2500", reads)
	}
	cp, ok, _ := store.Load("bl")
	if !ok || strings.Contains(cp.Token, snapTokenSep) {
		t.Fatalf("checkpoint after the snapshot: %q (want a position without snapshot state)", cp.Token)
	}
	p2 := startPipeline(t, d, snapFields(d, "initial_only", 1000), store)
	select {
	case err := <-p2.done:
		if err != nil {
			t.Fatalf("engine: %v", err)
		}
	case <-time.After(testenv.Scaled(time.Minute)):
		t.Fatal("initial_only with a finished snapshot did not stop")
	}
	p2.cancel = nil
	if n := p2.rec.Len(); n != 0 {
		t.Errorf("second run emitted %d packets, want 0", n)
	}
	p2.waitLog(time.Second, "nothing to read")
}

// benchChunk is the benchmark's snapshot_chunk_rows: the default, or
// DBUS_SNAP_CHUNK.
func benchChunk() int {
	if v, err := strconv.Atoi(os.Getenv("DBUS_SNAP_CHUNK")); err == nil && v > 0 {
		return v
	}
	return DefaultConfig().SnapshotChunkRows
}

// TestBinlogSnapshotEncodeRowNoAllocs: a row the snapshot's SELECT read
// (text protocol values) is encoded into its chunk's arena (key, payload
// body, chunk key) without an allocation once the arena has grown, and
// like the stream encodes it.
func TestBinlogSnapshotEncodeRowNoAllocs(t *testing.T) {
	tm := &replication.TableMapEvent{Schema: []byte("shop"), Table: []byte("t"), ColumnCount: 4,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_NEWDECIMAL},
		ColumnMeta: []uint16{0, 400, 3, 10<<8 | 2}}
	def := TableDef{PK: []int{0}, Columns: []ColumnDef{{Name: "id", Type: "int"}, {Name: "s", Type: "varchar"},
		{Name: "dt", Type: "datetime(3)"}, {Name: "amount", Type: "decimal(10,2)"}}}
	f, err := newFilters(nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := compile(tm, def, f, "snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var data mysql.RowData
	for _, v := range []string{"42", "héllo \"w\"", "2024-01-02 03:04:05.678", "12345.67"} {
		data = append(data, mysql.PutLengthEncodedString([]byte(v))...)
	}
	fields := []*mysql.Field{{Type: mysql.MYSQL_TYPE_LONG}, {Type: mysql.MYSQL_TYPE_VAR_STRING}, {Type: mysql.MYSQL_TYPE_DATETIME}, {Type: mysql.MYSQL_TYPE_NEWDECIMAL}}
	vals, err := data.ParseText(fields, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	s := &snapshotter{cfg: &cfg}
	w := &chunk{st: &snapTable{db: "shop", name: "t", t: tb, key: []int{0}, keyName: "PRIMARY"}}
	row := &snapRow{vals: vals}
	enc := func() {
		w.arena, w.rows = w.arena[:0], w.rows[:0]
		if err := s.addRow(w, row); err != nil {
			t.Fatal(err)
		}
	}
	enc()
	r := w.rows[0]
	body := string(w.arena[r.body.off : r.body.off+r.body.n])
	for _, want := range []string{`"id":42`, `"s":"héllo \"w\""`, `"dt":"2024-01-02 03:04:05.678"`, `"amount":"12345.67"`} {
		if !strings.Contains(body, want) {
			t.Errorf("payload body %s lacks %s", body, want)
		}
	}
	if k := string(w.arena[r.key.off : r.key.off+r.key.n]); k != "shop.t[42]" {
		t.Errorf("key %s", k)
	}
	if ck := string(w.arena[r.ckey.off : r.ckey.off+r.ckey.n]); ck != "[42]" {
		t.Errorf("chunk key %s", ck)
	}
	if n := testing.AllocsPerRun(1000, enc); n != 0 {
		t.Fatalf("%.1f allocations per row, want 0", n)
	}
}
