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
