// Package cardinality holds Cardinality: distinct counts (HyperLogLog,
// package hll) of an id attribute per key and per calendar time bucket of
// the event time (hour, day, week, month, or total), e.g. daily and
// monthly active users per app.
//
// Contract:
//  1. Raw packets are consumed (their positions become committable);
//     a packet without the id attribute is dropped with reason "no_id".
//     String ids are hashed as bytes, integer ids as integers.
//  2. Every tick (emit_interval) one packet per (key, period, bucket)
//     that changed is emitted: attributes type=cardinality, key, period,
//     bucket (start, RFC 3339), count; payload JSON of the same. At shutdown
//     (engine.FilterFlusher: FlushFilter, with the engine's context) what
//     changed since the last tick is emitted.
//  3. Only the newest `keep` buckets of each period are kept.
//  4. Persistence: with state_dir, every sketch is saved to
//     state_dir/<filter name>.hll.json (atomic write) every save_interval
//     and at FlushFilter, and loaded at start. Sketches are idempotent (adding
//     an id twice changes nothing), so events replayed after a crash are
//     harmless; events whose positions were committed after the last save
//     are lost from the counts (at most save_interval). Exactness needs
//     the engine to store filter state with the checkpoint (proposed).
//  5. Query (engine.Queryable: the admin API's
//     GET /api/v1/plugins/{name}/query?key=&period=&at=&from=&to=, and
//     dbc query), Count, Merged and Snapshot may be called from any
//     goroutine; the filter's state is guarded by its mutex. Query gives
//     the estimate per key and bucket, or with from/to the union of the
//     buckets in a range per key and period.
package cardinality
