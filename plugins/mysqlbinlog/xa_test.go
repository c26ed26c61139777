package mysqlbinlog

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// xaConn is a second session on the test database (an XA transaction
// occupies its session until it is prepared).
func (d *db) xaConn() *db {
	d.t.Helper()
	c, err := client.Connect(d.addr, d.user, d.pw, d.name)
	if err != nil {
		d.t.Fatalf("connect %s: %v", d.addr, err)
	}
	d.t.Cleanup(func() { c.Close() })
	return &db{t: d.t, addr: d.addr, user: d.user, pw: d.pw, name: d.name, c: c}
}

// xaID returns an xid unique to the test and registers a cleanup that
// rolls it back if a failed test left it prepared (it would hold its
// locks, and DROP DATABASE would wait for it). Call it before xaConn: the
// rollback must run after the session holding the XA is closed.
func xaID(d *db, name string) string {
	id := fmt.Sprintf("'%s-%s'", name, strings.TrimPrefix(d.name, "dbus_"))
	if len(id) > 60 {
		id = id[:59] + "'"
	}
	d.t.Cleanup(func() {
		// The server detaches the XA from a closed session asynchronously.
		testenv.WaitFor(5*time.Second, func() bool {
			d.c.Execute("XA ROLLBACK " + id)
			r, err := d.c.Execute("XA RECOVER")
			if err != nil {
				return false
			}
			for i := range r.RowNumber() {
				if v, _ := r.GetString(i, 3); "'"+v+"'" == id {
					return false
				}
			}
			return true
		})
	})
	return id
}

// lastGTID returns the session's last GTID (MariaDB).
func (d *db) lastGTID() string {
	d.t.Helper()
	r, err := d.c.Execute("SELECT @@last_gtid")
	if err != nil {
		d.t.Fatal(err)
	}
	s, _ := r.GetString(0, 0)
	return s
}

// gtidIncludes reports whether the MariaDB GTID set includes gtid
// (domain-server-seq): the set's entry for its domain is at or past it.
func gtidIncludes(set, gtid string) bool {
	dom, _, _ := strings.Cut(gtid, "-")
	seq, _ := strconv.ParseUint(gtid[strings.LastIndexByte(gtid, '-')+1:], 10, 64)
	for _, g := range strings.Split(set, ",") {
		g = strings.TrimSpace(g)
		if d, _, _ := strings.Cut(g, "-"); d == dom {
			s, _ := strconv.ParseUint(g[strings.LastIndexByte(g, '-')+1:], 10, 64)
			return s >= seq
		}
	}
	return false
}

// xaPrepare runs an XA transaction up to its prepare on c.
func xaPrepare(c *db, id string, stmts ...string) {
	c.t.Helper()
	c.exec("XA START " + id)
	for _, s := range stmts {
		c.exec(s)
	}
	c.exec("XA END " + id)
	c.exec("XA PREPARE " + id)
}

// ids returns the "id" of each row packet ("" for other packets).
func ids(t testing.TB, ps [][]byte) []string {
	var out []string
	for _, rc := range decodeAll(t, ps) {
		out = append(out, string(rc.After["id"])+string(rc.Before["id"]))
	}
	return out
}

func xaPipeline(t *testing.T, d *db, fields string, store engine.CheckpointStore) *pipeline {
	t.Helper()
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(200))")
	p := startPipeline(t, d, "start: current\n"+fields, store)
	p.waitLog(10*time.Second, "starting without checkpoint")
	return p
}

