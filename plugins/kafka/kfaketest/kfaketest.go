package kfaketest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a kfake cluster with its seed list.
type Cluster struct {
	*kfake.Cluster
	Seeds []string
}

// Start starts a cluster with nbrokers brokers, auto topic creation, and
// the given topics seeded with partitions each. It is closed at cleanup.
func Start(tb testing.TB, nbrokers int, partitions int32, topics []string, opts ...kfake.Opt) *Cluster {
	tb.Helper()
	c, err := kfake.NewCluster(append(clusterOpts(nbrokers, partitions, topics), opts...)...)
	if err != nil {
		tb.Fatalf("start kfake cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return &Cluster{Cluster: c, Seeds: c.ListenAddrs()}
}

// clusterOpts are the options of a cluster of nbrokers brokers with auto
// topic creation and topics seeded with partitions each.
func clusterOpts(nbrokers int, partitions int32, topics []string) []kfake.Opt {
	o := []kfake.Opt{kfake.NumBrokers(nbrokers), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions))}
	if len(topics) > 0 {
		o = append(o, kfake.SeedTopics(partitions, topics...))
	}
	return o
}

// SeedList returns the seeds as a YAML flow list: [a, b].
func (c *Cluster) SeedList() string { return "[" + strings.Join(c.Seeds, ", ") + "]" }

// Client returns a client of the cluster, closed at cleanup.
func Client(tb testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		tb.Fatalf("kafka client: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Produce writes recs synchronously.
func Produce(tb testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		tb.Fatalf("produce: %v", err)
	}
}

// ConsumeN reads topics from the start until n records arrived or timeout.
func ConsumeN(tb testing.TB, seeds []string, n int, timeout time.Duration, topics ...string) []*kgo.Record {
	tb.Helper()
	cl := Client(tb, seeds, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		f.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	cl.Close()
	return out
}

// EndOffsets returns the end offset of every partition of topic.
func EndOffsets(tb testing.TB, seeds []string, topic string) map[int32]int64 {
	tb.Helper()
	adm := kadm.NewClient(Client(tb, seeds))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// Committed returns the group's committed offsets of topic.
func Committed(tb testing.TB, seeds []string, group, topic string) map[int32]int64 {
	tb.Helper()
	adm := kadm.NewClient(Client(tb, seeds))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		tb.Fatalf("committed offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// Payload is the test payload of record i: "<prefix>-<i>" padded with '.'
// to size bytes.
func Payload(prefix string, i, size int) []byte {
	b := fmt.Appendf(nil, "%s-%d", prefix, i)
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

// Topics returns the names of the cluster's topics.
func Topics(tb testing.TB, seeds []string) []string {
	tb.Helper()
	adm := kadm.NewClient(Client(tb, seeds))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx)
	if err != nil {
		tb.Fatalf("list topics: %v", err)
	}
	return td.Names()
}
