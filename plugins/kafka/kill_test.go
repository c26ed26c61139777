package kafka

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// buildDbusd builds cmd/dbusd into dir. When plugins/all does not link
// plugins/kafka yet, the build uses a -overlay that adds the import (the
// repository is not changed).
func buildDbusd(t *testing.T, dir string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(here), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "cmd", "dbusd", "main.go")); err != nil {
		t.Skip("cmd/dbusd does not exist yet: the kill -9 mirror test needs it")
	}
	bin := filepath.Join(dir, "dbusd")
	args := []string{"build", "-o", bin}
	allPath := filepath.Join(root, "plugins", "all", "all.go")
	all, err := os.ReadFile(allPath)
	if err == nil && !strings.Contains(string(all), "plugins/kafka\"") {
		patched := strings.Replace(string(all), "import (", "import (\n\t_ \"github.com/dbus-project/dbus/plugins/kafka\"", 1)
		pf := filepath.Join(dir, "all.go")
		os.WriteFile(pf, []byte(patched), 0o644)
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{allPath: pf}})
		of := filepath.Join(dir, "overlay.json")
		os.WriteFile(of, ov, 0o644)
		args = append(args, "-overlay", of)
		t.Log("plugins/all does not import plugins/kafka yet: building dbusd with an overlay that adds it")
	}
	cmd := exec.Command("go", append(args, "./cmd/dbusd")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dbusd: %v\n%s", err, out)
	}
	return bin
}

// TestKafkaMirrorKill9 mirrors cluster A to cluster B with a dbusd
// process, kills it with SIGKILL several times while records are
// produced, restarts it, and checks that every source record reached B at
// least once, reporting duplicates. The clusters are kfake instances in
// the test process, serving dbusd over loopback TCP.
func TestKafkaMirrorKill9(t *testing.T) {
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
    in_flight: 4
    brokers: %s
    topic: "dcA.{kafka.topic}"
    partitioner: attr
    linger: 5ms
    record_retries: -1
    origin_id: dcA
    cluster_id: dcB
`, filepath.Join(dir, "cp"), a.SeedList(), b.SeedList())), 0o644)
	if out, err := exec.Command(bin, "-t", "-conf", conf).CombinedOutput(); err != nil {
		t.Fatalf("dbusd -t: %v\n%s", err, out)
	}

	const n = 30000
	prod := kfaketest.Client(t, a.Seeds)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += 250 {
			var recs []*kgo.Record
			for j := i; j < i+250; j++ {
				recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", j%101)), Value: kfaketest.Payload("o", j, 100)})
			}
			if err := prod.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
	}()
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-conf", conf, "-log-level", "warn")
		logf, _ := os.OpenFile(filepath.Join(dir, "dbusd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	mirrored := func() int64 { return sumOffsets(kfaketest.EndOffsets(t, b.Seeds, "dcA.orders")) }
	for k := 0; k < 3; k++ {
		// Killed mid-stream, once this run has mirrored some records (a
		// different amount each time).
		before := mirrored()
		cmd := start()
		waitFor(t, 60*time.Second, fmt.Sprintf("run %d to mirror records", k+1), func() bool { return mirrored() >= before+int64(1500+500*k) })
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := start()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dbusd.log"))
			t.Logf("dbusd log:\n%s", log)
		}
	}()
	<-produced
	seen := make([]int, n)
	var total int
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs := kfaketest.ConsumeN(t, b.Seeds, n, 3*time.Second, "dcA.orders")
		clear(seen)
		distinct := 0
		for _, r := range recs {
			var i int
			fmt.Sscanf(string(r.Value), "o-%d", &i)
			if seen[i] == 0 {
				distinct++
			}
			seen[i]++
		}
		total = len(recs)
		if distinct == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 kill -9 and a restart, %d of %d records reached B", distinct, n)
		}
	}
	t.Logf("3 x kill -9 then restart: %d source records, %d delivered, %d duplicates (%.2f%%)", n, total, total-n, 100*float64(total-n)/n)
}
