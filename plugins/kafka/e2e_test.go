package kafka

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// testRegistry holds Kafka, the mock plugins and, when rec is set, a
// recorder output class "Recorder".
func testRegistry(t testing.TB, rec *mock.Recorder) *engine.Registry {
	reg := engine.NewRegistry()
	Register(reg)
	mock.Register(reg)
	if rec != nil {
		if err := mock.RegisterRecorder(reg, "Recorder", rec); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// running is an engine started in the background.
type running struct {
	e      *engine.Engine
	cancel context.CancelFunc
	done   chan error
}

func startEngine(t testing.TB, reg *engine.Registry, yaml string, store engine.CheckpointStore) *running {
	t.Helper()
	cfg, err := engine.Parse("test.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	if store == nil {
		store = engine.NewMemoryStore()
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the engine and waits for its orderly shutdown.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil && err != context.Canceled {
			t.Errorf("engine run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("engine did not stop within 60s")
	}
}

// wait waits for Run to return by itself (inputs exhausted).
func (r *running) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("engine run: %v", err)
		}
		r.cancel()
		r.cancel = nil
	case <-time.After(d):
		t.Fatalf("engine did not finish within %v", d)
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, cond, "waiting for %s", what)
}

// mockSeq parses the sequence of a MockInput payload "<stream>:<seq>xxx".
func mockSeq(t testing.TB, payload []byte) int {
	i := bytes.IndexByte(payload, ':')
	j := bytes.IndexByte(payload, 'x')
	if j < 0 {
		j = len(payload)
	}
	n, err := strconv.Atoi(string(payload[i+1 : j]))
	if i < 0 || err != nil {
		t.Fatalf("bad mock payload %q", payload)
	}
	return n
}

// checkMockDelivery checks that records hold every mock sequence 0..n-1
// at least once, with the mock's key, on the key's Java partition, in
// per-key order. It returns the number of duplicates.
func checkMockDelivery(t testing.TB, recs []*kgo.Record, n, keys, partitions int) int {
	t.Helper()
	seen := make([]int, n)
	lastPerKey := map[string]int{}
	dups := 0
	for _, r := range recs {
		seq := mockSeq(t, r.Value)
		if seq >= n {
			t.Fatalf("unexpected seq %d", seq)
		}
		seen[seq]++
		if seen[seq] > 1 {
			dups++
		}
		if keys > 0 {
			wantKey := "k" + strconv.Itoa(seq%keys)
			if string(r.Key) != wantKey {
				t.Fatalf("seq %d: key %q, want %q", seq, r.Key, wantKey)
			}
			if partitions > 0 && int(r.Partition) != javaPartition(r.Key, partitions) {
				t.Fatalf("key %q on partition %d, Java partitioner says %d", r.Key, r.Partition, javaPartition(r.Key, partitions))
			}
			// Per-key order: within a partition, records come back in
			// offset order; a key's sequence must not go backwards
			// except for a duplicate re-send.
			if last, ok := lastPerKey[wantKey]; ok && seq < last && seen[seq] == 1 {
				t.Fatalf("key %s: seq %d after %d (order broken)", wantKey, seq, last)
			}
			lastPerKey[wantKey] = max(lastPerKey[wantKey], seq)
		}
	}
	missing := 0
	for i, c := range seen {
		if c == 0 {
			if missing < 5 {
				t.Errorf("seq %d never arrived", i)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d records lost", missing, n)
	}
	return dups
}

// TestKafkaOutputEndToEnd runs with the default compression (none). It
// used lz4 and took 16-57 s under -race (0.1 s without), failing 3 of 10
// runs: not a stall in dbus but the race detector's cost of lz4's 4 MiB
// block buffers. lz4 takes them from a sync.Pool per compressed batch, and
// under -race sync.Pool drops a quarter of Puts on purpose, so most
// batches allocated and zeroed 4 MiB, every byte instrumented (81 % of CPU
// in __tsan::MemoryAccessRangeT). Codecs are covered, with fewer records,
// by TestKafkaOutputCompressionCodecs.
func TestKafkaOutputEndToEnd(t *testing.T) {
	c := kfaketest.Start(t, 3, 6, []string{"out"})
	const n, keys = 20000, 97
	reg := testRegistry(t, nil)
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: MockInput, count: %d, keys: %d, payload: 100}
outputs:
  - name: out
    class: KafkaOutput
    match: [src]
    in_flight: 4
    brokers: %s
    topic: out
    linger: 2ms
`, n, keys, c.SeedList()), nil)
	r.wait(t, testenv.Scaled(60*time.Second))
	recs := kfaketest.ConsumeN(t, c.Seeds, n, testenv.Scaled(20*time.Second), "out")
	if len(recs) != n {
		t.Fatalf("consumed %d records, want %d", len(recs), n)
	}
	if d := checkMockDelivery(t, recs, n, keys, 6); d != 0 {
		t.Fatalf("%d duplicates without any failure", d)
	}
	for _, rec := range recs[:10] {
		if rec.Timestamp.IsZero() || len(rec.Value) != 100 {
			t.Fatalf("record %v: timestamp or value size wrong", rec)
		}
	}
}

// TestKafkaOutputCompressionCodecs round-trips every codec through a real
// broker connection: records consumed back (decompressed by the client)
// equal what was sent, none lost or duplicated.
func TestKafkaOutputCompressionCodecs(t *testing.T) {
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			c := kfaketest.Start(t, 1, 3, []string{"out"})
			const n, keys = 1500, 13
			reg := testRegistry(t, nil)
			r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: MockInput, count: %d, keys: %d, payload: 300}
outputs:
  - {name: out, class: KafkaOutput, match: [src], brokers: %s, topic: out, linger: 5ms, compression: %s}
`, n, keys, c.SeedList(), codec), nil)
			r.wait(t, testenv.Scaled(60*time.Second))
			recs := kfaketest.ConsumeN(t, c.Seeds, n, testenv.Scaled(20*time.Second), "out")
			if len(recs) != n {
				t.Fatalf("%s: consumed %d records, want %d", codec, len(recs), n)
			}
			if d := checkMockDelivery(t, recs, n, keys, 3); d != 0 {
				t.Fatalf("%s: %d duplicates without any failure", codec, d)
			}
			for _, rec := range recs {
				if len(rec.Value) != 300 {
					t.Fatalf("%s: record value of %d bytes, want 300", codec, len(rec.Value))
				}
			}
		})
	}
}

