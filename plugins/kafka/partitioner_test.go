package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors from Kafka's UtilsTest.testMurmur2 (Java client).
func TestKafkaMurmur2JavaVectors(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for k, want := range cases {
		if got := int32(murmur2([]byte(k))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d (Java)", k, got, want)
		}
	}
}

// The partition must match the Java default partitioner, which franz-go's
// StickyKeyPartitioner(nil) also implements, for many keys and counts.
func TestKafkaPartitionMatchesJava(t *testing.T) {
	ref := kgo.StickyKeyPartitioner(nil)
	ours := (&partitioner{mode: partMurmur2}).ForTopic("t")
	for _, n := range []int{1, 2, 3, 7, 12, 64, 100} {
		rt := ref.ForTopic("t")
		for i := 0; i < 2000; i++ {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i))}
			want := rt.Partition(r, n)
			if got := ours.Partition(r, n); got != want {
				t.Fatalf("key %q n=%d: partition %d, Java-compatible reference %d", r.Key, n, got, want)
			}
			if got := javaPartition(r.Key, n); got != want {
				t.Fatalf("javaPartition(%q, %d) = %d, want %d", r.Key, n, got, want)
			}
		}
	}
	// Known partition: "foobar" -> toPositive(-790332482) % 3.
	if got := javaPartition([]byte("foobar"), 3); got != int((-790332482&0x7fffffff)%3) {
		t.Fatalf("foobar: %d", got)
	}
}

func TestKafkaPartitionerModes(t *testing.T) {
	rr := (&partitioner{mode: partRoundRobin}).ForTopic("t")
	seen := map[int]int{}
	for i := 0; i < 30; i++ {
		seen[rr.Partition(&kgo.Record{Key: []byte("same")}, 3)]++
	}
	if len(seen) != 3 || seen[0] != 10 {
		t.Fatalf("round robin spread %v", seen)
	}
	if rr.RequiresConsistency(&kgo.Record{Key: []byte("k")}) {
		t.Fatal("round robin must not require consistency")
	}
	fx := (&partitioner{mode: partFixed}).ForTopic("t")
	if got := fx.Partition(&kgo.Record{Partition: 2}, 3); got != 2 {
		t.Fatalf("fixed: %d", got)
	}
	if got := fx.Partition(&kgo.Record{Partition: 5}, 3); got != 5 {
		t.Fatalf("fixed out of range must stay invalid so the client fails the record, got %d", got)
	}
	mm := (&partitioner{mode: partMurmur2}).ForTopic("t")
	if mm.RequiresConsistency(&kgo.Record{}) || !mm.RequiresConsistency(&kgo.Record{Key: []byte{}}) {
		t.Fatal("murmur2 consistency: keyless free, keyed (even empty) consistent")
	}
	for _, s := range []string{"murmur2", "round_robin", "fixed", "attr"} {
		m, err := parsePartitionMode(s)
		if err != nil || m.String() != s {
			t.Fatalf("%s: %v %v", s, m, err)
		}
	}
	if _, err := parsePartitionMode("hash"); err == nil {
		t.Fatal("unknown partitioner accepted")
	}
}

func BenchmarkKafkaMurmur2(b *testing.B) {
	k := []byte("customer-000123456")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = javaPartition(k, 12)
	}
}
