package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/ring"
)

// ErrTransactionAborted is returned by Run when an exactly_once
// (TransactionalOutput) pipeline stopped because its transaction failed;
// the Supervisor rebuilds and restarts such a component.
var ErrTransactionAborted = errors.New("transaction aborted")

// txnTick is how often an idle transactional output's goroutine wakes to
// ask the output whether its transaction is due (commit_interval).
const txnTick = 10 * time.Millisecond

// txnBinding ties a TransactionalOutput to the one input feeding it
// (TransactionalOutput, DESIGN.md "Exactly-once"). At most one per
// engine: the output is its component's only output.
type txnBinding struct {
	e   *Engine
	out TransactionalOutput
	or  *outputRunner
	ir  *inputRunner

	// req is set by an input's synchronous Commit; the output goroutine
	// commits at its next tick and closes committed.
	req atomic.Bool

	mu        sync.Mutex
	committed chan struct{} // guarded by mu: closed and replaced at each commit
	err       error         // guarded by mu: the failure that stopped the pipeline

	commits atomic.Uint64
}

// bindTransaction finds a transactional output among instances, refuses
// a pipeline where exactly-once cannot hold, and binds the output to its
// input. Errors name the output's file:line and say why.
func bindTransaction(g *graph, instances map[*node]any) (*txnBinding, *node, *node, error) {
	var tn *node
	var to TransactionalOutput
	for _, n := range g.nodes {
		if n.pc.Kind != KindOutput {
			continue
		}
		if t, ok := instances[n].(TransactionalOutput); ok && t.Transactional() {
			tn, to = n, t
			break
		}
	}
	if tn == nil {
		return nil, nil, nil, nil
	}
	refuse := func(format string, args ...any) error {
		return tn.pc.Conf.Errorf("exactly_once", "refused: "+format, args...)
	}
	var others, inputs, stateful []string
	var in *node
	for _, n := range g.nodes {
		switch n.pc.Kind {
		case KindOutput:
			if n != tn {
				others = append(others, n.name())
			}
		case KindInput:
			inputs = append(inputs, n.name())
			in = n
		case KindFilter:
			switch instances[n].(type) {
			case Stateful, Ticker:
				stateful = append(stateful, n.name())
			}
		}
	}
	sort.Strings(others)
	var errs []error
	if tn.dlq != nil {
		errs = append(errs, refuse("dead_letter %s: a dead-lettered record is written outside the Kafka transaction, so a restart would write it again or lose it; remove dead_letter (a record that cannot be written stops the pipeline)", tn.dlq.name()))
	}
	if len(others) > 0 {
		errs = append(errs, refuse("the pipeline also writes to %s: writes to other outputs (fan-out, dead-letter outputs, non-Kafka sinks) are not part of the Kafka transaction, so a restart would repeat or lose them; give each output its own input", strings.Join(others, ", ")))
	}
	if len(inputs) != 1 {
		errs = append(errs, refuse("fed by %d inputs (%s): exactly-once needs one input whose position is committed with the records", len(inputs), strings.Join(inputs, ", ")))
	}
	if len(stateful) > 0 {
		errs = append(errs, refuse("filters %s keep state or emit on a timer: their state is not part of the Kafka transaction, so a restart would not reproduce their output", strings.Join(stateful, ", ")))
	}
	if len(errs) > 0 {
		return nil, nil, nil, errors.Join(errs...)
	}
	if err := to.BindTransaction(in.name(), instances[in].(Input)); err != nil {
		return nil, nil, nil, tn.pc.Conf.Errorf("exactly_once", "%v", err)
	}
	return &txnBinding{out: to, committed: make(chan struct{})}, tn, in, nil
}

// txnStore is the engine's checkpoint store with the positions of the
// last committed transaction laid over it: they win where present.
type txnStore struct {
	CheckpointStore
	over map[string]Checkpoint
}

func (s *txnStore) Load(key string) (Checkpoint, bool, error) {
	if cp, ok := s.over[key]; ok {
		return cp, true, nil
	}
	return s.CheckpointStore.Load(key)
}

