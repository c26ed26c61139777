package kfaketest

import (
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) {
	MaybeServe()
	os.Exit(m.Run())
}

// TestKafkaFakeProcess: a broker in a child process serves produce and
// fetch; a blackhole broker acknowledges produce requests.
func TestKafkaFakeProcess(t *testing.T) {
	p := StartProcess(t, ProcessSpec{Partitions: 2, Topics: []string{"t"}})
	cl := Client(t, p.Seeds)
	Produce(t, cl, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v1")}, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v2")})
	recs := ConsumeN(t, p.Seeds, 2, 10*time.Second, "t")
	if len(recs) != 2 || string(recs[0].Value) != "v1" || string(recs[1].Value) != "v2" {
		t.Fatalf("consumed %d records: %v", len(recs), recs)
	}
	p.Close()

	bh := StartProcess(t, ProcessSpec{Partitions: 1, Topics: []string{"t"}, Blackhole: true})
	cl = Client(t, bh.Seeds)
	Produce(t, cl, &kgo.Record{Topic: "t", Value: []byte("gone")})
}
