package engine

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// Input reads a source and emits packets. See doc.go for the calling rules.
type Input interface {
	// Run emits packets until ctx ends (return nil or ctx.Err()) or the
	// source is exhausted (return nil: the engine drains and, if every
	// input has finished, stops). A returned error other than ctx.Err()
	// restarts the input with backoff; packets already emitted stay in
	// flight and are not lost.
	Run(ctx context.Context, ic InputContext) error
}

// InputContext is what the engine gives an Input. Its methods must be
// called from the goroutine running Input.Run, except Name, Log and
// Checkpoint.
type InputContext interface {
	// Name is the input's configured name.
	Name() string
	// Log is the input's logger.
	Log() *slog.Logger
	// Stream opens (or returns the already open) stream id: an ordered
	// sub-source with its own in-flight window and checkpoint, such as one
	// Kafka partition or one file. The empty id is the input's default
	// stream.
	Stream(id string) (*Stream, error)
	// NewPacket takes a packet from the input's pool, blocking while the
	// pool is empty (back pressure) until ctx ends.
	NewPacket(ctx context.Context) (*pack.Packet, error)
	// Emit hands p, taken from NewPacket and filled, to the pipeline on
	// stream s. Set p.Pos and pack.FlagBoundary before Emit if the
	// position may be checkpointed once p is done. Emit may buffer p until
	// the batch is full or Flush is called; it blocks under back pressure.
	// After Emit the input must not touch p.
	Emit(ctx context.Context, s *Stream, p *pack.Packet) error
	// NewPackets takes up to len(dst) packets from the input's pool into
	// dst and returns how many: at least one, blocking like NewPacket while
	// the pool is empty. With EmitBatch it saves two calls per packet for
	// inputs that produce packets in bursts (a fetch, a read buffer).
	NewPackets(ctx context.Context, dst []*pack.Packet) (int, error)
	// EmitBatch emits ps in order on stream s, as Emit does for each.
	// After the call, also on error, the input must not touch any of ps
	// (those not emitted are returned to the pool).
	EmitBatch(ctx context.Context, s *Stream, ps []*pack.Packet) error
	// Mark records a checkpoint position on s that becomes committable once
	// every packet emitted before it on s is done.
	Mark(ctx context.Context, s *Stream, pos pack.Pos) error
	// Flush publishes buffered packets. Call it before blocking on the
	// source (an idle source must not hold packets back).
	Flush(ctx context.Context) error
	// Commit saves every checkpoint of this input that is committable now
	// (a position Marked or emitted whose packets are all done) and
	// returns once the store has it. For positions that must be durable
	// before the input goes on: the start position an input resolved from
	// its config ("current") is marked and committed before the first
	// read, else a crash before the first checkpoint would resolve
	// "current" again and skip what was written meanwhile.
	Commit(ctx context.Context) error
	// CloseStream gives stream s up: it flushes, waits (bounded by ctx) until
	// every packet emitted on s is done, commits its checkpoint and forgets
	// it. Inputs call it when a stream goes away (a revoked Kafka
	// partition, a deleted file).
	CloseStream(ctx context.Context, s *Stream) error
	// Discard returns an unused packet from NewPacket to the pool.
	Discard(p *pack.Packet)
	// Paused blocks while an operator has paused this input, returning
	// ctx.Err() if ctx ends. NewPacket calls it, so most inputs need not.
	Paused(ctx context.Context) error
}

// Filter inspects, changes, drops or multiplies packets. Process is called
// from one goroutine at a time for a given filter instance. A filter may
// change a packet's payload, key, time and attributes (after Writable when
// it is shared) but never its Pos or flags: the source position is read
// when the packet is acknowledged.
type Filter interface {
	// Process handles p. For every p it must do exactly one of:
	//   - fc.Emit(p) (pass, possibly after changing it: call
	//     fc.Writable(p) first and use the packet it returns);
	//   - fc.Drop(p, reason) (discard on purpose: counted by reason);
	//   - fc.Consume(p) after emitting derived packets (fc.Derive).
	// An error drops nothing: the packet goes to the dead-letter output if
	// one is configured, else it is held (not acked) and counted.
	Process(fc FilterContext, p *pack.Packet) error
}

// FilterContext is what the engine gives a Filter during Process.
type FilterContext interface {
	Name() string
	Log() *slog.Logger
	// Emit passes p downstream.
	Emit(p *pack.Packet)
	// Drop releases p on purpose; reason is a short stable label
	// ("sampled", "filtered_table") used as a metric label.
	Drop(p *pack.Packet, reason string)
	// Consume releases the filter's hold on p without counting a drop;
	// used after emitting packets derived from p.
	Consume(p *pack.Packet)
	// Writable returns a packet that the filter may change: p itself when
	// the filter is its only holder, else a copy (copy-on-write) that
	// replaces p on this branch.
	Writable(p *pack.Packet) (*pack.Packet, error)
	// Derive returns a new empty packet derived from parent: parent is acked
	// only when every derived packet is done. Pass it to Emit.
	Derive(parent *pack.Packet) (*pack.Packet, error)
}

