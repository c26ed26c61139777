package kafka

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// TestKafkaOutputConformance runs the engine's output conformance suite
// against a broker over TCP: every packet produced once per orderly round,
// the checkpoint at the last, and a restarted pipeline resumes after it.
func TestKafkaOutputConformance(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"conf"})
	reg := engine.NewRegistry()
	Register(reg)
	enginetest.TestOutput(t, enginetest.OutputCase{
		Registry: reg,
		Output:   fmt.Sprintf("class: KafkaOutput, brokers: %s, topic: conf, linger: 1ms", c.SeedList()),
		Received: func(t testing.TB) map[int64]int {
			var n int64
			for _, end := range kfaketest.EndOffsets(t, c.Seeds, "conf") {
				n += end
			}
			got := map[int64]int{}
			for _, r := range kfaketest.ConsumeN(t, c.Seeds, int(n), testenv.Scaled(20*time.Second), "conf") {
				if seq, ok := enginetest.ParseSeq(r.Value); ok {
					got[seq]++
				}
			}
			return got
		},
	})
}

// TestKafkaInputConformance runs the input conformance suite: every record
// of the topic is delivered; after a restart, records produced meanwhile
// arrive (a consumer group may re-deliver what was not yet committed:
// duplicates allowed, loss never).
func TestKafkaInputConformance(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"in"})
	reg := engine.NewRegistry()
	Register(reg)
	cl := kfaketest.Client(t, c.Seeds)
	enginetest.TestInput(t, enginetest.InputCase{
		Registry: reg,
		Input:    fmt.Sprintf("class: KafkaInput, brokers: %s, topics: [in], group: conformance", c.SeedList()),
		Produce: func(t testing.TB, from, to int) {
			recs := make([]*kgo.Record, 0, to-from)
			for i := from; i < to; i++ {
				recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(i % 7)), Value: fmt.Appendf(nil, "record %d", i)})
			}
			kfaketest.Produce(t, cl, recs...)
		},
		ID: func(p []byte) (int, bool) {
			n, err := strconv.Atoi(string(bytes.TrimPrefix(p, []byte("record "))))
			return n, err == nil
		},
		AllowDuplicates: true,
	})
}