func TestKafkaOutputTopicTemplateHeadersAndTooLarge(t *testing.T) {
	c := kfaketest.Start(t, 1, 2, nil)
	// Source records with db/table headers, a too-large one, and one
	// without the template's attribute: the bad ones go to the dead
	// letter output with their reason.
	src := kfaketest.Client(t, c.Seeds)
	var recs []*kgo.Record
	for i := 0; i < 100; i++ {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i)), Value: kfaketest.Payload("v", i, 50),
			Headers: []kgo.RecordHeader{{Key: "db", Value: []byte("shop")}, {Key: "table", Value: []byte("t" + strconv.Itoa(i%3))}}})
	}
	recs = append(recs, &kgo.Record{Topic: "in", Value: bytes.Repeat([]byte("L"), 3000),
		Headers: []kgo.RecordHeader{{Key: "db", Value: []byte("shop")}, {Key: "table", Value: []byte("big")}}})
	recs = append(recs, &kgo.Record{Topic: "in", Value: []byte("no-table"), Headers: []kgo.RecordHeader{{Key: "db", Value: []byte("shop")}}})
	kfaketest.Produce(t, src, recs...)

	dlq := mock.NewRecorder()
	reg := testRegistry(t, dlq)
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: KafkaInput, brokers: %[1]s, topics: [in], group: g1}
outputs:
  - name: out
    class: KafkaOutput
    match: [src]
    brokers: %[1]s
    topic: "cdc.{kafka.header.db}.{kafka.header.table}"
    linger: 1ms
    max_record_bytes: 2KiB
    retries: 0
    retry_backoff: 1ms
    dead_letter: dlq
  - {name: dlq, class: Recorder}