// TestBinlogXARollbackDeliversNothing: the rows of a prepared XA
// transaction that is rolled back are never delivered (they used to be
// emitted at the prepare); the rollback is counted and logged.
func TestBinlogXARollbackDeliversNothing(t *testing.T) {
	d := testDB(t)
	p := xaPipeline(t, d, "", nil)
	id := xaID(d, "rb")
	xaPrepare(d, id, "INSERT INTO t VALUES (1, 'xa'), (2, 'xa')", "UPDATE t SET v = 'xa2' WHERE id = 1")
	d.exec("XA ROLLBACK " + id)
	d.exec("INSERT INTO t VALUES (100, 'after')")
	got := ids(t, p.wait(1, 20*time.Second))
	if len(got) != 1 || got[0] != "100" {
		t.Fatalf("delivered %v, want only the row after the rolled-back XA transaction (100)", got)
	}
	p.waitLog(5*time.Second, "XA transaction rolled back", "rows=3")
	if n := p.input.XARolledBack(); n != 1 {
		t.Fatalf("XARolledBack %d, want 1", n)
	}
	series := map[string]float64{}
	p.input.ReportMetrics(func(name, _ string, _ engine.MetricKind, v float64, _ ...string) { series[name] = v })
	if series["dbus_binlog_xa_rolled_back_total"] != 1 || series["dbus_binlog_xa_held"] != 0 {
		t.Fatalf("XA series %v, want rolled_back_total 1, held 0", series)
	}
	testenv.Never(t, 300*time.Millisecond, func() bool { return p.rec.Len() > 1 }, "rows of the rolled-back XA transaction arrived")
}

// TestBinlogXACommitDeliversAtCommit: a prepared XA transaction's rows
// arrive once, at its XA COMMIT, after the rows committed meanwhile; the
// checkpoint stays before the prepare until then.
func TestBinlogXACommitDeliversAtCommit(t *testing.T) {
	d := testDB(t)
	store := engine.NewMemoryStore()
	p := xaPipeline(t, d, "", store)
	id := xaID(d, "commit") // before xaConn: its rollback runs after c2 is closed
	c2 := d.xaConn()
	xaPrepare(c2, id, "INSERT INTO t VALUES (1, 'xa'), (2, 'xa')")
	xaGTID := c2.lastGTID() // the prepare group's
	d.exec("INSERT INTO t VALUES (100, 'meanwhile')")
	got := ids(t, p.wait(1, 20*time.Second))
	if got[0] != "100" {
		t.Fatalf("first row %v: the prepared XA transaction's rows arrived before its commit", got)
	}
	// The row after the prepare is acked; the checkpoint must still let a
	// restart re-read the prepare.
	cpIncludes := func() bool {
		cp, _, _ := store.Load("bl")
		pos, err := ParseToken(string(cp.Token))
		return err == nil && gtidIncludes(pos.GTID, xaGTID)
	}
	d.exec("INSERT INTO t VALUES (101, 'meanwhile')")
	p.wait(2, 20*time.Second)
	testenv.Never(t, 500*time.Millisecond, cpIncludes, "checkpoint passed the unresolved prepare %s", xaGTID)
	if p.rec.Len() != 2 {
		t.Fatalf("%d packets before the commit", p.rec.Len())
	}
	c2.exec("XA COMMIT " + id)
	got = ids(t, p.wait(4, 20*time.Second))
	if strings.Join(got, ",") != "100,101,1,2" {
		t.Fatalf("rows %v, want 100,101,1,2", got)
	}
	testenv.Eventually(t, 10*time.Second, cpIncludes, "checkpoint did not pass the committed XA transaction %s", xaGTID)
	testenv.Never(t, 300*time.Millisecond, func() bool { return p.rec.Len() > 4 }, "rows delivered twice")
}

// TestBinlogXAOnePhase: XA COMMIT ... ONE PHASE delivers its rows.
func TestBinlogXAOnePhase(t *testing.T) {
	d := testDB(t)
	p := xaPipeline(t, d, "", nil)
	id := xaID(d, "one")
	d.exec("XA START " + id)
	d.exec("INSERT INTO t VALUES (1, 'one'), (2, 'one')")
	d.exec("XA END " + id)
	d.exec("XA COMMIT " + id + " ONE PHASE")
	d.exec("INSERT INTO t VALUES (3, 'after')")
	if got := ids(t, p.wait(3, 20*time.Second)); strings.Join(got, ",") != "1,2,3" {
		t.Fatalf("rows %v, want 1,2,3", got)
	}
}

