package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// oldInput emits n packets stamped ten days ago, as a mirror copies old
// records' timestamps.
type oldInput struct{ n int }

func (in oldInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	old := time.Now().Add(-10 * 24 * time.Hour).UnixNano()
	for i := 0; i < in.n; i++ {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = fmt.Appendf(p.Payload[:0], "old-%d", i)
		p.Ts = old
		p.Pos.Offset = int64(i + 1)
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
	}
	return ic.Flush(ctx)
}

// TestKafkaOutputDeliveryTimeoutFromHandOver: delivery_timeout counts
// from the hand-over to the client, not from the record timestamp: ten-day
// old records (a mirror copies timestamps) are delivered with a 5 s
// timeout, their timestamps kept. franz-go's RecordDeliveryTimeout failed
// all of them.
func TestKafkaOutputDeliveryTimeoutFromHandOver(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"out"})
	reg := testRegistry(t, nil)
	const n = 2000
	reg.MustRegister(engine.Spec{Class: "Old", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return oldInput{n: n}, nil }})
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: Old}
outputs:
  - {name: out, class: KafkaOutput, match: [src], brokers: %s, topic: out, linger: 1ms, delivery_timeout: 5s, retries: 0}
`, c.SeedList()), nil)
	r.wait(t, testenv.Scaled(60*time.Second))
	recs := kfaketest.ConsumeN(t, c.Seeds, n, testenv.Scaled(20*time.Second), "out")
	if len(recs) != n {
		t.Fatalf("consumed %d of %d ten-day-old records", len(recs), n)
	}
	for _, rec := range recs[:5] {
		if age := time.Since(rec.Timestamp); age < 9*24*time.Hour {
			t.Fatalf("record timestamp not kept: %v old", age)
		}
	}
}

// partInput emits n packets whose kafka.partition attribute cycles over
// 0..5 (a source topic of 6 partitions), keyed.
type partInput struct{ n int }

func (in partInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	for i := 0; i < in.n; i++ {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = fmt.Appendf(p.Payload[:0], "rec-%d", i)
		p.Key = fmt.Appendf(p.Key[:0], "k%d", i%11)
		p.Attrs.SetInt("kafka.partition", int64(i%6))
		p.Pos.Offset = int64(i + 1)
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
	}
	return ic.Flush(ctx)
}

// TestKafkaOutputAttrPartitionMissing: partitioner attr into a target with
// fewer partitions (2) than the source (6) never stalls the pipeline:
// on_missing_partition: fail sends the records of partitions 2..5 to the
// dead-letter output at once; hash delivers them by key.
func TestKafkaOutputAttrPartitionMissing(t *testing.T) {
	const n = 600
	for _, mode := range []string{"fail", "hash"} {
		t.Run(mode, func(t *testing.T) {
			c := kfaketest.Start(t, 1, 2, []string{"out"})
			dlq := mock.NewRecorder()
			reg := testRegistry(t, dlq)
			reg.MustRegister(engine.Spec{Class: "Parts", Kind: engine.KindInput,
				NewInput: func(*engine.Conf) (engine.Input, error) { return partInput{n: n}, nil }})
			r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: Parts}
outputs:
  - {name: out, class: KafkaOutput, match: [src], brokers: %s, topic: out, linger: 1ms, partitioner: attr, on_missing_partition: %s, dead_letter: dlq}
  - {name: dlq, class: Recorder}
`, c.SeedList(), mode), nil)
			r.wait(t, testenv.Scaled(60*time.Second))
			wantKafka, wantDLQ := n/3, n-n/3 // partitions 0 and 1 exist
			if mode == "hash" {
				wantKafka, wantDLQ = n, 0
			}
			if dlq.Len() != wantDLQ {
				t.Fatalf("%d dead letters, want %d", dlq.Len(), wantDLQ)
			}
			recs := kfaketest.ConsumeN(t, c.Seeds, wantKafka, testenv.Scaled(20*time.Second), "out")
			if len(recs) != wantKafka {
				t.Fatalf("consumed %d, want %d", len(recs), wantKafka)
			}
			// Records whose source partition exists keep it.
			for _, rec := range recs {
				var i int
				fmt.Sscanf(string(rec.Value), "rec-%d", &i)
				if i%6 < 2 && rec.Partition != int32(i%6) {
					t.Fatalf("record %d of partition %d landed in %d", i, i%6, rec.Partition)
				}
			}
		})
	}
}
