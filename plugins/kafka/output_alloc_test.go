package kafka

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

type nopCompletion struct {
	n   int
	err error
}

func (c *nopCompletion) Done(err error) { c.n++; c.err = err }

func dryOutput(t testing.TB, vals map[string]any) *Output {
	reg := engine.NewRegistry()
	Register(reg)
	base := map[string]any{"brokers": []string{"127.0.0.1:1"}, "check_seeds": false, "dryrun_partitions": 6}
	for k, v := range vals {
		base[k] = v
	}
	c, err := engine.NewConf(reg, "out", "KafkaOutput", base)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutput(c)
	if err != nil {
		t.Fatal(err)
	}
	o.SetDryRun(true)
	return o
}

func testBatch(n int) []*pack.Packet {
	batch := make([]*pack.Packet, n)
	for i := range batch {
		p := &pack.Packet{}
		p.Payload = append(p.Payload, make([]byte, 128)...)
		p.Key = strconv.AppendInt(append(p.Key, 'k'), int64(i%50), 10)
		p.Ts = time.Now().UnixNano()
		p.Attrs.SetString("db", "shop")
		p.Attrs.SetString("table", "t"+strconv.Itoa(i%4))
		p.Attrs.SetString("kafka.header.trace", "abc")
		p.Attrs.SetInt("kafka.partition", int64(i%6))
		batch[i] = p
	}
	return batch
}

// dbus's own encode + partition path allocates nothing per record in
// steady state (dry run: everything but the client's Produce).
func TestKafkaOutputEncodeAllocs(t *testing.T) {
	for _, vals := range []map[string]any{
		{"topic": "{db}.{table}", "origin_id": "dcA", "cluster_id": "dcB"},
		{"topic": "fixed", "partitioner": "attr"},
		{"topic": "fixed", "partitioner": "round_robin", "header_attrs": []string{"db"}},
	} {
		o := dryOutput(t, vals)
		batch := testBatch(256)
		var c nopCompletion
		o.WriteAsync(t.Context(), batch, &c) // warm up
		allocs := testing.AllocsPerRun(200, func() { o.WriteAsync(t.Context(), batch, &c) })
		if c.err != nil {
			t.Fatalf("%v: %v", vals, c.err)
		}
		if allocs != 0 {
			t.Fatalf("%v: %v allocations per batch of 256 in dbus's encode path, want 0", vals, allocs)
		}
	}
}

// Loop prevention: a record bearing the destination's mark is skipped
// and counted; others get the origin mark.
func TestKafkaOutputLoopPrevention(t *testing.T) {
	o := dryOutput(t, map[string]any{"topic": "t", "origin_id": "dcA", "cluster_id": "dcB"})
	batch := testBatch(4)
	batch[1].Attrs.SetString("kafka.header.dbus-origin", "dcB")
	batch[2].Attrs.SetString("kafka.header.dbus-origin", "dcC")
	var c nopCompletion
	o.WriteAsync(t.Context(), batch, &c)
	if c.n != 1 || c.err != nil {
		t.Fatalf("completion %d times, err %v", c.n, c.err)
	}
	if s := o.Stats(); s.SkippedLoop != 1 {
		t.Fatalf("skipped %d, want 1", s.SkippedLoop)
	}
	r0, r2 := recordFor(t, o, batch[0]), recordFor(t, o, batch[2])
	if h := header(r0, "dbus-origin"); h != "dcA" {
		t.Fatalf("unmarked record got origin %q, want dcA", h)
	}
	if h := header(r2, "dbus-origin"); h != "dcC" {
		t.Fatalf("record from dcC got origin %q, want it kept", h)
	}
}

func recordFor(t *testing.T, o *Output, p *pack.Packet) *kgo.Record {
	var r kgo.Record
	skip, err := o.build(&r, p)
	if skip || err != nil {
		t.Fatalf("build: skip %v err %v", skip, err)
	}
	return &r
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// Too-large records fail with a reason that names the limit and is not
// retryable.
func TestKafkaOutputTooLargeReason(t *testing.T) {
	o := dryOutput(t, map[string]any{"topic": "t", "max_record_bytes": 100})
	batch := testBatch(2)
	var c nopCompletion
	o.WriteAsync(t.Context(), batch, &c)
	be, ok := c.err.(*engine.BatchError)
	if !ok || be.Errs[0] == nil || !Permanent(be.Errs[0]) || isRetryable(be.Errs[0]) {
		t.Fatalf("want a permanent per-packet error, got %v", c.err)
	}
	if msg := be.Errs[0].Error(); !strings.Contains(msg, "max_record_bytes") || !strings.Contains(msg, "> 100") {
		t.Fatalf("reason %q", msg)
	}
}
