package kafka

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
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

// endOffsets is kfaketest.EndOffsets through a client that never creates
// the topic it asks about.
func endOffsets(t *testing.T, seeds []string, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	out := map[int32]int64{}
	if err != nil {
		return out
	}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
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
		return sumOffsets(endOffsets(t, b.Seeds, "dcA.app.orders")) == 200
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
		return sumOffsets(endOffsets(t, b.Seeds, "dcA.app.payments")) == 100
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

// TestKafkaMirrorCreateTopics: with create_topics a missing target topic
// is created before the first record with its source's partition count
// (6, where the target's automatic creation would give 4) and the configs
// set on the source topic; a target that exists with fewer partitions
// fails its records with a permanent error naming both counts (to the
// dead letter output), while on_missing_partition hash uses it.
func TestKafkaMirrorCreateTopics(t *testing.T) {
	a := kfaketest.Start(t, 1, 4, nil)
	b := kfaketest.Start(t, 1, 4, nil)
	ctx := context.Background()
	admA := kadm.NewClient(kfaketest.Client(t, a.Seeds))
	admB := kadm.NewClient(kfaketest.Client(t, b.Seeds))
	for _, topic := range []string{"events", "narrow"} {
		if _, err := admA.CreateTopic(ctx, 6, 1, map[string]*string{
			"retention.ms": kadm.StringPtr("3600000"), "compression.type": kadm.StringPtr("zstd"), "cleanup.policy": kadm.StringPtr("compact,delete"),
		}, topic); err != nil {
			t.Fatalf("create %s on A: %v", topic, err)
		}
	}
	if _, err := admB.CreateTopic(ctx, 2, 1, nil, "dcA.narrow"); err != nil {
		t.Fatal(err)
	}
	src := kfaketest.Client(t, a.Seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 600; i++ {
		for _, topic := range []string{"events", "narrow"} {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 6), Key: fmt.Appendf(nil, "k%d", i), Value: kfaketest.Payload(topic, i, 64)})
		}
	}
	kfaketest.Produce(t, src, recs...)
	for _, mode := range []string{"fail", "hash"} {
		t.Run(mode, func(t *testing.T) {
			dlq := mock.NewRecorder()
			r := startEngine(t, testRegistry(t, dlq), fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: from_a, class: KafkaInput, brokers: %s, group: mirror-%s, topics: [events, narrow], session_timeout: 6s}
outputs:
  - {name: to_b, class: KafkaOutput, match: [from_a], brokers: %s, topic: "dcA.{kafka.topic}", partitioner: attr, on_missing_partition: %s, create_topics: true, linger: 1ms, dead_letter: dlq}
  - {name: dlq, class: Recorder}
`, a.SeedList(), mode, b.SeedList(), mode), nil)
			if mode == "fail" {
				testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
					return sumOffsets(endOffsets(t, b.Seeds, "dcA.events")) == 600 && dlq.Len() == 600
				}, "events mirrored, narrow's records dead-lettered (events %v, %d dead letters)", endOffsets(t, b.Seeds, "dcA.events"), dlq.Len())
			} else {
				testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
					return sumOffsets(endOffsets(t, b.Seeds, "dcA.narrow")) == 600
				}, "narrow mirrored into 2 partitions by key")
			}
			var out engine.NodeSnapshot
			for _, s := range r.e.Stats() {
				if s.Name == "to_b" {
					out = s
				}
			}
			r.stop(t)
			if mode == "hash" {
				if dlq.Len() != 0 {
					t.Fatalf("%d dead letters with on_missing_partition hash", dlq.Len())
				}
				return
			}
			if !strings.Contains(out.LastError, "dcA.narrow has 2, narrow has 6") || !strings.Contains(out.LastError, "--partitions 6") {
				t.Fatalf("last error %q does not name the partition counts and the fix", out.LastError)
			}
			td, err := admB.ListTopics(ctx, "dcA.events")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(td["dcA.events"].Partitions); n != 6 {
				t.Fatalf("dcA.events has %d partitions, want the source's 6", n)
			}
			rc, err := admB.DescribeTopicConfigs(ctx, "dcA.events")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			cfgs, _ := rc.On("dcA.events", nil)
			for _, c := range cfgs.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					got[c.Key] = c.MaybeValue()
				}
			}
			want := map[string]string{"retention.ms": "3600000", "compression.type": "zstd", "cleanup.policy": "compact,delete"}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("dcA.events config %s = %q, want %q (topic configs %v)", k, got[k], v, got)
				}
			}
			// Records keep their partition.
			for _, rec := range kfaketest.ConsumeN(t, b.Seeds, 600, testenv.Scaled(20*time.Second), "dcA.events") {
				var i int
				fmt.Sscanf(string(rec.Value), "events-%d", &i)
				if rec.Partition != int32(i%6) {
					t.Fatalf("record %d in partition %d, want %d", i, rec.Partition, i%6)
				}
			}
		})
	}
}

// committed is kfaketest.Committed, empty while the group does not exist.
func committed(t *testing.T, seeds []string, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[int32]int64{}
	os, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return out
	}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// consumeGroup reads topic as a member of group from its committed
// offsets until it has at least n records or nothing more comes within
// idle, commits what it read, leaves the group and returns the values.
func consumeGroup(t *testing.T, seeds []string, group, topic string, n int, idle time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < n {
		wait := idle
		if len(got) == 0 {
			wait = testenv.Scaled(20 * time.Second) // joining the group
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollRecords(ctx, n-len(got))
		cancel()
		recs := fs.Records()
		if len(recs) == 0 && ctx.Err() != nil {
			break
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
	return got
}

// TestKafkaMirrorSyncGroups: a consumer reads half of a topic on A and
// commits; the mirror translates the group's offsets to B (renamed
// topic) and commits them there; the consumer fails over to B and resumes
// from the translated offsets: together the two runs see every record at
// least once, and B's run does not start from the beginning. A restarted
// mirror reads its offset syncs back and still translates a group
// committed at the end.
func TestKafkaMirrorSyncGroups(t *testing.T) {
	a := kfaketest.Start(t, 1, 3, []string{"orders"})
	b := kfaketest.Start(t, 1, 3, nil)
	const n = 900
	src := kfaketest.Client(t, a.Seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: kfaketest.Payload("o", i, 32)})
	}
	kfaketest.Produce(t, src, recs...)
	seenA := consumeGroup(t, a.Seeds, "app", "orders", n/2, testenv.Scaled(10*time.Second))
	if len(seenA) < n/2 {
		t.Fatalf("the consumer on A read %d records, want %d", len(seenA), n/2)
	}
	committedA := kfaketest.Committed(t, a.Seeds, "app", "orders")
	yaml := fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: from_a, class: KafkaInput, brokers: %s, group: mirror, topics: [orders], session_timeout: 6s}
outputs:
  - {name: to_b, class: KafkaOutput, match: [from_a], brokers: %s, topic: "dcA.{kafka.topic}", partitioner: attr, create_topics: true, sync_groups: ['app', 'late.*'], sync_groups_interval: 100ms, linger: 1ms}
`, a.SeedList(), b.SeedList())
	r := startEngine(t, testRegistry(t, nil), yaml, nil)
	var translated map[int32]int64
	testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
		translated = committed(t, b.Seeds, "app", "dcA.orders")
		return len(translated) == len(committedA)
	}, "group app's offsets translated to B (A committed %v, B has %v)", committedA, translated)
	// Never past what A's consumer read (here the target offsets equal the
	// source's: the mirror started on an empty target).
	for p, at := range translated {
		if at > committedA[p] || at <= 0 {
			t.Fatalf("partition %d: translated offset %d, A's committed %d", p, at, committedA[p])
		}
	}
	t.Logf("A committed %v, B got %v", committedA, translated)
	// Fail over: the consumer resumes on B.
	seenB := consumeGroup(t, b.Seeds, "app", "dcA.orders", n, testenv.Scaled(3*time.Second))
	all := map[string]bool{}
	for _, v := range append(seenA, seenB...) {
		all[v] = true
	}
	if len(all) != n {
		t.Fatalf("A and B together saw %d distinct records of %d (A %d, B %d)", len(all), n, len(seenA), len(seenB))
	}
	if len(seenB) >= n {
		t.Fatalf("B's consumer read %d records: it started from the beginning", len(seenB))
	}
	t.Logf("failover: A read %d, B read %d (%d again)", len(seenA), len(seenB), len(seenA)+len(seenB)-n)
	// The consumer on B committed past the translated offsets: later
	// rounds never move the group back.
	atB := committed(t, b.Seeds, "app", "dcA.orders")
	testenv.Never(t, time.Second, func() bool {
		now := committed(t, b.Seeds, "app", "dcA.orders")
		return now[0] != atB[0] || now[1] != atB[1] || now[2] != atB[2]
	}, "group app moved on B after the consumer there committed %v", atB)
	// The mirror's own group is never synced.
	if got := committed(t, b.Seeds, "mirror", "dcA.orders"); len(got) != 0 {
		t.Fatalf("the mirror's own group was synced to B: %v", got)
	}
	r.stop(t)

	// A group committed at the end, translated by a restarted mirror
	// from the offset syncs it wrote (nothing new is mirrored).
	if got := consumeGroup(t, a.Seeds, "late1", "orders", n, testenv.Scaled(3*time.Second)); len(got) != n {
		t.Fatalf("group late1 read %d of %d records on A", len(got), n)
	}
	r = startEngine(t, testRegistry(t, nil), yaml, nil)
	end := endOffsets(t, b.Seeds, "dcA.orders")
	var late map[int32]int64
	testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
		late = committed(t, b.Seeds, "late1", "dcA.orders")
		return len(late) == 3 && late[0] == end[0] && late[1] == end[1] && late[2] == end[2]
	}, "group late1 translated to B's end offsets %v after a restart: %v", end, late)
	r.stop(t)
}

