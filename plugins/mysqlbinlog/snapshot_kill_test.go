package mysqlbinlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// TestBinlogSnapshotKill9: a real dbusd (MysqlbinlogInput with snapshot:
// initial and chunks of 500 rows -> StreamOutput into a file, and a
// MockOutput acking after 40 ms, a slow sink that keeps the snapshot from
// finishing before the kills; checkpoints in checkpoint_dir) is killed with SIGKILL at random moments during the
// snapshot of a table under a concurrent insert/update/delete load
// (30 000 rows and 4 kills; 300 000 rows and 10 kills under make soak).
// Every kill leaves a snapshot in progress in checkpoints.json, further
// than the previous one; every restart logs that it resumes with the
// snapshot pending and its first read row comes after the checkpoint's
// last key (not id 1); after the last run the last record per key equals
// the table (deleted keys end with a delete), and the read records of
// all runs stay well below (kills+1) x rows.
func TestBinlogSnapshotKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long test")
	}
	d := testDB(t)
	rows, kills, chunk := 30_000, 4, 500
	if os.Getenv("DBUS_SOAK") != "" {
		rows, kills = 300_000, 10
	}
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	bin := buildDbusd(t, root, dir)
	fillSnapTable(t, d, "big", rows)
	l := startLoad(t, d, "big", rows+rows/10)
	loadDone := false
	defer func() {
		if !loadDone {
			close(l.stop)
			<-l.done
		}
	}()

	ckptDir, outPath := filepath.Join(dir, "ckpt"), filepath.Join(dir, "out.jsonl")
	conf := filepath.Join(dir, "dbus.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`engine:
  checkpoint_dir: %s
  checkpoint_interval: 20ms
inputs:
  - name: bl
    class: MysqlbinlogInput
    addr: %q
    user: %q
    password: %q
    server_id: %d
    include: [%q]
    snapshot: initial
    snapshot_chunk_rows: %d
    snapshot_signal_table: %s.dbus_signal
outputs:
  - name: out
    class: StreamOutput
    match: [bl]
    path: %s
  - name: slow
    class: MockOutput
    match: [bl]
    latency: 40ms
`, ckptDir, d.addr, d.user, d.pw, serverIDs.Add(1), d.name, chunk, d.name, outPath)), 0o644)
	if out, err := exec.Command(bin, "-t", "-conf", conf).CombinedOutput(); err != nil {
		t.Fatalf("dbusd -t: %v\n%s", err, out)
	}
	run := 0
	startDbusd := func() (*exec.Cmd, string) {
		logPath := filepath.Join(dir, fmt.Sprintf("run%d.log", run))
		run++
		lf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		cmd := exec.Command(bin, "-conf", conf, "-log-level", "info")
		cmd.Stdout, cmd.Stderr = lf, lf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, logPath
	}
	// snapAt reads the snapshot progress in checkpoints.json: the last
	// key read (0: none yet) and whether a snapshot is pending.
	snapAt := func() (after int, rowsDone int64, pending bool) {
		b, err := os.ReadFile(filepath.Join(ckptDir, "checkpoints.json"))
		if err != nil {
			return 0, 0, false
		}
		var doc struct {
			Checkpoints map[string]engine.Checkpoint `json:"checkpoints"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("checkpoints.json: %v\n%s", err, b)
		}
		cp, ok := doc.Checkpoints["bl"]
		if !ok {
			return 0, 0, false
		}
		_, st, err := splitSnapToken(cp.Token)
		if err != nil {
			t.Fatalf("checkpoint token %q: %v", cp.Token, err)
		}
		if st == nil {
			return 0, 0, false
		}
		if len(st.After) == 1 {
			after, _ = strconv.Atoi(st.After[0])
		}
		return after, st.Rows, true
	}
	// lines returns the complete lines of the output file from offset.
	lines := func(from int64) [][]byte {
		b, err := os.ReadFile(outPath)
		if err != nil || int64(len(b)) <= from {
			return nil
		}
		b = b[from:]
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		} else {
			return nil
		}
		return bytes.Split(b, []byte("\n"))
	}
	// cutPartial drops a line the killed process left half written (it
	// was never acked, so the next run writes it again) and returns the
	// file's size.
	cutPartial := func() int64 {
		b, err := os.ReadFile(outPath)
		if err != nil {
			return 0
		}
		n := int64(bytes.LastIndexByte(b, '\n') + 1)
		if n < int64(len(b)) {
			if err := os.Truncate(outPath, n); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	// firstRead is the id of the first read record from offset.
	firstRead := func(from int64) (int, bool) {
		for _, p := range lines(from) {
			if r := decode(t, p); r.Kind == "read" && r.Table == "big" {
				id, _ := strconv.Atoi(string(r.Key["id"]))
				return id, true
			}
		}
		return 0, false
	}

	var resumes []string
	prevAfter, offset := 0, int64(0)
	for k := 0; k < kills; k++ {
		cmd, logPath := startDbusd()
		if k > 0 {
			testenv.Eventually(t, 30*time.Second, func() bool {
				b, _ := os.ReadFile(logPath)
				return bytes.Contains(b, []byte("resuming from checkpoint"))
			}, "the restarted dbusd logs that it resumes from the checkpoint")
			b, _ := os.ReadFile(logPath)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "resuming from checkpoint") && !strings.Contains(line, "snapshot_tables_left=1") {
					t.Fatalf("run %d resumed without the snapshot in the checkpoint: %s", k, line)
				}
			}
		}
		// Kill soon after this run checkpointed 1 to 3 chunks of its own
		// (the snapshot is fast: waiting longer would let it finish).
		want := prevAfter + rand.Intn(3)*chunk + 1
		var seen []string
		testenv.Eventually(t, 2*time.Minute, func() bool {
			after, _, pending := snapAt()
			if s := fmt.Sprintf("%s:%d/%v", time.Now().Format("05.000"), after, pending); len(seen) == 0 || !strings.HasSuffix(seen[len(seen)-1], fmt.Sprintf(":%d/%v", after, pending)) {
				seen = append(seen, s)
			}
			return pending && after >= want || k > 0 && !pending
		}, fmt.Sprintf("run %d checkpoints snapshot chunks up to id %d", k, want))
		time.Sleep(time.Duration(rand.Intn(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if k > 0 {
			// The first row this run read comes after the last key the
			// previous run checkpointed: it resumed, not restarted.
			id, ok := firstRead(offset)
			if !ok {
				t.Fatalf("run %d checkpointed snapshot progress but wrote no read record", k)
			}
			if id <= prevAfter {
				t.Fatalf("run %d: first read id %d, the checkpoint said the snapshot had read up to id %d: the snapshot restarted", k, id, prevAfter)
			}
			resumes = append(resumes, fmt.Sprintf("after id %d (first read %d)", prevAfter, id))
		}
		after, done, pending := snapAt()
		if !pending {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("kill %d came after the snapshot finished (the table is too small for this machine's speed); the run's log:\n%s\npolls: %v", k+1, b, seen)
		}
		if after <= prevAfter {
			t.Fatalf("kill %d: checkpoint at id %d, not past the previous kill's %d", k+1, after, prevAfter)
		}
		t.Logf("kill %d: the checkpoint had the snapshot at id %d (%d rows, ~%d chunks)", k+1, after, done, after/chunk)
		prevAfter = after
		offset = cutPartial()
	}

	final, logPath := startDbusd()
	defer func() {
		if final.ProcessState == nil {
			final.Process.Signal(syscall.SIGKILL)
			final.Wait()
		}
	}()
	testenv.Eventually(t, 10*time.Minute, func() bool {
		_, _, pending := snapAt()
		return !pending
	}, "the last run finishes the snapshot")
	if id, ok := firstRead(offset); !ok || id <= prevAfter {
		t.Fatalf("the last run's first read id is %d (found %v), the checkpoint had id %d: the snapshot restarted", id, ok, prevAfter)
	} else {
		resumes = append(resumes, fmt.Sprintf("after id %d (first read %d)", prevAfter, id))
	}
	if b, _ := os.ReadFile(logPath); !bytes.Contains(b, []byte("snapshot_tables_left=1")) {
		t.Fatalf("the last run did not log resuming with the snapshot pending:\n%s", b)
	}
	loadDone = true
	l.finish(t)
	fence(t, d, func() [][]byte { return lines(0) }, 2*time.Minute)
	final.Process.Signal(syscall.SIGTERM)
	final.Wait()

	all := lines(0)
	reads := checkConverged(t, d, "big", all)
	perRun := 0
	for _, p := range lines(offset) {
		if r := decode(t, p); r.Kind == "read" && r.Table == "big" {
			perRun++
		}
	}
	t.Logf("%d rows, %d load ops, %d kills, %d records, %d read records (%.2fx rows; restarting would read ~%dx), last run read %d; resumed: %s",
		rows, l.ops.Load(), kills, len(all), reads, float64(reads)/float64(rows), kills+1, perRun, strings.Join(resumes, ", "))
	if reads >= 2*rows {
		t.Errorf("%d read records for %d rows over %d runs: want well below %d ((kills+1) x rows): the snapshot does not resume", reads, rows, kills+1, (kills+1)*rows)
	}
	if reads < rows/2 {
		t.Errorf("%d read records, want most of %d", reads, rows)
	}
}
