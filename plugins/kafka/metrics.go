package kafka

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// Metrics the Kafka plugins publish themselves (engine.MetricsReporter),
// read at scrape time.

// ReportMetrics implements engine.MetricsReporter: records skipped by
// loop prevention and records refused as too large.
func (o *Output) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	emit("dbus_kafka_output_loop_skipped_total", "Records skipped (acked, not produced) because their origin header names this cluster (mirror loop prevention).",
		engine.MetricCounter, float64(o.skippedLoop.Load()))
	emit("dbus_kafka_output_too_large_total", "Records larger than max_record_bytes (dead-lettered as permanent failures).",
		engine.MetricCounter, float64(o.tooLarge.Load()))
	if o.mirror != nil {
		o.mirror.report(emit) // lag.go
	}
}

// lagTable is KafkaInput's consumer lag per partition: written by the Run
// goroutine once per partition per poll, read at scrape time.
type lagTable struct {
	mu sync.Mutex
	m  map[tp]partLag // guarded by mu
}

type partLag struct {
	records int64     // high watermark minus the next offset to consume
	lastTs  time.Time // timestamp of the last record consumed
	hw      int64     // the partition's high watermark at the last poll
}

// set records partition t's lag after consuming up to offset next-1
// (whose record has timestamp ts) with the partition's high watermark hw.
func (l *lagTable) set(t tp, hw, next int64, ts time.Time) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[tp]partLag{}
	}
	l.m[t] = partLag{records: max(hw-next, 0), lastTs: ts, hw: hw}
	l.mu.Unlock()
}

func (l *lagTable) drop(t tp) {
	l.mu.Lock()
	delete(l.m, t)
	l.mu.Unlock()
}

// seconds is how far behind a partition is in time: the age of the last
// consumed record while records remain, else 0.
func (p partLag) seconds(now time.Time) float64 {
	if p.records == 0 || p.lastTs.IsZero() {
		return 0
	}
	return max(now.Sub(p.lastTs).Seconds(), 0)
}

// LagRecords implements engine.RecordLagReporter: the sum over partitions
// (dbus_input_lag_records).
func (in *Input) LagRecords() int64 {
	in.lag.mu.Lock()
	defer in.lag.mu.Unlock()
	var n int64
	for _, p := range in.lag.m {
		n += p.records
	}
	return n
}

// Lag implements engine.LagReporter: the largest partition lag in time
// (dbus_input_lag_seconds).
func (in *Input) Lag() time.Duration {
	now := time.Now()
	in.lag.mu.Lock()
	defer in.lag.mu.Unlock()
	var s float64
	for _, p := range in.lag.m {
		s = max(s, p.seconds(now))
	}
	return time.Duration(s * float64(time.Second))
}

// ReportMetrics implements engine.MetricsReporter: consumer lag per
// partition, in records and in seconds.
func (in *Input) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	now := time.Now()
	in.lag.mu.Lock()
	keys := make([]tp, 0, len(in.lag.m))
	for k := range in.lag.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].part < keys[j].part
	})
	lags := make([]partLag, len(keys))
	for i, k := range keys {
		lags[i] = in.lag.m[k]
	}
	in.lag.mu.Unlock()
	for i, k := range keys {
		p := strconv.Itoa(int(k.part))
		emit("dbus_kafka_input_partition_lag_records", "Records between the partition's high watermark and the next record to consume.",
			engine.MetricGauge, float64(lags[i].records), "topic", k.topic, "partition", p)
		emit("dbus_kafka_input_partition_lag_seconds", "Age of the last consumed record while the partition has records left (0 when caught up).",
			engine.MetricGauge, lags[i].seconds(now), "topic", k.topic, "partition", p)
	}
}
