// Package assign is the cluster's assignment logic: a pure, deterministic,
// single-threaded state machine that decides which member owns which
// resource. It does no I/O and reads no clock: time comes in with Tick
// events. The ZooKeeper adapter in package cluster feeds it events and
// carries out the actions it returns.
//
// Contract:
//
//  1. Create a Machine with New, or with Restore from a persisted State
//     (a new leader restores what the previous leader wrote).
//  2. Feed events with Step, one at a time, from one goroutine (a Machine
//     is not safe for concurrent use). Step returns the actions to carry
//     out, in order; the caller owns the returned slice.
//  3. A Machine that is not Active (Leadership{Active: false}) tracks
//     events but returns no actions; becoming Active rebalances.
//  4. Carry out every action before feeding the next event's actions:
//     Start{X, M, E} means "write owner(X) = M at epoch E" (after which the
//     previous owner, if any, is fenced); Stop{X, M, E} means "tell M to
//     release X" (M stops X gracefully, commits, then reports Released).
//  5. Persist Snapshot() together with the actions so that a successor
//     can Restore.
//
// Properties (tested in machine_test.go):
//   - Deterministic: the same events give the same actions.
//   - Weighted: member m gets floor or ceil of N*w(m)/W resources.
//   - Sticky: a resource moves only if its owner left or is over quota;
//     the number moved is the minimum any assignment meeting the quotas
//     needs.
//   - Graceful: a resource whose owner is alive is first released (Stop),
//     and granted to its new owner (Start) only once the old owner
//     reported Released or the release deadline (Config.ReleaseTimeout)
//     passed on a Tick, in which case the new grant fences the old owner.
//   - Epochs only grow: each Step that grants something increments the
//     epoch once; every Start of that step carries it.
package assign
