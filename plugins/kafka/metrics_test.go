package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// TestKafkaInputReportsConsumerLag: KafkaInput reports its consumer lag,
// per partition in records and seconds (MetricsReporter) and in total
// (dbus_input_lag_records / _seconds), while a slow sink holds it behind,
// and 0 once it caught up. Before, dbus_input_lag_records was never set,
// so the shipped lag alert could not fire.
func TestKafkaInputReportsConsumerLag(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"lag"})
	cl := kfaketest.Client(t, c.Seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 3000
	old := time.Now().Add(-time.Hour)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "lag", Partition: int32(i % 3), Value: []byte(fmt.Sprint(i)), Timestamp: old}
	}
	kfaketest.Produce(t, cl, recs...)
	r := startEngine(t, testRegistry(t, nil), fmt.Sprintf(`
engine: {batch: 16, checkpoint_interval: 20ms}
inputs:
  - {name: src, class: KafkaInput, brokers: %s, topics: [lag], max_poll_records: 50, pool: 64}
outputs:
  - {name: out, class: MockOutput, match: [src], latency: 5ms}
`, c.SeedList()), nil)
	src := func() engine.NodeSnapshot {
		for _, s := range r.e.Stats() {
			if s.Name == "src" {
				return s
			}
		}
		t.Fatal("no stats for src")
		return engine.NodeSnapshot{}
	}
	perPart := func(s engine.NodeSnapshot, name string) (sum float64, parts int) {
		for _, m := range s.Metrics {
			if m.Name == name {
				sum += m.Value
				parts++
			}
		}
		return sum, parts
	}
	var behind engine.NodeSnapshot
	testenv.Eventually(t, 20*time.Second, func() bool {
		behind = src()
		return behind.LagRecords > 0
	}, "a lag while the sink is slow")
	if behind.LagSeconds < 3000 {
		t.Fatalf("lag %v s, want the age of hour-old records", behind.LagSeconds)
	}
	if sum, parts := perPart(behind, "dbus_kafka_input_partition_lag_records"); parts == 0 || sum <= 0 {
		t.Fatalf("per-partition lag records: sum %v over %d partitions", sum, parts)
	}
	if sum, _ := perPart(behind, "dbus_kafka_input_partition_lag_seconds"); sum < 3000 {
		t.Fatalf("per-partition lag seconds sum %v", sum)
	}
	var last engine.NodeSnapshot
	if !testenv.WaitFor(20*time.Second, func() bool {
		last = src()
		sum, parts := perPart(last, "dbus_kafka_input_partition_lag_records")
		return last.LagRecords == 0 && last.LagSeconds == 0 && parts == 3 && sum == 0
	}) {
		t.Fatalf("lag left once every record is consumed: %d records, %v s, %+v", last.LagRecords, last.LagSeconds, last.Metrics)
	}
}
