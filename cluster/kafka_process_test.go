package cluster

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterProcessKafkaMirrorKill: a Kafka mirror resource (KafkaInput
// topic src -> KafkaOutput topic dst, positions in the resource's fenced
// checkpoint) on three dbusd members. Its owner is killed with SIGKILL
// while records are being produced: the resource moves to another
// member, resumes from the checkpoint, and every record produced to src
// reaches dst at least once.
func TestClusterProcessKafkaMirrorKill(t *testing.T) {
	pc := newProcCluster(t)
	kc := kfaketest.Start(t, 1, 4, []string{"src", "dst"})
	pc.yaml = func(p *proc) string {
		return fmt.Sprintf(`engine:
  checkpoint_interval: 100ms
  shutdown_timeout: 5s
cluster:
  name: %s
  member: %s
  zookeeper: [%s]
  session_timeout: 2s
  connect_timeout: 5s
  release_timeout: 2s
  local_dir: %s
inputs:
  - name: kin
    class: KafkaInput
    brokers: %s
    topics: [none]
outputs:
  - name: kout
    class: KafkaOutput
    match: kin
    brokers: %s
    topic: dst
    partitioner: attr
    linger: 2ms
`, pc.h.cluster, p.name, strings.Join(pc.h.zk, ", "), filepath.Join(p.dir, "local"), kc.SeedList(), kc.SeedList())
	}
	for _, n := range []string{"m1", "m2", "m3"} {
		pc.start(n, 0, 0)
	}
	pc.waitMembers(3)
	if err := pc.h.admin.AddResource(pc.h.cluster, ResourceSpec{ID: "mirror-1", Input: "kin", Config: map[string]any{"topics": []string{"src"}}}); err != nil {
		t.Fatal(err)
	}
	cl := kfaketest.Client(t, kc.Seeds)
	const n = 3000
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: "src", Key: []byte(fmt.Sprint(i % 16)), Value: kfaketest.Payload("m", i, 24)})
		}
		kfaketest.Produce(t, cl, recs...)
	}
	produce(0, n/3)
	h := pc.h
	var victim *proc
	h.waitFor("mirror-1 copies records", 30*time.Second, func() bool {
		owner, _ := pc.resourceEpochs()
		victim = pc.procs[owner["mirror-1"]]
		if victim == nil {
			return false
		}
		var total int64
		for _, o := range kfaketest.EndOffsets(t, kc.Seeds, "dst") {
			total += o
		}
		return total >= n/6
	})
	h.waitFor("mirror-1's checkpoint advances", 10*time.Second, func() bool {
		cps, err := h.admin.Checkpoints(h.cluster)
		return err == nil && len(cps["mirror-1"].Checkpoints) > 0
	})
	// Produce while the owner dies.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := n / 3; i < n; i += 100 {
			produce(i, min(i+100, n))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	victim.kill()
	killed := time.Now()
	cps, err := h.admin.Checkpoints(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint of mirror-1 at the kill: %+v", cps["mirror-1"].Checkpoints)
	t.Logf("kill -9 %s (owner of mirror-1)", victim.name)
	h.waitFor("mirror-1 runs on another member", 20*time.Second, func() bool {
		ms, err := h.admin.Members(h.cluster)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Name != victim.name && slicesContains(m.Running, "mirror-1") {
				return true
			}
		}
		return false
	})
	t.Logf("mirror-1 running elsewhere %s after the kill", time.Since(killed).Round(time.Millisecond))
	<-done
	seen := map[string]int{}
	h.waitFor("every record mirrored", 60*time.Second, func() bool {
		recs := kfaketest.ConsumeN(t, kc.Seeds, n, 5*time.Second, "dst")
		seen = map[string]int{}
		for _, r := range recs {
			seen[string(r.Value)]++
		}
		return len(seen) >= n
	})
	dups := 0
	for i := 0; i < n; i++ {
		c := seen[string(kfaketest.Payload("m", i, 24))]
		if c == 0 {
			t.Errorf("record %d was never mirrored", i)
		}
		dups += max(c-1, 0)
	}
	t.Logf("%d records mirrored across the kill, %d duplicates", n, dups)
}
