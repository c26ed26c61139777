package kafka

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kgo"

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
