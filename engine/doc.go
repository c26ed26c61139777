// Package engine runs dbus pipelines: it parses and validates configs,
// holds the plugin registry and the plugin API (Input, Filter, Output and
// their optional abilities), compiles the DAG, runs it with owned
// goroutines, rings and pools, tracks acks, commits checkpoints, and
// applies reloads.
//
// # For plugin authors
//
//  1. Write a constructor func(*Conf) (Input|Filter|Output, error) that
//     validates everything it can (Conf.Errorf locates an error at its
//     key) and never panics; do not connect in the constructor unless
//     Conf.Offline is false and the check is cheap (dbusd -t calls it).
//  2. Register a Spec (class, kind, fields with types and defaults,
//     summary) from your package's init into Default, and export a
//     Register(*Registry) for tests. Mark every credential field Secret
//     (or, inside an object field, list it in SecretKeys): its value is
//     then kept out of errors (Conf.Errorf; pass library errors that may
//     quote it through Conf.Redact), the admin API and ZooKeeper. String
//     values may be ${env:NAME} or ${file:PATH}: the parser resolves them.
//  3. Inputs: Run(ctx, ic) until ctx ends or the source is done; take
//     packets with ic.NewPacket (it blocks under back pressure), fill
//     them, set Pos and FlagBoundary, ic.Emit them on a Stream, call
//     ic.Flush before blocking on the source, and resume from
//     Stream.Resume. Inputs that read in bursts may take and emit many
//     packets per call (ic.NewPackets, ic.EmitBatch).
//  4. Filters: for each packet call exactly one of Emit, Drop, Consume
//     (after Derive) or return an error; call Writable before changing a
//     packet, and never change its Pos or flags.
//  5. Outputs: Write returns nil only when the sink durably accepted the
//     batch (or implement AsyncOutput and call Completion.Done once);
//     never keep a packet afterwards. Mark errors retrying cannot fix with
//     Permanent.
//
// A plugin uses only this plugin API of package engine (the interfaces and
// contexts above, errors, Spec/Field/Registry/Conf, WriteFileAtomic,
// Sleep), never the runtime (Engine, Supervisor, Parse, stores, stats);
// TestEngineAPIGuard enforces it for plugins/, and runtime pieces under
// engine/internal are out of reach by Go's internal rule.
//
// # Goroutine safety
//
// Registry, Supervisor and Engine methods are safe from any goroutine.
// Input, Filter and Output instances are called from one goroutine at a
// time (the engine's owner of that plugin); InputContext and
// FilterContext belong to that goroutine. A Conf is read-only.
//
// # Delivery
//
// At least once: a source position is committed only when every packet
// before it on its stream is done (acked by every output that got it,
// dropped on purpose, or dead-lettered). Failed writes are retried, then
// dead-lettered or held; nothing is dropped silently. See DESIGN.md for
// the goroutine layout, the packet life cycle and the invariants.
package engine
