package kafka

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// buildErr parses and constructs a config the way dbusd -t does and
// returns the error.
func buildErr(t *testing.T, yaml string) error {
	t.Helper()
	reg := testRegistry(t, nil)
	cfg, err := engine.Parse("bad.yaml", []byte(yaml), reg)
	if err != nil {
		return err
	}
	_, err = engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	return err
}

func TestKafkaConfigErrors(t *testing.T) {
	// A listening socket stands in for a reachable seed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ok := ln.Addr().String()
	// A port nobody listens on.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	out := func(fields string) string {
		return fmt.Sprintf("inputs:\n  - {name: src, class: MockInput, count: 1}\noutputs:\n  - {name: out, class: KafkaOutput, match: [src], %s}\n", fields)
	}
	cases := []struct{ name, yaml, want string }{
		{"bad compression", out("brokers: [" + ok + "], topic: t, compression: brotli"), "unknown compression \"brotli\""},
		{"bad template", out("brokers: [" + ok + "], topic: \"{db.{table}\""), "topic"},
		{"bad template char", out("brokers: [" + ok + "], topic: \"a/{table}\""), "not allowed"},
		{"unclosed template", out("brokers: [" + ok + "], topic: \"x.{table\""), "not closed"},
		{"unreachable seeds", out("brokers: [" + deadAddr + "], topic: t, connect_timeout: 1s"), "no seed broker reachable"},
		{"seed not host:port", out("brokers: [localhost], topic: t"), "not host:port"},
		{"missing brokers", out("topic: t"), "brokers"},
		{"max record over batch", out("brokers: [" + ok + "], topic: t, max_record_bytes: 2MiB"), "larger than batch_bytes"},
		{"bad partitioner", out("brokers: [" + ok + "], topic: t, partitioner: hash"), "partitioner"},
		{"bad profile", out("brokers: [" + ok + "], topic: t, profile: fast"), "profile"},
		{"input bad start", "inputs:\n  - {name: src, class: KafkaInput, brokers: [" + ok + "], topics: [a], start: middle}\noutputs:\n  - {name: o, class: MockOutput, match: [src]}\n", "start"},
		{"input group and partitions", "inputs:\n  - {name: src, class: KafkaInput, brokers: [" + ok + "], topics: [a], group: g, partitions: [0]}\noutputs:\n  - {name: o, class: MockOutput, match: [src]}\n", "exclude each other"},
		{"input unreachable", "inputs:\n  - {name: src, class: KafkaInput, brokers: [" + deadAddr + "], topics: [a], connect_timeout: 1s}\noutputs:\n  - {name: o, class: MockOutput, match: [src]}\n", "no seed broker reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := buildErr(t, tc.yaml)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "bad.yaml:") {
				t.Fatalf("error %q is not located in the file", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// The same output with good values builds.
	if err := buildErr(t, out("brokers: ["+ok+"], topic: \"{db}.{table}\", compression: zstd, profile: latency")); err != nil {
		t.Fatalf("good config rejected: %v", err)
	}
}

// Start fails within connect_timeout when the seed accepts TCP but never
// speaks Kafka (or went away after -t).
func TestKafkaStartUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	reg := testRegistry(t, nil)
	c, err := engine.NewConf(reg, "out", "KafkaOutput", map[string]any{"brokers": []string{ln.Addr().String()}, "topic": "t", "connect_timeout": 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutput(c)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = o.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Kafka seed brokers") {
		t.Fatalf("Start: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Start took %v with a 500ms connect_timeout", d)
	}
}
