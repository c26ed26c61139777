package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/aggregate"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// eosYAML is a mirror A -> B with exactly_once on (a and b may be the
// same cluster).
func eosYAML(a, b *kfaketest.Cluster, extra string) string {
	return fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - name: from_a
    class: KafkaInput
    brokers: %s
    topics: [orders]
    group: eos
    session_timeout: 6s
outputs:
  - name: to_b
    class: KafkaOutput
    match: [from_a]
    brokers: %s
    topic: "copy.{kafka.topic}"
    partitioner: attr
    exactly_once: true
    commit_interval: 50ms
%s`, a.SeedList(), b.SeedList(), extra)
}

// consumeCommitted reads topics with read_committed until n records came
// or timeout passed.
func consumeCommitted(t testing.TB, seeds []string, n int, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	cl := kfaketest.Client(t, seeds, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
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

// countCopies checks that every record "o-<i>", i < n, arrived exactly
// once and returns (distinct, duplicates).
func countCopies(recs []*kgo.Record, n int) (distinct, dups int) {
	seen := make([]int, n)
	for _, r := range recs {
		var i int
		fmt.Sscanf(string(r.Value), "o-%d", &i)
		if i < 0 || i >= n {
			continue
		}
		if seen[i] == 0 {
			distinct++
		} else {
			dups++
		}
		seen[i]++
	}
	return distinct, dups
}

func produceOrders(t testing.TB, c *kfaketest.Cluster, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("k%d", i%101)), Value: kfaketest.Payload("o", i, 100)})
	}
	kfaketest.Produce(t, kfaketest.Client(t, c.Seeds), recs...)
}

// TestKafkaExactlyOnceMirrorRestart: two runs of an exactly_once mirror
// (orderly stop between them) copy every record once, the checkpoint
// topic holds the input's positions, and the second run resumes from
// them even with an empty local checkpoint store.
func TestKafkaExactlyOnceMirrorRestart(t *testing.T) {
	for _, same := range []bool{false, true} {
		t.Run(fmt.Sprintf("same_cluster=%v", same), func(t *testing.T) {
			a := kfaketest.Start(t, 1, 4, []string{"orders"})
			b := a
			if !same {
				b = kfaketest.Start(t, 1, 4, []string{"copy.orders"})
			}
			produceOrders(t, a, 0, 2000)
			r := startEngine(t, testRegistry(t, nil), eosYAML(a, b, ""), nil)
			got := consumeCommitted(t, b.Seeds, 2000, 30*time.Second, "copy.orders")
			r.stop(t)
			if d, dup := countCopies(got, 2000); d != 2000 || dup != 0 {
				t.Fatalf("first run: %d distinct of 2000, %d duplicates", d, dup)
			}
			produceOrders(t, a, 2000, 3000)
			// A fresh store: the positions come from the checkpoint topic.
			r = startEngine(t, testRegistry(t, nil), eosYAML(a, b, ""), nil)
			got = consumeCommitted(t, b.Seeds, 3000, 30*time.Second, "copy.orders")
			if extra := consumeCommitted(t, b.Seeds, 3001, 500*time.Millisecond, "copy.orders"); len(extra) > 3000 {
				got = extra
			}
			r.stop(t)
			if d, dup := countCopies(got, 3000); d != 3000 || dup != 0 {
				t.Fatalf("after restart: %d distinct of 3000, %d duplicates (%d records)", d, dup, len(got))
			}
			if same {
				c := kfaketest.Committed(t, a.Seeds, "eos", "orders")
				var sum int64
				for _, off := range c {
					sum += off
				}
				if sum != 3000 {
					t.Fatalf("group eos committed %v (sum %d), want the 3000 offsets committed in the transactions", c, sum)
				}
			}
		})
	}
}

// TestKafkaExactlyOnceZombieFenced: a second output with the same
// transactional id fences the first; the first's open transaction never
// becomes visible and its commit fails.
func TestKafkaExactlyOnceZombieFenced(t *testing.T) {
	b := kfaketest.Start(t, 1, 1, []string{"out"})
	mk := func() *Output {
		c, err := engine.NewConf(testRegistry(t, nil), "zombie", "KafkaOutput", map[string]any{"brokers": b.Seeds, "topic": "out", "exactly_once": true, "transactional_id": "tid-1"})
		if err != nil {
			t.Fatal(err)
		}
		o, err := NewOutput(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.BindTransaction("src", nil); err != nil {
			t.Fatal(err)
		}
		if err := o.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close(context.Background()) })
		return o
	}
	pk := func(i int) []*pack.Packet {
		p := &pack.Packet{Payload: kfaketest.Payload("z", i, 20), Pos: pack.Pos{Offset: int64(i + 1)}}
		return []*pack.Packet{p}
	}
	old := mk()
	if err := old.Write(t.Context(), pk(0)); err != nil {
		t.Fatal(err)
	}
	if err := old.CommitTransaction(t.Context(), map[string]engine.Checkpoint{"src": {Offset: 1}}); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	if err := old.Write(t.Context(), pk(1)); err != nil {
		t.Fatal(err)
	}
	// The zombie's replacement starts: InitProducerID fences the old epoch.
	nu := mk()
	cps, err := nu.LoadCheckpoints(t.Context())
	if err != nil || cps["src"].Offset != 1 {
		t.Fatalf("new producer loads %v, %v; want the committed offset 1", cps, err)
	}
	err = old.CommitTransaction(t.Context(), map[string]engine.Checkpoint{"src": {Offset: 2}})
	if err == nil {
		t.Fatal("the fenced producer committed its transaction")
	}
	t.Logf("zombie commit refused: %v", err)
	if err := nu.Write(t.Context(), pk(2)); err != nil {
		t.Fatal(err)
	}
	if err := nu.CommitTransaction(t.Context(), map[string]engine.Checkpoint{"src": {Offset: 3}}); err != nil {
		t.Fatalf("new producer commit: %v", err)
	}
	got := consumeCommitted(t, b.Seeds, 3, 2*time.Second, "out")
	var vals []string
	for _, r := range got {
		vals = append(vals, strings.TrimRight(string(r.Value), "."))
	}
	if strings.Join(vals, ",") != "z-0,z-2" {
		t.Fatalf("read_committed sees %v, want z-0,z-2 (the zombie's z-1 aborted)", vals)
	}
}

// TestKafkaExactlyOnceRefusedConfigs: pipelines where exactly-once
// cannot hold are refused when the engine is built, saying why.
func TestKafkaExactlyOnceRefusedConfigs(t *testing.T) {
	a := kfaketest.Start(t, 1, 1, []string{"orders"})
	base := eosYAML(a, a, "")
	cases := map[string]struct{ yaml, want string }{
		"second output": {base + `  - name: log
    class: MockOutput
    match: [from_a]
`, "also writes to log"},
		"dead letter": {strings.Replace(base, "exactly_once: true", "exactly_once: true\n    dead_letter: dlq", 1) + `  - name: dlq
    class: MockOutput
`, "dead_letter dlq"},
		"acks leader": {strings.Replace(base, "exactly_once: true", "exactly_once: true\n    acks: leader", 1), "acks: all and idempotent"},
	}
	two := strings.Replace(base, "outputs:", `  - name: from_a2
    class: KafkaInput
    brokers: `+a.SeedList()+`
    topics: [orders]
outputs:`, 1)
	cases["two inputs"] = struct{ yaml, want string }{strings.Replace(two, "match: [from_a]", "match: [from_a, from_a2]", 1), "fed by 2 inputs"}
	// A filter between the input and the output: the output matches it.
	withFilter := func(filter string) string {
		return strings.Replace(strings.Replace(base, "outputs:", "filters:\n"+filter+"outputs:", 1),
			"match: [from_a]\n    brokers", "match: [f]\n    brokers", 1)
	}
	// Aggregate emits on a timer (Ticker), Stateful keeps state (and
	// does not tick): each branch of the check on its own.
	cases["timer filter"] = struct{ yaml, want string }{withFilter("  - {name: f, class: Aggregate, match: [from_a], tick: 1s}\n"),
		"filters f keep state or emit on a timer: their state is not part of the Kafka transaction"}
	cases["stateful filter"] = struct{ yaml, want string }{withFilter("  - {name: f, class: StatefulTest, match: [from_a]}\n"),
		"filters f keep state or emit on a timer: their state is not part of the Kafka transaction"}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			reg := refusalRegistry(t)
			cfg, err := engine.Parse("eos.yaml", []byte(c.yaml), reg)
			if err == nil {
				var e *engine.Engine
				e, err = engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
				if e != nil {
					t.Fatal("engine built")
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "eos.yaml:") && name != "acks leader" {
				t.Fatalf("error %v does not name the file and line", err)
			}
			t.Logf("%s: %v", name, err)
		})
	}
	// The control: a stateless filter (deterministic drops) in the same
	// place is accepted, and dbusd -t (an offline Supervisor) refuses the
	// timer filter too.
	reg := refusalRegistry(t)
	cfg, err := engine.Parse("eos.yaml", []byte(withFilter("  - {name: f, class: MockFilter, match: [from_a], mode: drop}\n")), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		t.Fatalf("a stateless filter was refused: %v", err)
	}
	e.Close()
	cfg, err = engine.Parse("eos.yaml", []byte(cases["timer filter"].yaml), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Offline: true})
	if err == nil {
		sup.Close()
		t.Fatal("dbusd -t (offline Supervisor) accepted a timer filter in an exactly_once pipeline")
	}
	if !strings.Contains(err.Error(), "eos.yaml:") || !strings.Contains(err.Error(), "emit on a timer") {
		t.Fatalf("dbusd -t error %v: want the file:line and the reason", err)
	}
}

// refusalRegistry is testRegistry with Aggregate and StatefulTest, a
// pass-through filter that keeps state (Stateful) without a timer.
func refusalRegistry(t *testing.T) *engine.Registry {
	reg := testRegistry(t, nil)
	aggregate.Register(reg)
	reg.MustRegister(engine.Spec{Class: "StatefulTest", Kind: engine.KindFilter,
		NewFilter: func(*engine.Conf) (engine.Filter, error) { return &statefulFilter{}, nil }})
	return reg
}

type statefulFilter struct{ n int }

func (f *statefulFilter) Process(fc engine.FilterContext, p *pack.Packet) error {
	f.n++
	fc.Emit(p)
	return nil
}
func (f *statefulFilter) SaveState() ([]byte, error) { return fmt.Appendf(nil, "%d", f.n), nil }
func (f *statefulFilter) LoadState([]byte) error     { return nil }

// TestKafkaExactlyOnceBrokerOutage stops the target cluster in the middle
// of an exactly_once mirror: the open transaction fails, the pipeline
// stops with the error (it does not retry in place), and a new run after
// the cluster returned (same ports and data, a fresh local store) resumes
// from the committed positions: every record exactly once.
func TestKafkaExactlyOnceBrokerOutage(t *testing.T) {
	a := kfaketest.Start(t, 1, 4, []string{"orders"})
	ports := freePorts(t, 1)
	dir := t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(ports...), kfake.DataDir(dir), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(4, "copy.orders")}
	b1, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	b := &kfaketest.Cluster{Cluster: b1, Seeds: b1.ListenAddrs()}
	const n = 20000
	go func() {
		for i := 0; i < n; i += 500 {
			produceOrders(t, a, i, i+500)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	y := eosYAML(a, b, "    transaction_timeout: 4s\n")
	r := startEngine(t, testRegistry(t, nil), y, nil)
	waitFor(t, 30*time.Second, "a quarter of the records committed", func() bool {
		return sumOffsets(kfaketest.EndOffsets(t, b.Seeds, "copy.orders")) >= n/4
	})
	b1.Close()
	select {
	case err := <-r.done:
		r.cancel = nil
		if err == nil || !strings.Contains(err.Error(), "transaction aborted") {
			t.Fatalf("run ended with %v, want the aborted transaction", err)
		}
		t.Logf("run stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the pipeline did not stop while its target was down")
	}
	b2, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("restart cluster: %v", err)
	}
	defer b2.Close()
	r2 := startEngine(t, testRegistry(t, nil), y, nil)
	var got []*kgo.Record
	waitFor(t, 60*time.Second, "every record committed", func() bool {
		got = consumeCommitted(t, b.Seeds, n+1, 2*time.Second, "copy.orders")
		d, _ := countCopies(got, n)
		return d == n
	})
	r2.stop(t)
	if d, dup := countCopies(got, n); d != n || dup != 0 {
		t.Fatalf("after the outage: %d of %d records, %d duplicates", d, n, dup)
	}
}

// TestKafkaExactlyOnceSupervisorRestarts: under the Supervisor (as in
// dbusd), a pipeline whose transaction failed (target cluster down) is
// rebuilt and restarted by itself, retrying while the target is away,
// and goes on from the last committed transaction once it is back:
// every record exactly once, without restarting the process.
func TestKafkaExactlyOnceSupervisorRestarts(t *testing.T) {
	a := kfaketest.Start(t, 1, 4, []string{"orders"})
	ports := freePorts(t, 1)
	dir := t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(ports...), kfake.DataDir(dir), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(4, "copy.orders")}
	b1, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	b := &kfaketest.Cluster{Cluster: b1, Seeds: b1.ListenAddrs()}
	const n = 10000
	produceOrders(t, a, 0, n/2)
	reg := testRegistry(t, nil)
	cfg, err := engine.Parse("eos.yaml", []byte(eosYAML(a, b, "    transaction_timeout: 3s\n    connect_timeout: 1s\n")), reg)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	first := sup.Engines()[0]
	waitFor(t, 30*time.Second, "the first half committed", func() bool {
		d, _ := countCopies(consumeCommitted(t, b.Seeds, n/2, 2*time.Second, "copy.orders"), n)
		return d == n/2
	})
	b1.Close()
	produceOrders(t, a, n/2, n)
	waitFor(t, 30*time.Second, "the supervisor to restart the pipeline", func() bool {
		return sup.Engines()[0] != first
	})
	b2, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("restart cluster: %v", err)
	}
	defer b2.Close()
	var got []*kgo.Record
	waitFor(t, 60*time.Second, "every record committed", func() bool {
		got = consumeCommitted(t, b.Seeds, n+1, 2*time.Second, "copy.orders")
		d, _ := countCopies(got, n)
		return d == n
	})
	select {
	case err := <-done:
		t.Fatalf("the supervisor stopped: %v", err)
	default:
	}
	if d, dup := countCopies(got, n); d != n || dup != 0 {
		t.Fatalf("%d of %d records, %d duplicates", d, n, dup)
	}
}
