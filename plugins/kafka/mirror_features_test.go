package kafka

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// produceN writes n records numbered from..from+n-1 to topic, key k<i%17>.
func produceN(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", (from+i)%17), Value: kfaketest.Payload(topic, from+i, 64)}
	}
	kfaketest.Produce(t, cl, recs...)
}

// TestKafkaMirrorTopicsRegex: a mirror selecting topics by pattern
// mirrors a topic created on the source after it started (found within
// topics_refresh), and never one that exclude_topics names.
func TestKafkaMirrorTopicsRegex(t *testing.T) {
	a := kfaketest.Start(t, 1, 3, []string{"app.orders", "other"})
	b := kfaketest.Start(t, 1, 3, nil)
	src := kfaketest.Client(t, a.Seeds)
	produceN(t, src, "app.orders", 0, 200)
	produceN(t, src, "other", 0, 50)
	r := startEngine(t, testRegistry(t, nil), fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: from_a, class: KafkaInput, brokers: %s, group: mirror, topics_regex: ['app\..*'], exclude_topics: ['app\.secret.*'], topics_refresh: 300ms, session_timeout: 6s, fetch_max_wait: 200ms}
outputs:
  - {name: to_b, class: KafkaOutput, match: [from_a], brokers: %s, topic: "dcA.{kafka.topic}", partitioner: attr, linger: 1ms}
`, a.SeedList(), b.SeedList()), nil)
	t0 := time.Now()
	testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
		return sumOffsets(kfaketest.EndOffsets(t, b.Seeds, "dcA.app.orders")) == 200
	}, "app.orders mirrored")
	t.Logf("first topic mirrored after %v", time.Since(t0))
	if got := kfaketest.ConsumeN(t, b.Seeds, 200, testenv.Scaled(20*time.Second), "dcA.app.orders"); len(got) != 200 {
		t.Fatalf("mirrored %d of app.orders' 200 records", len(got))
	}
	// Created after start: mirrored without a restart.
	created := time.Now()
	produceN(t, src, "app.payments", 0, 100)
	produceN(t, src, "app.secret", 0, 100)
	testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
		return sumOffsets(kfaketest.EndOffsets(t, b.Seeds, "dcA.app.payments")) == 100
	}, "the topic created after start mirrored")
	t.Logf("new topic mirrored %v after its creation (topics_refresh 300ms, fetch_max_wait 200ms)", time.Since(created).Round(time.Millisecond))
	got := kfaketest.ConsumeN(t, b.Seeds, 100, testenv.Scaled(30*time.Second), "dcA.app.payments")
	if len(got) != 100 {
		t.Fatalf("mirrored %d of the new topic's 100 records", len(got))
	}
	for _, g := range got {
		if !strings.HasPrefix(string(g.Value), "app.payments-") {
			t.Fatalf("unexpected record %q", g.Value)
		}
	}
	r.stop(t)
	topics := kfaketest.Topics(t, b.Seeds)
	for _, tp := range topics {
		if tp == "dcA.other" || tp == "dcA.app.secret" {
			t.Fatalf("topic %s was mirrored; target topics %v", tp, topics)
		}
	}
}

// TestKafkaMirrorConfigErrors: the mirror options refuse what cannot work,
// naming the key.
func TestKafkaMirrorConfigErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ok := ln.Addr().String()
	in := func(fields string) string {
		return fmt.Sprintf("inputs:\n  - {name: src, class: KafkaInput, brokers: [%s], %s}\noutputs:\n  - {name: o, class: MockOutput, match: [src]}\n", ok, fields)
	}
	cases := []struct{ name, yaml, want string }{
		{"regex without group", in("topics_regex: ['a.*']"), "needs a consumer group"},
		{"regex and topics", in("topics: [a], topics_regex: ['a.*'], group: g"), "exclude each other"},
		{"bad regex", in("topics_regex: ['a('], group: g"), "topics_regex"},
		{"exclude without regex", in("topics: [a], exclude_topics: ['b'], group: g"), "only with topics_regex"},
		{"no topics", in("group: g"), "topics_regex) is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := buildErr(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
