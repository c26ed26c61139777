// Package cluster runs several dbusd processes as one cluster. ZooKeeper
// decides only which member owns which resource; data never passes
// through it. See DESIGN.md for the znode layout and the invariants.
//
// Pieces:
//   - assign (sub-package): the pure assignment state machine.
//   - Member (Join, Run): registration, election, the leader (which runs
//     the machine and writes the assignment), and the resources granted
//     to this member, each run by a Runner.
//   - EngineRunner: one engine.Engine per resource, its distributed input
//     merged with the resource's config.
//   - Store: the engine.CheckpointStore of one resource at one epoch,
//     fenced by the owner record's znode version.
//   - Admin: the operator's API (the dbc cluster sub-commands in cmd/dbc use it).
//   - RunMember: what dbusd calls when its config has a cluster section.
//
// Contract for callers:
//  1. Join connects and registers; it returns clear errors for an
//     unreachable ZooKeeper and a duplicate member name.
//  2. Run blocks until its context ends; then every resource is stopped
//     (drained, final commit), the member steps down and the session is
//     closed. Call Run once.
//  3. A Member's methods (Name, IsLeader, Running, StoreStats) are safe
//     from any goroutine. Admin is for one goroutine at a time.
//  4. Runner.Run must return after its context ends, having drained; a
//     Store may be used only by the engine it was made for.
//
// A config pushed to the cluster (Admin.PushConfig, dbc config push)
// replaces the members' pipeline config while they run: each member
// validates it, then restarts only the resources whose effective config
// changed; a config it rejects changes nothing and is reported in its
// member znode (MemberInfo.ConfigError).
//
// Guarantees: a member runs a resource only while the assignment grants it
// to the member at the epoch recorded in owners/<resource>; a member that
// lost a resource cannot advance its checkpoint (engine.ErrFenced); a
// member writes to outputs only while its lease (last confirmed
// ZooKeeper contact + (1 - doubt) x session timeout, monotonic clock)
// holds, so it stops before the session can expire and keeps running
// through a ZooKeeper leader election. Delivery stays at least once: moves and failures may
// duplicate what was in flight since the last commit, never lose it.
package cluster
