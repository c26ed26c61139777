// Package plan is the engine's placement step: which node of a compiled
// DAG runs in which goroutine. It is a pure function of the DAG's shape and
// of what each plugin instance can do, with table tests (plan_test.go); the
// engine applies it when it builds a component. It sits under
// engine/internal so that plugins cannot depend on it.
//
// The rules:
//
//  1. An input runs in its own goroutine and has no inbox.
//  2. A filter with exactly one upstream is fused (operator chaining): it
//     runs in its upstream's goroutine, no ring. A filter with several
//     upstreams, or one that must be ticked (Ticker), gets its own
//     goroutine behind a ring.
//  3. An output is inline (runs in its single upstream's goroutine) when
//     output fusion is on (engine.fuse_outputs), it says its writes are
//     cheap (InlineOutput), it is synchronous, it is nobody's dead-letter
//     output, it has exactly one upstream, and that upstream feeds nothing
//     else. Otherwise it gets its own goroutine behind a ring.
//
// Place allocates its result and keeps no state: safe from any goroutine.
package plan
