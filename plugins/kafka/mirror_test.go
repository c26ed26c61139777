package kafka

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// mirrorYAML is the mirror pipeline of etc/mirror.yaml with test seeds.
func mirrorYAML(a, b *kfaketest.Cluster, extra string) string {
	return fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - name: from_a
    class: KafkaInput
    brokers: %s
    topics: [orders, users]
    group: mirror-a-to-b
    session_timeout: 6s
outputs:
  - name: to_b
    class: KafkaOutput
    match: [from_a]
    in_flight: 4
    brokers: %s
    topic: "dcA.{kafka.topic}"
    topic_map: {dcA.users: users-from-a}
    partitioner: attr
    linger: 2ms
    origin_id: dcA
    cluster_id: dcB
%s`, a.SeedList(), b.SeedList(), extra)
}

func TestKafkaMirror(t *testing.T) {
	a := kfaketest.Start(t, 2, 4, []string{"orders", "users"})
	b := kfaketest.Start(t, 2, 4, []string{"dcA.orders", "users-from-a"})
	const n = 3000
	base := time.UnixMilli(1600000000000)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		topic := "orders"
		if i%4 == 0 {
			topic = "users"
		}
		hs := []kgo.RecordHeader{{Key: "trace", Value: []byte("t" + strconv.Itoa(i))}}
		if i%100 == 7 {
			// Already mirrored from B: must not go back (loop).
			hs = append(hs, kgo.RecordHeader{Key: "dbus-origin", Value: []byte("dcB")})
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("key" + strconv.Itoa(i%57)), Value: kfaketest.Payload("m", i, 128),
			Timestamp: base.Add(time.Duration(i) * time.Second), Headers: hs})
	}
	kfaketest.Produce(t, kfaketest.Client(t, a.Seeds), recs...)
	// Where each record landed on A.
	type loc struct {
		p   int32
		key string
		ts  time.Time
	}
	src := map[string]loc{}
	for _, r := range recs {
		src[string(r.Value)] = loc{r.Partition, string(r.Key), r.Timestamp}
	}

	r := startEngine(t, testRegistry(t, nil), mirrorYAML(a, b, ""), nil)
	loops := n/100 + 0
	want := n - loops
	got := kfaketest.ConsumeN(t, b.Seeds, want, 30*time.Second, "dcA.orders", "users-from-a")
	r.stop(t)
	if len(got) != want {
		t.Fatalf("mirrored %d records, want %d", len(got), want)
	}
	perPart := map[string]int64{}
	for _, g := range got {
		s, ok := src[string(g.Value)]
		if !ok {
			t.Fatalf("unknown record %q", g.Value)
		}
		var i int
		fmt.Sscanf(string(g.Value), "m-%d", &i)
		wantTopic := "dcA.orders"
		if i%4 == 0 {
			wantTopic = "users-from-a"
		}
		if g.Topic != wantTopic || g.Partition != s.p || string(g.Key) != s.key || !g.Timestamp.Equal(s.ts) {
			t.Fatalf("record %d: topic %s partition %d key %q ts %v; want %s %d %q %v", i, g.Topic, g.Partition, g.Key, g.Timestamp, wantTopic, s.p, s.key, s.ts)
		}
		hs := map[string]string{}
		for _, h := range g.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["trace"] != "t"+strconv.Itoa(i) || hs["dbus-origin"] != "dcA" {
			t.Fatalf("record %d headers %v", i, hs)
		}
		if i%100 == 7 {
			t.Fatalf("record %d bears the destination's mark and was mirrored back", i)
		}
		// Order within the partition is the source order.
		k := g.Topic + "/" + strconv.Itoa(int(g.Partition))
		if int64(i) < perPart[k] {
			t.Fatalf("partition %s: record %d after %d", k, i, perPart[k])
		}
		perPart[k] = int64(i)
		_ = bytes.MinRead
	}
	// Offsets of A were committed up to the end (loop records included:
	// skipped records are done too).
	waitCommitted(t, a.Seeds, "mirror-a-to-b", "orders", kfaketest.EndOffsets(t, a.Seeds, "orders"))
}
