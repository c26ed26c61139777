package mysqlbinlog

import (
	"fmt"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
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