// load reads the committed positions (before the input runs).
func (b *txnBinding) load(ctx context.Context) error {
	cps, err := b.out.LoadCheckpoints(ctx)
	if err != nil {
		return fmt.Errorf("exactly_once output %s: load the committed positions: %w", b.or.n.name(), err)
	}
	if len(cps) > 0 {
		b.e.store = &txnStore{CheckpointStore: b.e.store, over: cps}
		b.e.log.Info("exactly_once: resuming from the positions of the last committed transaction",
			"output", b.or.n.name(), "input", b.ir.n.name(), "streams", len(cps))
	}
	return nil
}

// fail stops the pipeline after a failed write or commit: what the
// aborted transaction held is read again by the next run.
func (b *txnBinding) fail(err error) {
	b.mu.Lock()
	first := b.err == nil
	if first {
		b.err = fmt.Errorf("exactly_once output %s: %w, pipeline stopped (the next run resumes from the last committed transaction): %w", b.or.n.name(), ErrTransactionAborted, err)
	}
	b.mu.Unlock()
	if !first {
		return
	}
	e := b.e
	e.log.Error("exactly_once: transaction failed: stopping the pipeline; restart it to resume from the last committed transaction",
		"output", b.or.n.name(), "err", err)
	e.stopInputs()
	e.HardStop()
	e.hardCancel()
}

// failure returns the error that stopped the pipeline, or nil.
func (b *txnBinding) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// commitSync asks the output goroutine to commit now and waits for it:
// InputContext.Commit of the bound input (a resolved start position must
// be durable before the input reads on).
func (b *txnBinding) commitSync(ctx context.Context) error {
	// Two commits: the first may have read the positions before the
	// caller's Mark; the second started after this request.
	for i := 0; i < 2; i++ {
		b.mu.Lock()
		ch := b.committed
		b.mu.Unlock()
		b.req.Store(true)
		select {
		case <-ch:
		case <-b.e.hardCtx.Done():
			if err := b.failure(); err != nil {
				return err
			}
			return fmt.Errorf("exactly_once output %s: stopping before the commit", b.or.n.name())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// tryCommit commits the open transaction with the input's positions if
// they cover exactly what was acked. It runs on the output goroutine,
// between Writes. final says the pipeline is stopping.
func (b *txnBinding) tryCommit(final bool) {
	or := b.or
	or.rel.Flush() // the acked packets' sequences reach their windows
	cps := map[string]Checkpoint{}
	for _, s := range b.ir.streamList() {
		off, tok, ok, exact := s.win.ExactCheckpoint(nil)
		if !exact {
			if final {
				b.e.log.Warn("exactly_once: stopping inside a source transaction: the open Kafka transaction is aborted, the next run reads it again",
					"output", or.n.name(), "stream", s.key)
			}
			return
		}
		if ok {
			cps[s.key] = Checkpoint{Offset: off, Token: string(tok)}
		}
	}
	if err := b.out.CommitTransaction(b.e.hardCtx, cps); err != nil {
		b.fail(err)
		return
	}
	b.commits.Add(1)
	b.req.Store(false)
	b.mu.Lock()
	close(b.committed)
	b.committed = make(chan struct{})
	b.mu.Unlock()
	for _, cp := range cps {
		b.ir.stats.checkpoint(cp.Offset)
	}
}

// runTxn is the output goroutine of a transactional output: synchronous
// Writes into the open transaction, commits between them.
func (or *outputRunner) runTxn(b *txnBinding) {
	e := or.e
	for {
		n, err := or.inbox.ring.GetWait(e.hardCtx, or.buf, txnTick)
		if err != nil {
			if errors.Is(err, ring.ErrClosed) && e.hardCtx.Err() == nil && b.failure() == nil {
				b.tryCommit(true)
			}
			return
		}
		if n > 0 {
			or.deliverWith(or.buf[:n], or.writeTxn)
			clear(or.buf[:n])
			or.rel.Flush()
			if e.hardCtx.Err() != nil || b.failure() != nil {
				return
			}
		}
		if b.req.Load() || b.out.CommitDue() {
			b.tryCommit(false)
			if b.failure() != nil {
				return
			}
		}
	}
}

// writeTxn is write for a transactional output: any error stops the
// pipeline (no retry: the open transaction must be aborted as a whole).
func (or *outputRunner) writeTxn(batch []*pack.Packet) error {
	err := or.write(batch)
	if err != nil && or.e.hardCtx.Err() == nil {
		or.e.txn.fail(err)
	}
	return err
}
