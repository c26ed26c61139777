package kafka

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// chanCompletion reports a WriteAsync outcome on a channel.
type chanCompletion chan error

func (c chanCompletion) Done(err error) { c <- err }

// KafkaOutput lingers only while the engine can still hand over records:
// a synchronous Write, or as many batches in flight as the engine ever
// gave it at once and at least two (the engine is then waiting for a
// completion), sends the lingering records at once. Without that, a
// pipeline moves at most in_flight*batch records per linger.
func TestKafkaOutputUnlingersWhenSaturated(t *testing.T) {
	const linger = 1500 * time.Millisecond
	c := kfaketest.Start(t, 1, 2, []string{"t"})
	var slowProduce atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if slowProduce.Load() {
			c.SleepControl(func() { time.Sleep(200 * time.Millisecond) })
		}
		return nil, nil, false
	})
	reg := engine.NewRegistry()
	Register(reg)
	conf, err := engine.NewConf(reg, "out", "KafkaOutput", map[string]any{
		"brokers": c.Seeds, "topic": "t", "linger": linger, "batch_records": 100000})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutput(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)

	// Learn the topic's partitions (records for a topic the client has no
	// metadata for yet are not lingering, they wait for it).
	warm := make(chanCompletion, 1)
	o.WriteAsync(ctx, testBatch(10), warm)
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-warm; err != nil {
		t.Fatal(err)
	}

	// A synchronous Write is a saturated pipeline of one batch.
	start := time.Now()
	if err := o.Write(ctx, testBatch(10)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > linger/2 {
		t.Fatalf("synchronous Write took %v: it waited for the %v linger", d, linger)
	}

	// One batch while the engine could still hand over another: the
	// records linger, as configured.
	done := make(chanCompletion, 3)
	start = time.Now()
	o.WriteAsync(ctx, testBatch(10), done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < linger*2/3 {
		t.Fatalf("an unsaturated batch completed after %v, before the %v linger", d, linger)
	}

	// Two batches in flight at once: the second reaches the most seen,
	// so both are sent without lingering.
	start = time.Now()
	o.WriteAsync(ctx, testBatch(10), done)
	o.WriteAsync(ctx, testBatch(10), done)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > linger/2 {
		t.Fatalf("two saturating batches took %v: they waited for the %v linger", d, linger)
	}

	// Three in flight: the most seen grows to three; one or two now
	// linger, three do not. The second batch reaches the most seen (two)
	// and is sent at once with the first; the broker holds their produce
	// requests for a moment so they are still in flight when the third
	// is written (on a slow machine they could otherwise be acked first,
	// leaving the third alone below the most seen, lingering).
	slowProduce.Store(true)
	start = time.Now()
	for range 3 {
		o.WriteAsync(ctx, testBatch(10), done)
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	slowProduce.Store(false)
	if d := time.Since(start); d > linger/2 {
		t.Fatalf("three saturating batches took %v: they waited for the %v linger", d, linger)
	}
	// The client stops lingering while any Flush is in progress, and the
	// unlinger's Flush ends on a goroutine of the client's that nothing
	// outside the client can observe: on a loaded machine the next batches
	// can still see it. Retry (with testenv's growing poll interval) until
	// the pair lingers.
	var d time.Duration
	tries := 0
	testenv.WaitFor(5*time.Second, func() bool {
		tries++
		start = time.Now()
		o.WriteAsync(ctx, testBatch(10), done)
		o.WriteAsync(ctx, testBatch(10), done)
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		d = time.Since(start)
		return d >= linger*2/3
	})
	if d < linger*2/3 {
		t.Fatalf("two batches below the most seen completed after %v, before the %v linger (%d tries)", d, linger, tries)
	}
	if s := o.Stats(); s.Produced != uint64(80+20*tries) || s.Failed != 0 {
		t.Fatalf("stats %+v, want %d produced, 0 failed", s, 80+20*tries)
	}
}