// Output delivers packets to a sink. Write is called from one goroutine.
type Output interface {
	// Write delivers batch. It returns nil once every packet is accepted
	// by the sink (for a broker: acknowledged), then the engine acks them.
	// A *BatchError names the packets that failed (others are acked); any
	// other error fails the whole batch. Failed packets are retried with
	// backoff, then sent to the dead-letter output, or held. Write must
	// not keep references to packets after it returns.
	Write(ctx context.Context, batch []*pack.Packet) error
}

// Completion is told the outcome of one AsyncOutput write.
type Completion interface {
	// Done reports the outcome: nil, a *BatchError, or an error for all.
	// It must be called exactly once, from any goroutine.
	Done(err error)
}

// AsyncOutput is an optional ability: the output accepts a batch and
// reports its outcome later, so several batches can be in flight (up to
// the output's in_flight setting). Order of batches is the order of
// WriteAsync calls.
type AsyncOutput interface {
	WriteAsync(ctx context.Context, batch []*pack.Packet, c Completion)
}

// TransactionalOutput is an optional ability of an output that can write
// its records and the positions of the input feeding it in one
// transaction of its sink (KafkaOutput exactly_once). When Transactional
// reports true the engine (txn.go, DESIGN.md "Exactly-once"):
//
//  1. refuses the pipeline unless this output is its only output, with
//     no dead_letter, fed by exactly one input, through filters that keep
//     no state (no Stateful, no Ticker);
//  2. calls BindTransaction once, before Start, with that input;
//  3. after Start and before the input runs, calls LoadCheckpoints: the
//     positions it returns ("input/stream" keys) take precedence over the
//     checkpoint store;
//  4. calls Write (never WriteAsync) from the output's goroutine. Write
//     returns once the records are part of the open transaction (the
//     output copies what it keeps); the engine then acks the packets;
//  5. between Writes, when CommitDue says so (or an input asked for a
//     synchronous Commit), calls CommitTransaction with the input's
//     positions covering exactly the packets acked so far. It calls it
//     only when the positions are exact (no packet acked after the last
//     boundary: a binlog transaction is never split);
//  6. never saves the input's positions in the checkpoint store and never
//     calls its Committer: the transaction is the only place they live;
//  7. on any error from Write or CommitTransaction stops the pipeline (the
//     transaction is aborted; Run returns the error): the next run resumes
//     from what LoadCheckpoints returns.
type TransactionalOutput interface {
	Transactional() bool
	BindTransaction(input string, in Input) error
	LoadCheckpoints(ctx context.Context) (map[string]Checkpoint, error)
	CommitDue() bool
	CommitTransaction(ctx context.Context, cps map[string]Checkpoint) error
}

// InFlightDefaulter is an AsyncOutput whose in_flight default is not 1:
// a client that pipelines (Kafka) needs several engine batches handed
// over to fill its own batches while earlier ones await their acks. An
// in_flight the config sets wins.
type InFlightDefaulter interface {
	DefaultInFlight() int
}

// BatchError reports which packets of a batch failed. Errs[i] is the error
// of batch[i] or nil.
type BatchError struct {
	Errs []error
}

func (e *BatchError) Error() string {
	n := 0
	var first error
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if first == nil {
		return "batch error with no failed packet"
	}
	return first.Error() + " (and " + strconv.Itoa(n-1) + " more failed packets)"
}

// Optional abilities, found by type assertion.

// Starter is implemented by plugins that connect before packets flow.
// Start errors are reported like constructor errors.
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is implemented by plugins that hold resources. Close is called
// once, after the plugin's last Run/Process/Write returned.
type Closer interface {
	Close(ctx context.Context) error
}

// Flusher is implemented by outputs or filters that buffer internally;
// Flush is called at shutdown (after the last Write) and before a
// checkpoint is committed at shutdown. Filters may emit from Flush.
type Flusher interface {
	Flush(ctx context.Context) error
}

// FilterFlusher is implemented by filters that hold state to emit at
// shutdown (windows, aggregates): FlushFilter is called once, after the
// filter's last Process/Tick, from the filter's goroutine, and may emit
// with tc (tc.New for fresh packets). It is preferred over Flusher for
// filters.
type FilterFlusher interface {
	FlushFilter(tc TickContext) error
}

