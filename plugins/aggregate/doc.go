// Package aggregate holds Aggregate ("ES buffering"): per event-time
// interval and key it emits one summary packet (count, sum, mean, min,
// max, stddev, p50/p90/p99 of a numeric field) instead of every raw
// event.
//
// Contract:
//  1. Raw packets are consumed (their positions become committable).
//     Intervals are tumbling, aligned to `interval` in event time; one
//     closes when the newest event time minus `lateness` passes its end.
//     Events for an interval already closed are dropped as "late" and
//     counted.
//  2. Summaries are emitted on the filter's tick and at shutdown
//     (engine.FilterFlusher: FlushFilter closes every open interval and
//     emits with the engine's context), sorted by interval then key: attributes
//     type=aggregate, key, the group_by attributes, interval_start,
//     count and the statistics; Ts = the interval start.
//  3. State is in memory: a crash loses the open intervals' summaries of
//     events already committed (at most interval + lateness of events).
//
// Process, Tick and FlushFilter run on the filter's goroutine.
package aggregate
