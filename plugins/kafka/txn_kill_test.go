package kafka

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// eosKills is how many times the exactly-once kill loops kill dbusd: a
// few in CI, many under make soak (DBUS_KAFKA_SOAK=1).
func eosKills() int {
	if os.Getenv("DBUS_KAFKA_SOAK") != "" {
		return 25
	}
	return 4
}

// TestKafkaExactlyOnceMirrorKill9 mirrors cluster A to cluster B with
// exactly_once, kills dbusd with SIGKILL several times while records are
// produced to A, restarts it, and checks with a read_committed consumer
// on B that every source record arrived exactly once: no loss, no
// duplicate (the at-least-once mirror of TestKafkaMirrorKill9 shows
// duplicates under the same load).
func TestKafkaExactlyOnceMirrorKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	bin := buildDbusd(t, dir)
	a := kfaketest.Start(t, 1, 4, []string{"orders"})
	b := kfaketest.Start(t, 1, 4, []string{"dcA.orders"})
	conf := filepath.Join(dir, "mirror.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
engine:
  checkpoint_dir: %s
  checkpoint_interval: 100ms
  shutdown_timeout: 10s
inputs:
  - name: from_a
    class: KafkaInput
    brokers: %s
    topics: [orders]
    group: mirror
    instance_id: mirror-1
    session_timeout: 6s
    rebalance_timeout: 10s
outputs:
  - name: to_b
    class: KafkaOutput
    match: [from_a]
    brokers: %s
    topic: "dcA.{kafka.topic}"
    partitioner: attr
    linger: 5ms
    exactly_once: true
    commit_interval: 100ms
`, filepath.Join(dir, "cp"), a.SeedList(), b.SeedList())), 0o644)
	if out, err := exec.Command(bin, "-t", "-conf", conf).CombinedOutput(); err != nil {
		t.Fatalf("dbusd -t: %v\n%s", err, out)
	}
	kills := eosKills()
	n := 6000 * kills
	prod := kfaketest.Client(t, a.Seeds)
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += 250 {
			var recs []*kgo.Record
			for j := i; j < i+250; j++ {
				recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", j%101)), Value: kfaketest.Payload("o", j, 100)})
			}
			if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		produced <- nil
	}()
	logPath := filepath.Join(dir, "dbusd.log")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-conf", conf, "-log-level", "warn")
		logf, _ := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for k := 0; k < kills; k++ {
		cmd := start()
		time.Sleep(time.Duration(800+rand.Intn(1200)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := start()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("dbusd log:\n%s", log)
		}
	}()
	if err := <-produced; err != nil {
		t.Fatalf("produce to A: %v", err)
	}
	var got []*kgo.Record
	deadline := time.Now().Add(90 * time.Second)
	for {
		got = consumeCommitted(t, b.Seeds, n+1, 3*time.Second, "dcA.orders")
		if d, _ := countCopies(got, n); d == n || time.Now().After(deadline) {
			break
		}
	}
	d, dups := countCopies(got, n)
	t.Logf("%d x kill -9 then restart: %d source records, %d read_committed on B, %d distinct, %d duplicates", kills, n, len(got), d, dups)
	if d != n || dups != 0 || len(got) != n {
		t.Fatalf("exactly-once broken: %d of %d records arrived, %d duplicates (%d records read)", d, n, dups, len(got))
	}
}