`, c.SeedList()), nil)
	waitFor(t, 20*time.Second, "2 dead letters", func() bool { return dlq.Len() == 2 })
	r.stop(t)
	got := kfaketest.ConsumeN(t, c.Seeds, 100, 20*time.Second, "cdc.shop.t0", "cdc.shop.t1", "cdc.shop.t2")
	if len(got) != 100 {
		t.Fatalf("got %d records in the templated topics, want 100", len(got))
	}
	for _, rec := range got {
		i, _ := strconv.Atoi(strings.TrimPrefix(string(rec.Key), "k"))
		if rec.Topic != "cdc.shop.t"+strconv.Itoa(i%3) || !bytes.Equal(rec.Value, kfaketest.Payload("v", i, 50)) {
			t.Fatalf("record %s/%q: wrong topic or value", rec.Topic, rec.Key)
		}
		hs := map[string]string{}
		for _, h := range rec.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["db"] != "shop" || hs["table"] != "t"+strconv.Itoa(i%3) {
			t.Fatalf("headers %v", hs)
		}
	}
	var sizes []int
	for _, p := range dlq.Payloads() {
		sizes = append(sizes, len(p))
	}
	if !(len(sizes) == 2 && (sizes[0] == 3000 || sizes[1] == 3000)) {
		t.Fatalf("dead letters %v: want the 3000-byte record and the one without a table", sizes)
	}
	// Offsets: everything, including the dead-lettered records, is done,
	// so the group committed the end of the topic.
	end := kfaketest.EndOffsets(t, c.Seeds, "in")
	waitCommitted(t, c.Seeds, "g1", "in", end)
}

func waitCommitted(t testing.TB, seeds []string, group, topic string, want map[int32]int64) {
	t.Helper()
	var got map[int32]int64
	if testenv.WaitFor(10*time.Second, func() bool {
		got = kfaketest.Committed(t, seeds, group, topic)
		for p, o := range want {
			if o > 0 && got[p] != o {
				return false
			}
		}
		return true
	}) {
		return
	}
	t.Fatalf("group %s committed %v on %s, want the end offsets %v", group, got, topic, want)
}

func TestKafkaInputEndToEnd(t *testing.T) {
	c := kfaketest.Start(t, 3, 4, []string{"in"})
	const n = 5000
	cl := kfaketest.Client(t, c.Seeds)
	base := time.UnixMilli(1700000000000)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%31)), Value: kfaketest.Payload("in", i, 64),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}}})
	}
	kfaketest.Produce(t, cl, recs...)

	rec := mock.NewRecorder()
	reg := testRegistry(t, rec)
	store := engine.NewMemoryStore()
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms, batch: 64, pool: 256}
inputs:
  - {name: src, class: KafkaInput, brokers: %s, topics: [in], group: gin, pool: 256}
outputs:
  - {name: rec, class: Recorder, match: [src]}
`, c.SeedList()), store)
	waitFor(t, 30*time.Second, "all records", func() bool { return rec.Len() >= n })
	r.stop(t)
	payloads, keys, attrs := rec.Payloads(), rec.Keys(), rec.Attrs()
	if len(payloads) != n {
		t.Fatalf("recorded %d, want %d", len(payloads), n)
	}
	seen := map[string]bool{}
	for i, p := range payloads {
		var idx int
		fmt.Sscanf(string(p), "in-%d", &idx)
		if !bytes.Equal(p, kfaketest.Payload("in", idx, 64)) || string(keys[i]) != "k"+strconv.Itoa(idx%31) {
			t.Fatalf("packet %d: payload %q key %q", i, p, keys[i])
		}
		a := attrs[i]
		if a["kafka.topic"] != "in" || a["kafka.header.h"] != strconv.Itoa(idx) || a["kafka.partition"] == "" || a["kafka.offset"] == "" {
			t.Fatalf("packet %d attrs %v", i, a)
		}
		seen[a["kafka.partition"]+"/"+a["kafka.offset"]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct partition/offsets, want %d", len(seen), n)
	}
	end := kfaketest.EndOffsets(t, c.Seeds, "in")
	waitCommitted(t, c.Seeds, "gin", "in", end)
	// The engine's checkpoints agree: one stream per partition.
	cps := store.All()
	for p, o := range end {
		if cp := cps["src/in/"+strconv.Itoa(int(p))]; cp.Offset != o {
			t.Fatalf("checkpoint of partition %d = %d, want %d (all: %v)", p, cp.Offset, o, cps)
		}
	}
}

