// Package window holds WindowAlarm: sliding windows (length W, slide S)
// per group key over event time, computing count, sum, mean, min, max,
// stddev and percentiles of a numeric field, and rules that raise alerts
// on absolute thresholds or on an abnormal relative change against the
// previous window. Alerts go to sinks (log, stdout, HTTP webhook, SMTP
// email batched by severity with quiet hours) and downstream as packets.
//
// Contract:
//  1. Time is the packets' event time (Packet.Ts). The watermark is the
//     largest event time seen minus `lateness`; the window [E-W, E) is
//     evaluated once the watermark reaches E. Events older than the last
//     evaluated window end are late: dropped with reason "late" and
//     counted. So a replay of old logs raises exactly the alerts the live
//     run raised, in any arrival order whose disorder stays within
//     `lateness`.
//  2. A relative-change rule compares a window with the window W earlier
//     ([E-2W, E-W)), only when that window lies wholly after the first
//     event and has at least min_count events.
//  3. Repeated alerts of one rule and group are suppressed for `suppress`
//     of event time after the last one raised (counted).
//  4. Raw packets are consumed (their source positions become
//     committable); alert packets (and window summaries with
//     emit_windows) are new packets emitted on the filter's tick and at
//     shutdown (engine.FilterFlusher: FlushFilter, called by the engine
//     after the last Process/Tick, with its context), which evaluates every window that ends by the newest
//     event time, lateness ignored (a finished replay evaluates its last
//     complete windows; windows reaching past the data are partial and
//     are not evaluated).
//  5. Window state is not persisted: after a restart, windows refill from
//     the replayed (uncommitted) events and new ones.
//  6. idle_advance > 0 lets wall time advance the watermark when no event
//     arrived for that long (live mode only: it makes results depend on
//     timing, so keep it 0 for replays).
//
// Process, Tick and FlushFilter run on the filter's goroutine; sinks run on the
// filter's own sink goroutine, started by Start and stopped by Close.
package window
