package mysqlbinlog

import (
	"context"
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

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaExactlyOnceBinlogKill9: dbusd (MysqlbinlogInput -> KafkaOutput
// with exactly_once, on kfake over TCP) is killed with SIGKILL several
// times while rows are inserted and updated. The binlog position is
// committed in the Kafka transactions (checkpoint topic) and read back at
// each start; a read_committed consumer must see every row change
// exactly once: no loss, no duplicate. A few kills in CI, many under
// make soak (DBUS_KAFKA_SOAK=1).
func TestKafkaExactlyOnceBinlogKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long test")
	}
	d := testDB(t)
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	bin := buildDbusd(t, root, dir)
	topic := d.name + ".kk"
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := d.pos()
	d.exec("CREATE TABLE kk (id INT PRIMARY KEY, seq INT NOT NULL)")
	conf := filepath.Join(dir, "dbus.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`engine:
  checkpoint_dir: %s
  checkpoint_interval: 100ms
inputs:
  - name: bl
    class: MysqlbinlogInput
    addr: %q
    user: %q
    password: %q
    server_id: %d
    start: file
    start_file: %s
    start_pos: %d
    include: [%q]
outputs:
  - name: kafka
    class: KafkaOutput
    match: [bl]
    brokers: [%q]
    topic: "{db}.{table}"
    linger: 5ms
    exactly_once: true
    commit_interval: 100ms
`, filepath.Join(dir, "ckpt"), d.addr, d.user, d.pw, serverIDs.Add(1), start.File, start.Pos, d.name, cl.ListenAddrs()[0])), 0o644)
	if out, err := exec.Command(bin, "-t", "-conf", conf).CombinedOutput(); err != nil {
		t.Fatalf("dbusd -t: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "dbusd.log")
	startDbusd := func() *exec.Cmd {
		cmd := exec.Command(bin, "-conf", conf, "-log-level", "warn")
		logf, _ := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 4
	rows, hot, rounds := 40_000, 500, 10
	if os.Getenv("DBUS_KAFKA_SOAK") != "" {
		kills, rows, rounds = 25, 200_000, 20
	}
	loadDone := make(chan error, 1)
	go func() {
		var b strings.Builder
		for i := 0; i < rows; i += 250 {
			b.Reset()
			b.WriteString("INSERT INTO kk VALUES ")
			for j := i; j < i+250; j++ {
				if j > i {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "(%d,0)", j)
			}
			if _, err := d.c.Execute(b.String()); err != nil {
				loadDone <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		for r := 1; r <= rounds; r++ {
			if _, err := d.c.Execute(fmt.Sprintf("UPDATE kk SET seq = %d WHERE id < %d", r, hot)); err != nil {
				loadDone <- err
				return
			}
		}
		loadDone <- nil
	}()
	k := 0
	loading := true
	for loading || k < kills {
		cmd := startDbusd()
		time.Sleep(time.Duration(700+rand.Intn(1000)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		k++
		select {
		case err := <-loadDone:
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			loading = false
		default:
		}
	}
	final := startDbusd()
	defer func() {
		final.Process.Signal(syscall.SIGTERM)
		final.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("dbusd log:\n%s", log)
		}
	}()

	cons, err := kgo.NewClient(kgo.SeedBrokers(cl.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	type change struct{ id, seq int }
	seen := map[change]int{}
	where := map[change][]string{} // partition@offset producer/epoch of each copy
	total := 0
	want := rows + hot*rounds
	deadline := time.Now().Add(3 * time.Minute)
	quiet := 0
	for time.Now().Before(deadline) && (len(seen) < want || quiet < 2) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var rc struct {
				After map[string]json.RawMessage `json:"after"`
			}
			if err := json.Unmarshal(r.Value, &rc); err != nil {
				t.Fatalf("bad payload: %v", err)
			}
			id, _ := strconv.Atoi(string(rc.After["id"]))
			seq, _ := strconv.Atoi(string(rc.After["seq"]))
			seen[change{id, seq}]++
			where[change{id, seq}] = append(where[change{id, seq}], fmt.Sprintf("p%d@%d pid %d/%d", r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch))
			total++
			n++
		})
		if n == 0 && len(seen) >= want {
			quiet++ // nothing more after everything arrived: no late duplicates
		}
	}
	dups := total - len(seen)
	t.Logf("%d kills: %d row changes written, %d read_committed, %d distinct, %d duplicates", k, want, total, len(seen), dups)
	for c, n := range seen {
		if n > 1 {
			t.Logf("row change id=%d seq=%d read %d times: %v", c.id, c.seq, n, where[c])
		}
	}
	if len(seen) != want || dups != 0 {
		t.Fatalf("exactly-once broken after %d kills: %d of %d row changes arrived, %d duplicates", k, len(seen), want, dups)
	}
}
