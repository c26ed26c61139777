package kafka

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
)

// Topic selection by pattern (KafkaInput topics_regex / exclude_topics).
// franz-go evaluates the patterns against every topic in each metadata
// response (ConsumeRegex), and the group leader reassigns when the
// matching set changes, so a topic created after start is consumed once
// the client's metadata is refreshed: within topics_refresh
// (MetadataMaxAge) of the topic's creation, plus a rebalance.

// anchor makes a pattern match whole topic names only.
func anchor(re string) string { return "^(?:" + re + ")$" }

// parseTopicRegex reads topics_regex and exclude_topics into in.regex
// (anchored) and checks that every pattern compiles.
func (in *Input) parseTopicRegex(c *engine.Conf) error {
	for _, re := range c.Strings("topics_regex") {
		if _, err := regexp.Compile(anchor(re)); err != nil {
			return c.Errorf("topics_regex", "%q: %v", re, err)
		}
		in.regex = append(in.regex, anchor(re))
	}
	for _, re := range c.Strings("exclude_topics") {
		if _, err := regexp.Compile(anchor(re)); err != nil {
			return c.Errorf("exclude_topics", "%q: %v", re, err)
		}
	}
	if len(in.regex) > 0 {
		if len(in.topics) > 0 {
			return c.Errorf("topics_regex", "topics and topics_regex exclude each other (a literal name is a pattern too: quote it with \\Q...\\E)")
		}
		if c.String("group") == "" {
			return c.Errorf("topics_regex", "topics_regex needs a consumer group (group): without one the partitions are fixed at start")
		}
	} else if len(c.Strings("exclude_topics")) > 0 {
		return c.Errorf("exclude_topics", "exclude_topics applies only with topics_regex")
	}
	return nil
}

// consumeTopicsOpts are the group consumer's topic options: names, or
// patterns with their exclusions.
func (in *Input) consumeTopicsOpts(c *engine.Conf) []kgo.Opt {
	if len(in.regex) == 0 {
		return []kgo.Opt{kgo.ConsumeTopics(in.topics...)}
	}
	opts := []kgo.Opt{kgo.ConsumeRegex(), kgo.ConsumeTopics(in.regex...)}
	var ex []string
	for _, re := range c.Strings("exclude_topics") {
		ex = append(ex, anchor(re))
	}
	if len(ex) > 0 {
		opts = append(opts, kgo.ConsumeExcludeTopics(ex...))
	}
	return opts
}

// Target topics created to match (KafkaOutput create_topics). Before the
// first record to a target topic, the output's Write goroutine describes
// the source topic (partitions, configs set on it) on the source cluster
// and the target topic on this one; a missing target is created with the
// same partition count and the source's topic_configs. A target that
// exists with fewer partitions while partitioner attr would keep
// partitions (on_missing_partition fail) fails its records with a
// permanent error that says how to fix it; the check is retried after
// topicRecheck. With on_missing_partition hash such a target is used (the
// documented fallback: missing partitions go to the key's partition).

// topicState is a target topic's check: nil error once it is usable.
type topicState struct {
	err error
	at  time.Time
}

// topicRecheck is how long a failed check of a target topic is reused
// before the clusters are asked again.
const topicRecheck = 10 * time.Second

// errFewerPartitions marks a target topic with fewer partitions than its
// source while partitioner attr keeps partitions.
var errFewerPartitions = errors.New("target topic has fewer partitions than its source")

// ensureTopic makes sure target topic tgt exists as its source topic src
// says. It runs on the Write goroutine and blocks it while it asks the
// clusters (once per topic).
func (m *mirrorState) ensureTopic(tgt, src string) error {
	if st, ok := m.topics[tgt]; ok && (st.err == nil || time.Since(st.at) < topicRecheck) {
		return st.err
	}
	err := m.checkTopic(tgt, src)
	if err != nil && !errors.Is(err, errFewerPartitions) && !engine.IsPermanent(err) {
		// Cluster trouble: retryable, asked again at the next record.
		return fmt.Errorf("create_topics %s (source %s): %w", tgt, src, err)
	}
	m.topics[tgt] = topicState{err: err, at: time.Now()}
	return err
}