// Records keep their timestamps (p.Ts) and arrive in order: checked
// through a mirror in TestKafkaMirror. Here: explicit partitions without
// a group resume from the engine's checkpoint.
func TestKafkaInputDirectPartitionsResume(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"d"})
	cl := kfaketest.Client(t, c.Seeds)
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: "d", Partition: int32(i % 3), Value: kfaketest.Payload("d", i, 16)})
		}
		kfaketest.Produce(t, kfaketest.Client(t, c.Seeds, kgo.RecordPartitioner(kgo.ManualPartitioner())), recs...)
	}
	_ = cl
	produce(0, 300)
	store := engine.NewMemoryStore()
	conf := fmt.Sprintf(`
engine: {checkpoint_interval: 20ms}
inputs:
  - {name: src, class: KafkaInput, brokers: %s, topics: [d], partitions: [0, 2]}
outputs:
  - {name: rec, class: Recorder, match: [src]}
`, c.SeedList())
	rec1 := mock.NewRecorder()
	r := startEngine(t, testRegistry(t, rec1), conf, store)
	waitFor(t, 20*time.Second, "200 records", func() bool { return rec1.Len() >= 200 })
	r.stop(t)
	produce(300, 600)
	rec2 := mock.NewRecorder()
	r = startEngine(t, testRegistry(t, rec2), conf, store)
	waitFor(t, 20*time.Second, "200 more records", func() bool { return rec2.Len() >= 200 })
	testenv.Never(t, 200*time.Millisecond, func() bool { return rec2.Len() > 200 }, "the second run read more than 200 records")
	r.stop(t)
	if rec1.Len() != 200 || rec2.Len() != 200 {
		t.Fatalf("first run %d, second run %d records: want 200 each (partitions 0 and 2, no re-reads)", rec1.Len(), rec2.Len())
	}
	for _, p := range rec2.Payloads() {
		var i int
		fmt.Sscanf(string(p), "d-%d", &i)
		if i < 300 || i%3 == 1 {
			t.Fatalf("second run re-read or read partition 1: %q", p)
		}
	}
}

func TestKafkaOutputInjectedProduceErrors(t *testing.T) {
	c := kfaketest.Start(t, 1, 3, []string{"out"})
	// Fail every third produce request (up to 20) with a retriable error: the
	// client retries (record_retries high enough), nothing is lost, and
	// per-key order holds.
	reqs := 0 // read on the cluster goroutine only
	fh := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: 20,
		When: func(kmsg.Request) bool { reqs++; return reqs%3 == 0 }})
	const n, keys = 5000, 13
	reg := testRegistry(t, nil)
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: MockInput, count: %d, keys: %d, payload: 40, rate: 20000}
outputs:
  - {name: out, class: KafkaOutput, match: [src], in_flight: 4, brokers: %s, topic: out, linger: 1ms, record_retries: 10, record_retry_backoff: 20ms}
`, n, keys, c.SeedList()), nil)
	t0 := time.Now()
	r.wait(t, 60*time.Second)
	t.Logf("engine done in %v", time.Since(t0))
	if h := fh.Hits(); h == 0 {
		t.Fatal("no produce request was failed: the injection did not run")
	} else {
		t.Logf("%d produce requests failed with NOT_ENOUGH_REPLICAS", h)
	}
	recs := kfaketest.ConsumeN(t, c.Seeds, n, 20*time.Second, "out")
	if d := checkMockDelivery(t, recs, n, keys, 3); d != 0 {
		t.Fatalf("%d duplicates: the idempotent producer should have none", d)
	}
}

var _ = kfake.NumBrokers
