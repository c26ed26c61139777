package kafka

import (
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// Replication lag and end-to-end latency of a mirror (a KafkaOutput fed by
// one KafkaInput), per source partition, read at scrape time:
//
//   - lag in records: the source partition's high watermark (as the
//     KafkaInput saw it at its last poll) minus the offset after the last
//     record the target acknowledged;
//   - lag in seconds: while records are left, the age of the last record
//     the target acknowledged (its source timestamp), else 0;
//   - end-to-end latency: from a record's source timestamp (the time it
//     was produced, or appended with LogAppendTime) to the target's ack:
//     the last record's per partition, and a sum and count over all.

// highWatermark is partition t's high watermark at the input's last poll.
func (in *Input) highWatermark(t tp) (int64, bool) {
	in.lag.mu.Lock()
	defer in.lag.mu.Unlock()
	p, ok := in.lag.m[t]
	return p.hw, ok
}

// MirrorPartition is one source partition's replication state.
type MirrorPartition struct {
	Topic          string
	Partition      int32
	Target         string
	TargetPart     int32
	Mirrored       int64 // source offset after the last record acked by the target
	LagRecords     int64 // -1 when the source high watermark is unknown
	LagSeconds     float64
	LatencySeconds float64 // source timestamp -> target ack of the last record
}

// MirrorPartitions returns the replication state of every source
// partition mirrored so far, sorted (nil when the output mirrors no
// KafkaInput).
func (o *Output) MirrorPartitions() []MirrorPartition {
	m := o.mirror
	if m == nil {
		return nil
	}
	now := time.Now()
	m.mu.Lock()
	out := make([]MirrorPartition, 0, len(m.parts))
	for k, p := range m.parts {
		if p.next == 0 && p.lastTs.IsZero() {
			continue // known from the offset syncs topic only
		}
		out = append(out, MirrorPartition{Topic: k.topic, Partition: k.part, Target: p.tgtTopic, TargetPart: p.tgtPart,
			Mirrored: p.next, LatencySeconds: p.latency, LagRecords: -1})
	}
	lastTs := make(map[tp]time.Time, len(out))
	for k, p := range m.parts {
		lastTs[k] = p.lastTs
	}
	m.mu.Unlock()
	for i := range out {
		mp := &out[i]
		k := tp{mp.Topic, mp.Partition}
		if hw, ok := m.src.highWatermark(k); ok {
			mp.LagRecords = max(hw-mp.Mirrored, 0)
			if mp.LagRecords > 0 && !lastTs[k].IsZero() {
				mp.LagSeconds = max(now.Sub(lastTs[k]).Seconds(), 0)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// report emits the mirror's series (Output.ReportMetrics).
func (m *mirrorState) report(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	for _, p := range m.o.MirrorPartitions() {
		part := strconv.Itoa(int(p.Partition))
		if p.LagRecords >= 0 {
			emit("dbus_kafka_mirror_lag_records", "Records of the source partition not yet acknowledged by the target: source high watermark (at the input's last poll) minus the offset after the last mirrored record.",
				engine.MetricGauge, float64(p.LagRecords), "topic", p.Topic, "partition", part)
			emit("dbus_kafka_mirror_lag_seconds", "While the source partition has records left to mirror, the age of the last mirrored record (its source timestamp); 0 when caught up.",
				engine.MetricGauge, p.LagSeconds, "topic", p.Topic, "partition", part)
		}
		emit("dbus_kafka_mirror_last_latency_seconds", "End-to-end latency of the source partition's last mirrored record: from its source timestamp to the target's acknowledgement.",
			engine.MetricGauge, p.LatencySeconds, "topic", p.Topic, "partition", part)
	}
	emit("dbus_kafka_mirror_latency_seconds_total", "Sum of the end-to-end latencies (source timestamp -> target ack) of every mirrored record; divided by dbus_kafka_mirror_latency_records_total, the mean.",
		engine.MetricCounter, math.Float64frombits(m.latSum.Load()))
	emit("dbus_kafka_mirror_latency_records_total", "Mirrored records counted in dbus_kafka_mirror_latency_seconds_total.",
		engine.MetricCounter, float64(m.latCount.Load()))
	if m.createTopics {
		emit("dbus_kafka_mirror_topics_created_total", "Target topics created to match their source (create_topics).",
			engine.MetricCounter, float64(m.topicsCreated.Load()))
	}
	if len(m.groups) > 0 {
		emit("dbus_kafka_mirror_group_offsets_committed_total", "Translated consumer-group partition offsets committed on the target (sync_groups).",
			engine.MetricCounter, float64(m.groupCommits.Load()))
		emit("dbus_kafka_mirror_sync_errors_total", "Rounds of sync_groups (offset syncs write or group translation) that failed; retried at the next interval.",
			engine.MetricCounter, float64(m.syncErrors.Load()))
	}
}