// TestKafkaMirrorLagAndLatency: while the target acknowledges slowly the
// mirror reports a replication lag per source partition in records and
// seconds; once caught up the lag is 0 and the end-to-end latency
// (source timestamp -> target ack) of hour-old records is about an hour,
// counted for every record.
func TestKafkaMirrorLagAndLatency(t *testing.T) {
	a := kfaketest.Start(t, 1, 3, []string{"orders"})
	b := kfaketest.Start(t, 1, 3, []string{"orders"})
	var slow atomic.Bool
	slow.Store(true)
	b.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.KeepControl()
		if slow.Load() {
			b.SleepControl(func() { time.Sleep(20 * time.Millisecond) })
		}
		return nil, nil, false
	})
	const n = 3000
	old := time.Now().Add(-time.Hour)
	src := kfaketest.Client(t, a.Seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: kfaketest.Payload("o", i, 32), Timestamp: old}
	}
	kfaketest.Produce(t, src, recs...)
	r := startEngine(t, testRegistry(t, nil), fmt.Sprintf(`
engine: {checkpoint_interval: 50ms, batch: 16}
inputs:
  - {name: from_a, class: KafkaInput, brokers: %s, group: mirror, topics: [orders], max_poll_records: 64, pool: 64}
outputs:
  - {name: to_b, class: KafkaOutput, match: [from_a], brokers: %s, topic: "{kafka.topic}", partitioner: attr, linger: 0s, in_flight: 2}
`, a.SeedList(), b.SeedList()), nil)
	out := func() engine.NodeSnapshot {
		for _, s := range r.e.Stats() {
			if s.Name == "to_b" {
				return s
			}
		}
		t.Fatal("no stats for to_b")
		return engine.NodeSnapshot{}
	}
	series := func(s engine.NodeSnapshot, name string) (sum float64, parts int) {
		for _, m := range s.Metrics {
			if m.Name == name {
				sum += m.Value
				parts++
			}
		}
		return sum, parts
	}
	var behind engine.NodeSnapshot
	testenv.Eventually(t, testenv.Scaled(20*time.Second), func() bool {
		behind = out()
		recs, _ := series(behind, "dbus_kafka_mirror_lag_records")
		return recs > 0
	}, "a replication lag while the target is slow")
	if secs, _ := series(behind, "dbus_kafka_mirror_lag_seconds"); secs < 3000 {
		t.Fatalf("lag seconds %v while behind, want the age of hour-old records (%+v)", secs, behind.Metrics)
	}
	slow.Store(false)
	var last engine.NodeSnapshot
	testenv.Eventually(t, testenv.Scaled(30*time.Second), func() bool {
		last = out()
		recs, parts := series(last, "dbus_kafka_mirror_lag_records")
		secs, _ := series(last, "dbus_kafka_mirror_lag_seconds")
		count, _ := series(last, "dbus_kafka_mirror_latency_records_total")
		return parts == 3 && recs == 0 && secs == 0 && count == n
	}, "lag 0 on 3 partitions and %d latencies counted once caught up", n)
	sum, _ := series(last, "dbus_kafka_mirror_latency_seconds_total")
	if mean := sum / n; mean < 3600 || mean > 3700 {
		t.Fatalf("mean end-to-end latency %v s, want about an hour", mean)
	}
	lastLat, parts := series(last, "dbus_kafka_mirror_last_latency_seconds")
	if parts != 3 || lastLat/3 < 3600 {
		t.Fatalf("last latency per partition: sum %v over %d partitions", lastLat, parts)
	}
	r.stop(t)
}
