package mysqlbinlog

import (
	"fmt"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// TestBinlogStartCurrentIsDurable: with start: current and a checkpoint
// store, the resolved start position is saved before the input reads, so
// rows written while dbusd was down after a start on an idle server are
// read after a restart: after an orderly stop, and after a crash (a store
// opened while the first run was still running sees only what was durable
// then; nothing had been committed before the fix).
func TestBinlogStartCurrentIsDurable(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "orderly", true: "crash"}[crash], func(t *testing.T) {
			d := testDB(t)
			d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
			dir := t.TempDir()
			store1, err := engine.OpenFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := startPipeline(t, d, "start: current", store1)
			p.waitLog(10*time.Second, "starting without checkpoint")
			store2 := engine.CheckpointStore(nil)
			if crash {
				// What a kill -9 now would leave on disk.
				if store2, err = engine.OpenFileStore(dir); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.stop(); err != nil {
				t.Fatal(err)
			}
			if !crash {
				if store2, err = engine.OpenFileStore(dir); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 5; i++ {
				d.exec(fmt.Sprintf("INSERT INTO t VALUES (%d, 'down-%d')", i, i))
			}
			p2 := startPipeline(t, d, "start: current", store2)
			got := decodeAll(t, p2.wait(5, 20*time.Second))
			for i, rc := range got[:5] {
				if rc.Kind != "insert" || string(rc.After["id"]) != fmt.Sprint(i+1) {
					t.Fatalf("row %d after restart: %+v", i, rc)
				}
			}
			p2.waitLog(time.Second, "resuming from checkpoint")
		})
	}
}

// TestBinlogSourceServerID: each row names the server_id of the server
// where the change was made (it was always 0).
func TestBinlogSourceServerID(t *testing.T) {
	d := testDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	r, err := d.c.Execute("SELECT @@server_id")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.GetUint(0, 0)
	if want == 0 {
		t.Fatal("the test server has server_id 0")
	}
	p := startPipeline(t, d, "start: current", nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	d.exec("INSERT INTO t VALUES (1), (2)")
	for _, rc := range decodeAll(t, p.wait(2, 20*time.Second)) {
		if uint64(rc.Source.ServerID) != want {
			t.Fatalf("source.server_id %d, want the server's %d", rc.Source.ServerID, want)
		}
	}
}

// TestBinlogStatementDMLStopsTheInput: a change logged as a statement (a
// session with binlog_format=STATEMENT) stops the input with an error
// naming the position and the fix; the rows after it are not delivered
// and the checkpoint stays before it. It used to be skipped silently
// while later row events were emitted.
func TestBinlogStatementDMLStopsTheInput(t *testing.T) {
	for _, mode := range []string{"STATEMENT", "MIXED"} {
		t.Run(mode, func(t *testing.T) {
			d := testDB(t)
			d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
			store := engine.NewMemoryStore()
			p := startPipeline(t, d, "start: current", store)
			p.waitLog(10*time.Second, "starting without checkpoint")
			d.exec("INSERT INTO t VALUES (1, 'row')")
			p.wait(1, 20*time.Second)
			stmt := d.pos() // where the statement-logged transaction begins
			d.exec("SET SESSION binlog_format=" + mode)
			d.exec("BEGIN")
			d.exec("INSERT INTO t VALUES (2, 'statement')")
			d.exec("COMMIT")
			d.exec("SET SESSION binlog_format=ROW")
			d.exec("INSERT INTO t VALUES (3, 'after')")
			p.waitLog(20*time.Second, "statement-logged change at", "binlog_format=ROW")
			// Nothing past the statement arrives, and the checkpoint does
			// not pass it (give the input time to try).
			testenv.Never(t, 500*time.Millisecond, func() bool { return p.rec.Len() > 1 }, "rows after the statement-logged change were delivered")
			if cp, _, _ := store.Load("bl"); cp.Offset > stmt.Offset() {
				t.Fatalf("checkpoint %d passed the statement-logged transaction at %s (%d)", cp.Offset, stmt, stmt.Offset())
			}
		})
	}
}

// TestBinlogCreateTableSelectReachesHistory: CREATE TABLE ... SELECT is
// logged inside the transaction that writes its rows; an input without
// FULL row metadata (schema history) decodes the new table's rows. It
// used to ignore the statement and stop for good on the new table.
func TestBinlogCreateTableSelectReachesHistory(t *testing.T) {
	testenv.MySQLExclusive(t) // changes a global setting
	d := testDB(t)
	d.exec("SET GLOBAL binlog_row_metadata = MINIMAL")
	t.Cleanup(func() { d.c.Execute("SET GLOBAL binlog_row_metadata = FULL") })
	d.reconnect() // the session takes the global setting
	d.exec("CREATE TABLE src (id INT PRIMARY KEY, v VARCHAR(20))")
	d.exec("INSERT INTO src VALUES (1, 'a'), (2, 'b')")
	hist := t.TempDir() + "/schema.json"
	p := startPipeline(t, d, "start: current\nschema_file: "+hist, nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	d.exec("CREATE TABLE copy SELECT id, v FROM src")
	d.exec("INSERT INTO copy VALUES (3, 'c')")
	got := decodeAll(t, p.wait(3, 20*time.Second))
	for i, rc := range got {
		if rc.Table != "copy" || rc.Kind != "insert" || string(rc.After["id"]) != fmt.Sprint(i+1) || rc.After["v"] == nil {
			t.Fatalf("row %d: %+v", i, rc)
		}
	}
}
