package kafka

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// soak reports whether the long variants run (DBUS_KAFKA_SOAK=1).
func soak() bool { return os.Getenv("DBUS_KAFKA_SOAK") == "1" }

func freePorts(t testing.TB, n int) []int {
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// TestKafkaBrokerDownThenUp stops the whole destination cluster in the
// middle of a run (3s; 30s with DBUS_KAFKA_SOAK=1) and brings it back on
// the same ports and data: nothing is lost and production resumes soon
// after the return.
func TestKafkaBrokerDownThenUp(t *testing.T) {
	outage := 3 * time.Second
	if soak() {
		outage = 30 * time.Second
	}
	ports := freePorts(t, 1)
	dir := t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(ports...), kfake.DataDir(dir), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(3, "out")}
	c1, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	seeds := c1.ListenAddrs()
	const n, keys, rate = 8000, 17, 2000
	r := startEngine(t, testRegistry(t, nil), fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: MockInput, count: %d, keys: %d, payload: 64, rate: %d}
outputs:
  - {name: out, class: KafkaOutput, match: [src], in_flight: 4, brokers: [%s], topic: out, linger: 5ms,
     record_retries: -1, record_retry_backoff: 100ms, retry_backoff: 100ms}
`, n, keys, rate, seeds[0]), nil)
	// Down in the middle of the run: once a quarter of the records is in.
	waitFor(t, 30*time.Second, "a quarter of the records produced", func() bool {
		return sumOffsets(kfaketest.EndOffsets(t, seeds, "out")) >= n/4
	})
	c1.Close()
	down := time.Now()
	time.Sleep(outage)
	c2, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("restart cluster on %v: %v", seeds, err)
	}
	defer c2.Close()
	back := time.Now()
	t.Logf("cluster down for %v", back.Sub(down))
	before := sumOffsets(kfaketest.EndOffsets(t, seeds, "out"))
	var resumed time.Duration
	waitFor(t, 30*time.Second, "production to resume", func() bool {
		if sumOffsets(kfaketest.EndOffsets(t, seeds, "out")) > before {
			resumed = time.Since(back)
			return true
		}
		return false
	})
	t.Logf("production resumed %v after the cluster returned", resumed)
	if resumed > 3*time.Second {
		t.Errorf("resumed %v after the return, want about a second", resumed)
	}
	r.wait(t, 60*time.Second)
	recs := kfaketest.ConsumeN(t, seeds, n, 30*time.Second, "out")
	dups := checkMockDelivery(t, recs, n, keys, 3)
	t.Logf("%d records, %d duplicates", len(recs), dups)
}

func sumOffsets(m map[int32]int64) int64 {
	var s int64
	for _, o := range m {
		s += o
	}
	return s
}

// TestKafkaConsumerGroupRebalance runs two engines in one consumer group
// while records flow: the second joins, takes partitions over, and leaves
// again. Every record reaches one of them at least once.
func TestKafkaConsumerGroupRebalance(t *testing.T) {
	c := kfaketest.Start(t, 1, 6, []string{"rb"})
	const n = 12000
	prod := kfaketest.Client(t, c.Seeds)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n; i += 100 {
			var recs []*kgo.Record
			for j := i; j < i+100; j++ {
				recs = append(recs, &kgo.Record{Topic: "rb", Key: []byte("k" + strconv.Itoa(j%23)), Value: kfaketest.Payload("rb", j, 32)})
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				return
			}
			time.Sleep(70 * time.Millisecond)
		}
	}()
	conf := fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: KafkaInput, brokers: %s, topics: [rb], group: grb, session_timeout: 6s, revoke_timeout: 5s}
outputs:
  - {name: rec, class: Recorder, match: [src]}
`, c.SeedList())
	rec1, rec2 := mock.NewRecorder(), mock.NewRecorder()
	e1 := startEngine(t, testRegistry(t, rec1), conf, nil)
	waitFor(t, 20*time.Second, "first engine to read", func() bool { return rec1.Len() > n/4 })
	e2 := startEngine(t, testRegistry(t, rec2), conf, nil)
	waitFor(t, 20*time.Second, "second engine to get partitions", func() bool { return rec2.Len() > 200 })
	e2.stop(t) // leaves the group: its partitions go back to the first
	<-produced
	seen := make([]int, n)
	count := func() int {
		clear(seen)
		k := 0
		for _, rec := range []*mock.Recorder{rec1, rec2} {
			for _, p := range rec.Payloads() {
				var i int
				fmt.Sscanf(string(p), "rb-%d", &i)
				if seen[i] == 0 {
					k++
				}
				seen[i]++
			}
		}
		return k
	}
	waitFor(t, 30*time.Second, "every record", func() bool { return count() == n })
	e1.stop(t)
	dups := rec1.Len() + rec2.Len() - n
	t.Logf("first engine %d, second %d records, %d duplicates", rec1.Len(), rec2.Len(), dups)
	waitCommitted(t, c.Seeds, "grb", "rb", kfaketest.EndOffsets(t, c.Seeds, "rb"))
}