func (m *mirrorState) checkTopic(tgt, src string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*m.o.cc.connectTimeout)
	defer cancel()
	std, err := m.srcAdm.ListTopics(ctx, src)
	if err != nil {
		return fmt.Errorf("describe source topic: %w", err)
	}
	sd, ok := std[src]
	if !ok || sd.Err != nil {
		if ok {
			err = sd.Err
		} else {
			err = kerr.UnknownTopicOrPartition
		}
		return fmt.Errorf("describe source topic %s: %w", src, err)
	}
	nsrc := int32(len(sd.Partitions))
	dtd, err := m.dstAdm.ListTopics(ctx, tgt)
	if err != nil {
		return fmt.Errorf("describe target topic: %w", err)
	}
	if td, ok := dtd[tgt]; ok && td.Err == nil {
		return m.checkPartitions(tgt, src, int32(len(td.Partitions)), nsrc)
	} else if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("describe target topic %s: %w", tgt, td.Err)
	}
	configs, err := m.sourceConfigs(ctx, src)
	if err != nil {
		return err
	}
	resp, err := m.dstAdm.CreateTopic(ctx, nsrc, m.replication, configs, tgt)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		// Created meanwhile (another mirror, auto creation): check it.
		dtd, err := m.dstAdm.ListTopics(ctx, tgt)
		if err != nil {
			return fmt.Errorf("describe target topic: %w", err)
		}
		return m.checkPartitions(tgt, src, int32(len(dtd[tgt].Partitions)), nsrc)
	}
	if err != nil {
		if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.InvalidConfig) || errors.Is(err, kerr.PolicyViolation) || errors.Is(err, kerr.InvalidReplicationFactor) {
			err = permanent(err)
		}
		return fmt.Errorf("create target topic %s (%d partitions, configs %s): %w", tgt, nsrc, configList(configs), err)
	}
	m.topicsCreated.Add(1)
	m.dstCl.PurgeTopicsFromClient(tgt) // forget the cached "unknown topic"
	m.o.log.Info("create_topics: created the target topic as its source", "topic", tgt, "source", src,
		"partitions", nsrc, "configs", configList(configs))
	return nil
}

// checkPartitions accepts an existing target with ntgt partitions for a
// source with nsrc.
func (m *mirrorState) checkPartitions(tgt, src string, ntgt, nsrc int32) error {
	if ntgt >= nsrc || m.o.mode != partAttr {
		return nil
	}
	if m.o.part.hashMissing {
		m.o.log.Warn("create_topics: target topic has fewer partitions than its source; records of the missing partitions go to their key's partition (on_missing_partition: hash)",
			"topic", tgt, "partitions", ntgt, "source", src, "source partitions", nsrc)
		return nil
	}
	return permanent(fmt.Errorf("%w: %s has %d, %s has %d, and partitioner attr keeps partitions: add partitions to the target (kafka-topics.sh --alter --topic %s --partitions %d) or set on_missing_partition: hash",
		errFewerPartitions, tgt, ntgt, src, nsrc, tgt, nsrc))
}

// sourceConfigs returns the topic_configs set on source topic src (not
// the broker's defaults).
func (m *mirrorState) sourceConfigs(ctx context.Context, src string) (map[string]*string, error) {
	out := map[string]*string{}
	if len(m.configs) == 0 {
		return out, nil
	}
	rcs, err := m.srcAdm.DescribeTopicConfigs(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("describe configs of source topic %s: %w", src, err)
	}
	rc, err := rcs.On(src, nil)
	if err != nil {
		return nil, fmt.Errorf("describe configs of source topic %s: %w", src, err)
	}
	want := map[string]bool{}
	for _, k := range m.configs {
		want[k] = true
	}
	for _, c := range rc.Configs {
		if want[c.Key] && c.Value != nil && !c.Sensitive && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			out[c.Key] = kadm.StringPtr(*c.Value)
		}
	}
	return out, nil
}

func configList(cs map[string]*string) string {
	keys := make([]string, 0, len(cs))
	for k := range cs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		if s != "" {
			s += ","
		}
		s += k + "=" + *cs[k]
	}
	return "{" + s + "}"
}