// TestBinlogXAInterleaved: two XA transactions prepared in one order and
// committed in the other are delivered in commit order; the rolled-back
// one of a pair sharing nothing is dropped.
func TestBinlogXAInterleaved(t *testing.T) {
	d := testDB(t)
	p := xaPipeline(t, d, "", nil)
	a, b := xaID(d, "a"), xaID(d, "b")
	ca, cb := d.xaConn(), d.xaConn()
	xaPrepare(ca, a, "INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (2, 'a')")
	xaPrepare(cb, b, "INSERT INTO t VALUES (3, 'b')")
	cb.exec("XA COMMIT " + b)
	ca.exec("XA COMMIT " + a)
	d.exec("INSERT INTO t VALUES (4, 'after')")
	if got := ids(t, p.wait(4, 20*time.Second)); strings.Join(got, ",") != "3,1,2,4" {
		t.Fatalf("rows %v, want 3,1,2,4 (commit order)", got)
	}
}

// TestBinlogXARestartBetweenPrepareAndCommit: the input stops after a
// prepare and restarts from its checkpoint; the transaction's rows are
// delivered after its commit (the checkpoint stayed before the prepare, so
// the restart re-reads it), not lost and not delivered before the commit.
func TestBinlogXARestartBetweenPrepareAndCommit(t *testing.T) {
	for _, mode := range []string{"row", "event"} {
		t.Run(mode, func(t *testing.T) {
			d := testDB(t)
			store := engine.NewMemoryStore()
			p := xaPipeline(t, d, "mode: "+mode, store)
			id := xaID(d, "restart")
			c2 := d.xaConn()
			xaPrepare(c2, id, "INSERT INTO t VALUES (1, 'xa'), (2, 'xa')")
			d.exec("INSERT INTO t VALUES (100, 'meanwhile')")
			p.wait(1, 20*time.Second)
			if err := p.stop(); err != nil {
				t.Fatal(err)
			}
			if n := p.rec.Len(); n != 1 {
				t.Fatalf("%d packets before the commit, want 1 (the row after the prepare)", n)
			}
			c2.exec("XA COMMIT " + id)
			d.exec("INSERT INTO t VALUES (200, 'after')")
			p2 := startPipeline(t, d, "start: current\nmode: "+mode, store)
			var got []string
			testenv.Eventually(t, 20*time.Second, func() bool {
				got = nil
				for _, rc := range decodeAll(t, p2.rec.Payloads()) {
					if rc.After != nil {
						got = append(got, string(rc.After["id"]))
					}
					for _, r := range rc.Rows {
						got = append(got, string(r.After["id"]))
					}
				}
				return len(got) > 0 && got[len(got)-1] == "200"
			}, "the row after the commit did not arrive")
			// 100 again (read again from the prepare: at least once), then
			// the XA rows at their commit, once.
			if s := strings.Join(got, ","); s != "100,1,2,200" {
				t.Fatalf("rows after restart %s, want 100,1,2,200", s)
			}
		})
	}
}

// TestBinlogXABoundExceeded: past xa_max_bytes of held rows the input
// stops with an error naming the transaction, the position and the
// setting; nothing of the transaction is delivered.
func TestBinlogXABoundExceeded(t *testing.T) {
	d := testDB(t)
	p := xaPipeline(t, d, "xa_max_bytes: 1KiB", nil)
	id := xaID(d, "big")
	var stmts []string
	for i := 1; i <= 20; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t VALUES (%d, '%s')", i, strings.Repeat("x", 100)))
	}
	xaPrepare(d, id, stmts...)
	hexID := fmt.Sprintf("x'%x'", strings.Trim(id, "'"))
	p.waitLog(20*time.Second, "xa_max_bytes", hexID, d.pos().File+":")
	testenv.Never(t, 300*time.Millisecond, func() bool { return p.rec.Len() > 0 }, "rows of the oversized XA transaction delivered")
}
