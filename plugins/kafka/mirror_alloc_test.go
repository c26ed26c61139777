package kafka

import (
	"testing"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// mirrorBench is an output with mirror bookkeeping (as when a KafkaInput
// feeds it) and a batch of n mirrored packets from 6 source partitions,
// built as the output builds them.
func mirrorBench(tb testing.TB, n int) (*Output, *batchState, []*pack.Packet) {
	o := dryOutput(tb, map[string]any{"topic": "dcA.{kafka.topic}", "partitioner": "attr"})
	o.mirror = o.mirrorConf
	o.mirror.src = &Input{}
	batch := make([]*pack.Packet, n)
	for i := range batch {
		p := &pack.Packet{Payload: make([]byte, 128), Ts: time.Now().UnixNano()}
		p.Attrs.SetString("kafka.topic", "orders")
		p.Attrs.SetInt("kafka.partition", int64(i*6/n))
		p.Attrs.SetInt("kafka.offset", int64(i))
		batch[i] = p
	}
	b := o.getBatch(n)
	for i, p := range batch {
		if _, err := o.build(&b.recs[i], p); err != nil {
			tb.Fatal(err)
		}
		b.recs[i].Offset = int64(i)
	}
	return o, b, batch
}

// mirrorTrack is the mirror's per-batch work: before for each record on
// the Write goroutine, acked once on the promise goroutine.
func mirrorTrack(o *Output, b *batchState, batch []*pack.Packet) {
	for i, p := range batch {
		if err := o.mirror.before(b, i, &b.recs[i], p); err != nil {
			panic(err)
		}
	}
	o.mirror.acked(b)
}

// The mirror bookkeeping allocates nothing per record in steady state.
func TestKafkaMirrorTrackingAllocs(t *testing.T) {
	o, b, batch := mirrorBench(t, 1024)
	mirrorTrack(o, b, batch)
	if a := testing.AllocsPerRun(50, func() { mirrorTrack(o, b, batch) }); a != 0 {
		t.Fatalf("%v allocations per batch of 1024", a)
	}
	if got := len(o.MirrorPartitions()); got != 6 {
		t.Fatalf("%d partitions tracked, want 6", got)
	}
}

// BenchmarkKafkaMirrorTracking: cost per record of the mirror bookkeeping
// (source position, offset syncs, latency) a KafkaOutput fed by a
// KafkaInput adds to the produce path.
func BenchmarkKafkaMirrorTracking(b *testing.B) {
	o, bs, batch := mirrorBench(b, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mirrorTrack(o, bs, batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
}

// TestKafkaMirrorSyncsOutOfOrderBatches: engine batches complete out of
// order (one waits for another partition's ack); a partition's latest
// offset sync stays the one with the highest target offset, and a group
// offset past it translates to the end. Before, the older batch completing
// last set the sync back, and a restarted mirror translated a group at
// the end to the middle (TestKafkaMirrorSyncGroups failed 1 run in 5).
func TestKafkaMirrorSyncsOutOfOrderBatches(t *testing.T) {
	o, newer, batch := mirrorBench(t, 600) // offsets 0..599, partitions 0..5 by 100
	for i := range batch {
		newer.recs[i].Offset = int64(i) + 1000 // written after the older batch
	}
	mirrorTrack(o, newer, batch)
	older := o.getBatch(600)
	for i, p := range batch {
		if _, err := o.build(&older.recs[i], p); err != nil {
			t.Fatal(err)
		}
		older.recs[i].Offset = int64(i)
	}
	mirrorTrack(o, older, batch)
	k := tp{"orders", 1} // source offsets 100..199
	topic, part, at, ok := o.mirror.translate(k, 200)
	if !ok || topic != "dcA.orders" || part != 1 || at != 1200 {
		t.Fatalf("offset 200 of orders/1 translated to %s/%d@%d (%v), want dcA.orders/1@1200", topic, part, at, ok)
	}
	o.mirror.mu.Lock()
	last := o.mirror.parts[k].last
	o.mirror.mu.Unlock()
	if last != (offsetSync{199, 1199}) {
		t.Fatalf("latest sync %+v, want {199 1199}", last)
	}
}
