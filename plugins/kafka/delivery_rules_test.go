package kafka

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// TestKafkaOutputDeliveryPermanentVsRetryable: the delivery rules for
// KafkaOutput. Records over max_record_bytes are permanent failures
// (engine.Permanent): dead-lettered at once, without engine retries.
// Produce errors the broker calls retryable (NOT_ENOUGH_REPLICAS for the
// first produce requests, outlasting record_retries and retries) are
// retried until the broker takes them and are never dead-lettered.
func TestKafkaOutputDeliveryPermanentVsRetryable(t *testing.T) {
	c := kfaketest.Start(t, 1, 1, []string{"big"})
	c2 := kfaketest.Start(t, 1, 1, []string{"small"}) // refuses its first produce requests
	var refused atomic.Int32
	c2.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c2.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if refused.Add(1) > 40 {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	dlq := mock.NewRecorder()
	reg := testRegistry(t, nil)
	if err := mock.RegisterRecorder(reg, "Dead", dlq); err != nil {
		t.Fatal(err)
	}
	r := startEngine(t, reg, fmt.Sprintf(`
inputs:
  - {name: bigsrc, class: MockInput, count: 20, payload: 4KiB}
  - {name: smallsrc, class: MockInput, count: 200, payload: 64}
outputs:
  - {name: outbig, class: KafkaOutput, match: [bigsrc], brokers: %[1]s, topic: big, max_record_bytes: 2KiB, retries: 5, retry_backoff: 1ms, dead_letter: dlq}
  - {name: outsmall, class: KafkaOutput, match: [smallsrc], brokers: %[2]s, topic: small, linger: 1ms, record_retries: 1, record_retry_backoff: 1ms, retries: 1, retry_backoff: 1ms, retry_backoff_max: 5ms, dead_letter: dlq}
  - {name: dlq, class: Dead}
`, c.SeedList(), c2.SeedList()), nil)
	r.wait(t, testenv.Scaled(60*time.Second))
	stats := map[string]engine.NodeSnapshot{}
	for _, s := range r.e.Stats() {
		stats[s.Name] = s
	}
	if dlq.Len() != 20 {
		t.Fatalf("dead-lettered %d, want the 20 too-large records only", dlq.Len())
	}
	if s := stats["outbig"]; s.Retries != 0 || s.DeadLettered != 20 {
		t.Fatalf("outbig: %d retries, %d dead-lettered; want 0 and 20", s.Retries, s.DeadLettered)
	}
	t.Logf("broker refused %d produce requests", refused.Load())
	if s := stats["outsmall"]; s.Out != 200 || s.Retries == 0 || s.DeadLettered != 0 {
		t.Fatalf("outsmall: delivered %d, %d retries, %d dead-lettered; want 200, >0, 0", s.Out, s.Retries, s.DeadLettered)
	}
	if refused.Load() < 40 {
		t.Fatalf("the broker refused only %d produce requests", refused.Load())
	}
}
