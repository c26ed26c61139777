package kafka

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// murmur2 is Kafka's Java murmur2 (org.apache.kafka.common.utils.Utils.murmur2):
// seed 0x9747b28c, m 0x5bd1e995, r 24, little-endian 4-byte blocks.
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// javaPartition is the partition the Java client's default partitioner
// picks for a non-null key: toPositive(murmur2(key)) % n.
func javaPartition(key []byte, n int) int {
	return int(murmur2(key)&0x7fffffff) % n
}

// partitionMode selects how KafkaOutput picks a record's partition.
type partitionMode uint8

const (
	partMurmur2    partitionMode = iota + 1 // by key, Java-compatible; keyless records round-robin
	partRoundRobin                          // ignore the key
	partFixed                               // one configured partition
	partAttr                                // partition from a packet attribute (mirroring)
)

func parsePartitionMode(s string) (partitionMode, error) {
	switch s {
	case "murmur2", "key", "":
		return partMurmur2, nil
	case "round_robin":
		return partRoundRobin, nil
	case "fixed":
		return partFixed, nil
	case "attr":
		return partAttr, nil
	}
	return 0, fmt.Errorf("unknown partitioner %q (want murmur2, round_robin, fixed or attr)", s)
}

func (m partitionMode) String() string {
	switch m {
	case partMurmur2:
		return "murmur2"
	case partRoundRobin:
		return "round_robin"
	case partFixed:
		return "fixed"
	case partAttr:
		return "attr"
	}
	return "unknown(" + strconv.Itoa(int(m)) + ")"
}

// partitioner implements kgo.Partitioner. For partFixed and partAttr the
// output stores the wanted partition in Record.Partition before Produce
// (franz-go leaves the record untouched until it is partitioned); a
// partition outside [0, n) fails the record with franz-go's "invalid
// record partitioning choice" error rather than being silently remapped.
//
// With hashMissing (on_missing_partition: hash), a partition the target
// topic does not have (a mirror whose target has fewer partitions than the
// source) is replaced by the key's murmur2 partition (round robin without
// a key): per-key order holds, the source partition does not.
type partitioner struct {
	mode        partitionMode
	hashMissing bool
}

func (p *partitioner) ForTopic(string) kgo.TopicPartitioner {
	return &topicPartitioner{mode: p.mode, hashMissing: p.hashMissing}
}

// topicPartitioner partitions one topic. franz-go calls it for one record
// of the topic at a time; the dry-run path shares it under the output's
// single Write goroutine, so the counter is atomic only to be safe when
// both use it.
type topicPartitioner struct {
	mode        partitionMode
	hashMissing bool
	rr          atomic.Uint64
}

func (t *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	switch t.mode {
	case partRoundRobin:
		return false
	case partMurmur2:
		return r.Key != nil
	}
	return true
}

func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	switch t.mode {
	case partMurmur2:
		if r.Key != nil {
			return javaPartition(r.Key, n)
		}
		return int((t.rr.Add(1) - 1) % uint64(n))
	case partRoundRobin:
		return int((t.rr.Add(1) - 1) % uint64(n))
	case partAttr:
		if t.hashMissing && (r.Partition < 0 || int(r.Partition) >= n) {
			if r.Key != nil {
				return javaPartition(r.Key, n)
			}
			return int((t.rr.Add(1) - 1) % uint64(n))
		}
	}
	return int(r.Partition)
}