// Stateful is implemented by filters whose state is derived from the
// packets they consumed (a cardinality sketch): the engine saves
// SaveState in the checkpoint store in the same Save as the inputs'
// positions, at every commit where the filter saw packets, under the key
// "state/<filter name>", and hands the saved bytes to LoadState before the
// filter's first packet. After a crash the inputs replay from their
// positions, so the state may see some packets twice: use it for
// idempotent state (sketches, sets), not for counters. SaveState is called
// from the commit goroutine and must be safe while Process runs.
type Stateful interface {
	SaveState() ([]byte, error)
	LoadState(data []byte) error
}

// Queryable is implemented by plugins whose state can be asked about
// through the admin API (GET /api/v1/plugins/{name}/query?...): a
// cardinality estimate, funnel counts. Query must be safe to call from any
// goroutine while the plugin runs; the result is rendered as JSON.
type Queryable interface {
	Query(params map[string]string) (any, error)
}

// Commander is implemented by plugins that take operator commands
// (POST /api/v1/plugins/{name}/command/{cmd}?arg=...; dbc): an ad hoc
// binlog snapshot ("snapshot db.table ..."). Command is called from the
// admin server's goroutine while the plugin runs: it validates, hands the
// work to the plugin's own goroutine and returns at once; the result is
// rendered as JSON.
type Commander interface {
	Command(ctx context.Context, cmd string, args []string) (any, error)
}

// Ticker is implemented by filters that act on time (windows, periodic
// emission). Tick is called from the filter's goroutine about every
// Interval, with the same FilterContext rules as Process, and may emit
// new packets with fc.New.
type Ticker interface {
	TickInterval() time.Duration
	Tick(fc TickContext) error
}

// TickContext lets a ticking filter emit packets it creates.
type TickContext interface {
	FilterContext
	// New returns a new packet (not derived from any parent) from the
	// filter's own pool. Emitted new packets are not tied to any source
	// position.
	New() (*pack.Packet, error)
}

// InlineOutput is an optional ability of outputs whose Write is cheap and
// never blocks (discard sinks, counters, the dry-run sink). When Inline
// returns true and the output has a single upstream that feeds nothing
// else, the engine calls Write from that upstream's goroutine instead of
// handing batches over a ring (operator chaining: no hand-off, no cross-core
// traffic). Outputs that wait on I/O must not claim it: the upstream would
// stop reading while they write.
type InlineOutput interface {
	Inline() bool
}

// DryRunner is implemented by outputs that can run their real encode path
// without sending (dbusd -dryrun). When absent, dry run replaces the
// output with a discard sink.
type DryRunner interface {
	SetDryRun(on bool)
}

// LagReporter is an optional Input ability: how far behind its source it
// is in time (binlog: now minus the last event's time). It is called at
// scrape time and must be cheap and safe from any goroutine.
type LagReporter interface{ Lag() time.Duration }

// RecordLagReporter is an optional Input ability: how many records behind
// its source it is (Kafka consumer lag).
type RecordLagReporter interface{ LagRecords() int64 }

// MetricKind says how a plugin metric behaves: a counter only grows, a
// gauge goes up and down.
type MetricKind uint8

const (
	MetricCounter MetricKind = iota
	MetricGauge
)

// MetricsReporter is an optional ability of any plugin: metrics of its own
// (Kafka consumer lag per partition, records skipped by loop prevention),
// exported on /metrics with the plugin's labels (plugin, kind, class) plus
// its own. ReportMetrics is called at scrape time (and by the admin
// status), never on the hot path, from any goroutine: it reads atomics or
// takes a lock of its own. It calls emit once per series; name is the full
// Prometheus name (dbus_ prefix, _total for counters), labels are pairs of
// label name and value. A plugin keeps a name's help and label names the
// same on every call.
type MetricsReporter interface {
	ReportMetrics(emit func(name, help string, kind MetricKind, value float64, labels ...string))
}

// Committer is implemented by inputs that must be told the committed
// position of a stream (e.g. to commit Kafka offsets). Commit is called
// after the engine saved the checkpoint, from the engine's commit
// goroutine, never concurrently for the same input.
type Committer interface {
	Commit(ctx context.Context, stream string, pos pack.Pos) error
}

// Checkpoint is a stored position.
type Checkpoint struct {
	Offset int64  `json:"offset"`
	Token  string `json:"token,omitempty"`
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent wraps err to say that retrying cannot help (a mapping error, a
// record over the broker's size limit): the engine skips its retry budget
// and sends the packet straight to the dead-letter output (or holds it).
// Use it for a whole-batch error or inside BatchError.Errs.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
