package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine/internal/plan"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/ring"
)

// Options configure an Engine beyond its Config.
type Options struct {
	// Registry resolves classes; nil means Default.
	Registry *Registry
	// Store persists checkpoints; nil means a FileStore in
	// engine.checkpoint_dir, or a MemoryStore when that is empty.
	Store CheckpointStore
	// DryRun replaces every output with an acking discard sink, except
	// outputs implementing DryRunner, which run their encode path.
	DryRun bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Offline builds plugins without probing their environment (see
	// Conf.Offline); used to validate configs on a machine that cannot
	// reach the brokers or lacks the deployment's files.
	Offline bool
	// Lease, when set, reports whether this process may still write to
	// its outputs (cluster mode: the member's ZooKeeper lease has not run
	// out, see cluster/DESIGN.md). It is called before every output batch
	// (it must be cheap, safe for concurrent use and must not allocate).
	// Once it returns false no batch is written any more: the engine
	// stops its inputs, leaves the unwritten packets unacked (they are
	// read again from the last checkpoint by whoever owns the source
	// next) and Run returns an error wrapping ErrLeaseExpired.
	Lease func() bool
}

// ErrLeaseExpired: Options.Lease reported that this process may no longer
// write to its outputs.
var ErrLeaseExpired = errors.New("lease expired: this process may no longer write to outputs")

// Engine runs one pipeline: the DAG compiled from a Config. Create it with
// New, run it once with Run. See DESIGN.md for the goroutine layout and
// shutdown order.
type Engine struct {
	cfg   *Config
	opts  Options
	reg   *Registry
	log   *slog.Logger
	g     *graph
	store CheckpointStore

	inputs  []*inputRunner
	filters []*filterRunner
	outputs []*outputRunner
	inboxes map[*node]*inbox
	runners map[*node]*outputRunner
	stats   map[string]*NodeStats

	hardCtx    context.Context
	hardCancel context.CancelFunc
	forceHard  chan struct{} // closed by HardStop
	forceOnce  sync.Once
	inCtx      context.Context
	inCancel   context.CancelFunc

	wg        sync.WaitGroup // every goroutine the engine starts
	live      sync.Map       // names of running engine goroutines
	inputsWG  sync.WaitGroup
	commitMu  sync.Mutex // serialises commits; guards Stream.savedGen/closed
	started   atomic.Bool
	startTime time.Time
	hardStop  atomic.Bool
	leaseLost atomic.Bool // Options.Lease returned false once
	// txn binds a transactional (exactly_once) output to its input, or
	// is nil (txn.go).
	txn *txnBinding
}

// inbox is the ring in front of a node that runs in its own goroutine
// (outputs and unfused filters), with the number of goroutines that may
// still put into it. The last producer to finish closes the ring.
type inbox struct {
	n         *node
	ring      *ring.Ring[*pack.Packet]
	producers atomic.Int32
}

func (ib *inbox) producerDone() {
	if ib.producers.Add(-1) == 0 {
		ib.ring.Close()
	}
}

// New builds the engine: constructs every plugin (collecting all
// constructor errors), compiles the DAG and preallocates rings and pools.
// Nothing runs until Run.
func New(cfg *Config, opts Options) (*Engine, error) {
	if opts.Registry == nil {
		opts.Registry = Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, opts: opts, reg: opts.Registry, log: opts.Logger, g: g,
		inboxes: map[*node]*inbox{}, stats: map[string]*NodeStats{}}
	e.hardCtx, e.hardCancel = context.WithCancel(context.Background())
	e.forceHard = make(chan struct{})
	e.inCtx, e.inCancel = context.WithCancel(e.hardCtx)

	var errs []error
	instances := map[*node]any{}
	for _, n := range g.nodes {
		n.pc.Conf.offline = opts.Offline
		inst, err := construct(n.pc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if opts.DryRun && n.pc.Kind == KindOutput {
			if dr, ok := inst.(DryRunner); ok {
				dr.SetDryRun(true)
			} else {
				inst = discardOutput{}
			}
		}
		instances[n] = inst
		e.stats[n.name()] = newNodeStats(n.name(), n.pc.Kind, n.pc.Class)
		e.stats[n.name()].setPlugin(inst)
	}
	if len(errs) > 0 {
		closeAll(instances)
		return nil, errors.Join(errs...)
	}
	if err := bindSources(g, instances); err != nil {
		closeAll(instances)
		return nil, err
	}
	var txnOut, txnIn *node
	if !opts.DryRun {
		e.txn, txnOut, txnIn, err = bindTransaction(g, instances)
		if err != nil {
			closeAll(instances)
			return nil, err
		}
	}
	// Where each node runs (engine/internal/plan), then a ring for each node with a
	// goroutine of its own.
	places := placeNodes(g, func(n *node) nodeCaps {
		inst := instances[n]
		_, ticker := inst.(Ticker)
		_, async := inst.(AsyncOutput)
		io, ok := inst.(InlineOutput)
		return nodeCaps{ticker: ticker, async: async, inline: ok && io.Inline()}
	}, cfg.Engine.FuseOutputs)
	for _, n := range g.nodes {
		n.fused, n.inline = places[n.idx] == plan.Fused, places[n.idx] == plan.Inlined
		if !plan.NeedsInbox(planRoles[n.pc.Kind], places[n.idx]) {
			continue
		}
		r, err := ring.New[*pack.Packet](cfg.Engine.Ring, ring.MultiProducer)
		if err != nil {
			closeAll(instances)
			return nil, err
		}
		e.inboxes[n] = &inbox{n: n, ring: r}
	}
	if opts.Store != nil {
		e.store = opts.Store
	} else if cfg.Engine.CheckpointDir != "" {
		fs, err := OpenFileStore(cfg.Engine.CheckpointDir)
		if err != nil {
			closeAll(instances)
			return nil, err
		}
		e.store = fs
	} else {
		e.store = NewMemoryStore()
	}
	// Build the goroutine owners.
	for _, n := range g.nodes {
		switch {
		case n.pc.Kind == KindInput:
			ir, err := e.newInputRunner(n, instances[n].(Input))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.inputs = append(e.inputs, ir)
		case n.pc.Kind == KindFilter && !n.fused:
			fr, err := e.newFilterRunner(n, instances[n].(Filter), instances)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.filters = append(e.filters, fr)
		case n.pc.Kind == KindOutput:
			e.outputs = append(e.outputs, e.newOutputRunner(n, instances[n].(Output)))
		}
	}
	if len(errs) > 0 {
		closeAll(instances)
		return nil, errors.Join(errs...)
	}
	e.runners = map[*node]*outputRunner{}
	for _, or := range e.outputs {
		e.runners[or.n] = or
	}
	if e.txn != nil {
		e.txn.e, e.txn.or = e, e.runners[txnOut]
		e.txn.or.async = nil // Write only: acked once in the open transaction
		for _, ir := range e.inputs {
			if ir.n == txnIn {
				e.txn.ir = ir
			}
		}
	}
	// Wire fused chains into input and filter owners (needs instances).
	for _, ir := range e.inputs {
		ir.owner.edges = e.edgesFrom(&ir.owner, ir.n, instances)
	}
	for _, fr := range e.filters {
		fr.owner.edges = e.edgesFrom(&fr.owner, fr.n, instances)
	}
	// Producer counts: every owner that may put into an inbox.
	for _, ir := range e.inputs {
		for _, ib := range ir.owner.targets {
			ib.producers.Add(1)
		}
	}
	for _, fr := range e.filters {
		for _, ib := range fr.owner.targets {
			ib.producers.Add(1)
		}
	}
	for _, or := range e.outputs {
		if or.dlq != nil {
			or.dlq.producers.Add(1)
		}
	}
	return e, nil
}

func construct(pc *PluginConfig) (any, error) {
	var inst any
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("constructor panicked: %v", r)
			}
		}()
		switch pc.Kind {
		case KindInput:
			inst, err = pc.Spec.NewInput(pc.Conf)
		case KindFilter:
			inst, err = pc.Spec.NewFilter(pc.Conf)
		case KindOutput:
			inst, err = pc.Spec.NewOutput(pc.Conf)
		}
	}()
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &ConfigError{File: pc.Conf.File, Line: pc.Line, Msg: fmt.Sprintf("%s (%s): %v", pc.Name, pc.Class, err)}
	}
	if inst == nil {
		return nil, &ConfigError{File: pc.Conf.File, Line: pc.Line, Msg: fmt.Sprintf("%s (%s): constructor returned nil", pc.Name, pc.Class)}
	}
	return inst, nil
}

func closeAll(instances map[*node]any) {
	for _, inst := range instances {
		if c, ok := inst.(Closer); ok {
			c.Close(context.Background())
		}
	}
}

// edgesFrom returns the hand-offs from node n inside owner o: a ring for
// every downstream node with its own goroutine, a fused chain otherwise.
// It records the inboxes o may put into (for the close cascade).
func (e *Engine) edgesFrom(o *owner, n *node, instances map[*node]any) []edge {
	var out []edge
	for _, d := range n.down {
		if d.fused {
			c := &chain{n: d, f: instances[d].(Filter), o: o, stats: e.stats[d.name()]}
			c.fc = &filterCtx{c: c}
			c.out = make([]*pack.Packet, 0, e.cfg.Engine.Batch)
			if d.dlq != nil {
				c.dlq = e.inboxes[d.dlq]
				o.addTarget(c.dlq)
			}
			c.edges = e.edgesFrom(o, d, instances)
			out = append(out, edge{chain: c})
			continue
		}
		if d.inline {
			or := e.runners[d]
			// The output acks in o's goroutine: its recycled packets of
			// o's pool go back LIFO without crossing a ring.
			or.rel.Local(o.pool)
			o.inlineOuts = append(o.inlineOuts, or)
			out = append(out, edge{out: or})
			continue
		}
		ib := e.inboxes[d]
		o.addTarget(ib)
		out = append(out, edge{inbox: ib})
	}
	return out
}

// Run starts the pipeline and blocks until ctx ends (orderly shutdown) or
// every input has finished its source (drain and stop). Shutdown order:
// stop inputs, flush their batches, drain rings in DAG order, flush and
// close outputs, commit checkpoints, close the store. If draining takes
// longer than engine.shutdown_timeout, the engine stops hard: unacked
// packets are not committed (they will be read again) and Run says so.
func (e *Engine) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("engine: Run called twice")
	}
	e.startTime = time.Now()
	defer e.hardCancel()
	if err := e.startPlugins(ctx); err != nil {
		e.closePlugins()
		e.store.Close()
		return err
	}
	if e.txn != nil {
		if err := e.txn.load(ctx); err != nil {
			e.closePlugins()
			e.store.Close()
			return err
		}
	}
	for _, or := range e.outputs {
		if !or.n.inline {
			e.goOwned("output "+or.n.name(), or.run)
		}
	}
	for _, fr := range e.filters {
		e.goOwned("filter "+fr.n.name(), fr.run)
	}
	for _, ir := range e.inputs {
		e.inputsWG.Add(1)
		e.goOwned("input "+ir.n.name(), ir.run)
	}
	commitDone := make(chan struct{})
	commitStop := make(chan struct{})
	go func() {
		defer close(commitDone)
		e.commitLoop(commitStop)
	}()
	inputsDone := make(chan struct{})
	go func() {
		e.inputsWG.Wait()
		close(inputsDone)
	}()
	replaced := false
	select {
	case <-ctx.Done():
		if replaced = errors.Is(context.Cause(ctx), ErrReplacedByReload); replaced {
			e.log.Info("reload: draining the replaced component")
		} else {
			e.log.Info("shutdown: stopping inputs")
		}
	case <-inputsDone:
		e.log.Info("every input finished: draining")
	}
	e.stopInputs()
	allDone := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(allDone)
	}()
	var runErr error
	timer := time.NewTimer(e.cfg.Engine.ShutdownTimeout)
	hard := func(why string) {
		e.hardStop.Store(true)
		e.hardCancel()
		runErr = fmt.Errorf("shutdown: %s; stopped hard, %d packets not acked will be read again after restart", why, e.InFlight())
	}
	select {
	case <-allDone:
		timer.Stop()
	case <-e.forceHard:
		timer.Stop()
		hard("hard stop requested during the drain")
	case <-timer.C:
		hard(fmt.Sprintf("drain did not finish within %s", e.cfg.Engine.ShutdownTimeout))
	}
	if e.hardStop.Load() {
		// A plugin blocked in a call that ignores its context (a read on
		// a pipe, a stuck client) must not hold the process forever: give
		// the goroutines a grace period, then commit what is acked and
		// return; the stuck goroutine is reported by name.
		grace := min(5*time.Second, e.cfg.Engine.ShutdownTimeout)
		select {
		case <-allDone:
		case <-time.After(grace):
			runErr = errors.Join(runErr, fmt.Errorf("shutdown: plugins still running %s after the hard stop (blocked in a call that ignores cancellation): %v",
				grace, e.running()))
		}
	}
	close(commitStop)
	<-commitDone
	if err := e.commit(context.Background()); err != nil {
		runErr = errors.Join(runErr, err)
	}
	e.closePlugins()
	if err := e.store.Close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if e.txn != nil {
		if err := e.txn.failure(); err != nil {
			runErr = errors.Join(err, runErr)
		}
	}
	if e.leaseLost.Load() {
		runErr = errors.Join(fmt.Errorf("%w: stopped writing; packets not written will be read again from the last checkpoint", ErrLeaseExpired), runErr)
	}
	if replaced {
		e.log.Info("reload: replaced component stopped", "uptime", time.Since(e.startTime).Round(time.Millisecond))
	} else {
		e.log.Info("shutdown complete", "uptime", time.Since(e.startTime).Round(time.Millisecond))
	}
	return runErr
}

// ErrReplacedByReload is the cause with which the Supervisor cancels a
// component that a reload replaces: its engine drains and commits as in a
// shutdown, and says in its log that it was a reload.
var ErrReplacedByReload = errors.New("replaced by a reload")

// HardStop cuts a drain under way short, as if shutdown_timeout had
// passed: Run commits what is acked and returns, naming how many packets
// will be read again. Safe to call any number of times, from any goroutine.
func (e *Engine) HardStop() { e.forceOnce.Do(func() { close(e.forceHard) }) }

// goOwned starts f as an engine-owned goroutine, named for reports.
func (e *Engine) goOwned(name string, f func()) {
	e.wg.Add(1)
	e.live.Store(name, true)
	go func() {
		defer e.wg.Done()
		defer e.live.Delete(name)
		f()
	}()
}

// running lists the engine goroutines that have not returned.
func (e *Engine) running() []string {
	var out []string
	e.live.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	sort.Strings(out)
	return out
}

// statefulFilters lists the filters that keep state in the store.
func (e *Engine) statefulFilters() []*chain {
	var out []*chain
	for _, ir := range e.inputs {
		for _, c := range ir.chains() {
			if _, ok := c.f.(Stateful); ok {
				out = append(out, c)
			}
		}
	}
	for _, fr := range e.filters {
		for _, c := range append([]*chain{fr.chain}, fr.chains()...) {
			if _, ok := c.f.(Stateful); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// loadStates hands stateful filters their saved state.
func (e *Engine) loadStates() error {
	for _, c := range e.statefulFilters() {
		cp, ok, err := e.store.Load(stateKey(c.n.name()))
		if err != nil {
			return fmt.Errorf("load state of %s: %w", c.n.name(), err)
		}
		if !ok {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(cp.Token)
		if err == nil {
			err = c.f.(Stateful).LoadState(data)
		}
		if err != nil {
			return fmt.Errorf("restore state of %s: %w", c.n.name(), err)
		}
	}
	return nil
}

func stateKey(name string) string { return "state/" + name }

func (e *Engine) startPlugins(ctx context.Context) error {
	if err := e.loadStates(); err != nil {
		return err
	}
	var started []Starter
	start := func(name string, x any) error {
		s, ok := x.(Starter)
		if !ok {
			return nil
		}
		if err := s.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		started = append(started, s)
		return nil
	}
	for _, or := range e.outputs {
		if err := start(or.n.name(), or.out); err != nil {
			return err
		}
	}
	for _, fr := range e.filters {
		if err := start(fr.n.name(), fr.chain.f); err != nil {
			return err
		}
	}
	for _, ir := range e.inputs {
		for _, c := range ir.owner.chains() {
			if err := start(c.n.name(), c.f); err != nil {
				return err
			}
		}
		if err := start(ir.n.name(), ir.in); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) closePlugins() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closeOne := func(name string, x any) {
		if c, ok := x.(Closer); ok {
			if err := c.Close(ctx); err != nil {
				e.log.Warn("close plugin", "plugin", name, "err", err)
			}
		}
	}
	for _, ir := range e.inputs {
		closeOne(ir.n.name(), ir.in)
		for _, c := range ir.owner.chains() {
			closeOne(c.n.name(), c.f)
		}
	}
	for _, fr := range e.filters {
		for _, c := range fr.owner.chains() {
			closeOne(c.n.name(), c.f)
		}
		closeOne(fr.n.name(), fr.chain.f)
	}
	for _, or := range e.outputs {
		closeOne(or.n.name(), or.out)
	}
}

// InFlight returns the number of packets emitted and not yet done, over
// every stream.
func (e *Engine) InFlight() int {
	n := 0
	for _, ir := range e.inputs {
		for _, s := range ir.streamList() {
			n += s.InFlight()
		}
	}
	return n
}

// commitLoop commits checkpoints every interval until stop closes.
func (e *Engine) commitLoop(stop <-chan struct{}) {
	t := time.NewTicker(e.cfg.Engine.CheckpointInterval)
	defer t.Stop()
	w := time.NewTicker(min(time.Second, e.cfg.Engine.HeldWarn/2+time.Millisecond))
	defer w.Stop()
	failures := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := e.commit(e.hardCtx); err != nil {
				failures++
				if failures == 1 || failures%100 == 0 {
					e.log.Error("checkpoint commit failed; retrying every interval", "err", err, "failures", failures)
				}
			} else if failures > 0 {
				e.log.Info("checkpoint commit recovered", "after_failures", failures)
				failures = 0
			}
		case <-w.C:
			e.watchHeld()
		}
	}
}

// watchHeld is the held-packet watchdog: an output that has held a batch
// longer than engine.held_warn is reported by name, once per episode (the
// held_seconds stat shows it continuously).
func (e *Engine) watchHeld() {
	now := nowNano()
	for _, or := range e.outputs {
		st := or.stats
		hs := st.holdSince.Load()
		held := hs != 0 && time.Duration(now-hs) > e.cfg.Engine.HeldWarn
		if held && st.stuck.CompareAndSwap(false, true) {
			e.log.Warn("output holds packets longer than held_warn: sink stuck or slow, checkpoints wait for it",
				"output", or.n.name(), "held", time.Duration(now-hs).Round(time.Millisecond), "held_warn", e.cfg.Engine.HeldWarn)
		} else if !held && st.stuck.CompareAndSwap(true, false) {
			e.log.Info("output no longer holds packets past held_warn", "output", or.n.name())
		}
	}
}

// Stuck reports the names of outputs currently past held_warn.
func (e *Engine) Stuck() []string {
	var out []string
	for _, or := range e.outputs {
		if or.stats.stuck.Load() {
			out = append(out, or.n.name())
		}
	}
	return out
}

// commit saves every stream checkpoint that moved since the last commit,
// then tells Committer inputs.
func (e *Engine) commit(ctx context.Context) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	type moved struct {
		ir  *inputRunner
		s   *Stream
		gen uint64
		cp  Checkpoint
	}
	var ms []moved
	cps := map[string]Checkpoint{}
	for _, ir := range e.inputs {
		if e.txn != nil && e.txn.ir == ir {
			continue // its positions live in the output's transactions
		}
		for _, s := range ir.streamList() {
			off, tok, gen, ok := s.win.Checkpoint(s.tok[:0])
			s.tok = tok[:0]
			if !ok || gen == s.savedGen {
				continue
			}
			cp := Checkpoint{Offset: off, Token: string(tok)}
			cps[s.key] = cp
			ms = append(ms, moved{ir, s, gen, cp})
		}
	}
	for _, c := range e.statefulFilters() {
		if in := c.processed.Load(); in != c.savedIn {
			data, err := c.f.(Stateful).SaveState()
			if err != nil {
				e.log.Error("filter state not saved", "filter", c.n.name(), "err", err)
				continue
			}
			cps[stateKey(c.n.name())] = Checkpoint{Token: base64.StdEncoding.EncodeToString(data)}
			c.savedIn = in
		}
	}
	if len(cps) == 0 {
		return nil
	}
	if err := e.store.Save(cps); err != nil {
		if errors.Is(err, ErrFenced) {
			e.log.Error("checkpoint fenced: ownership lost, stopping inputs", "err", err)
			e.stopInputs()
		}
		return err
	}
	var errs []error
	for _, m := range ms {
		m.s.savedGen = m.gen
		m.ir.stats.checkpoint(m.cp.Offset)
		if c, ok := m.ir.in.(Committer); ok {
			if err := c.Commit(ctx, m.s.id, pack.Pos{Offset: m.cp.Offset, Token: []byte(m.cp.Token)}); err != nil {
				errs = append(errs, fmt.Errorf("commit %s: %w", m.s.key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Checkpoints returns the committed checkpoint of every open stream.
func (e *Engine) Checkpoints() map[string]Checkpoint {
	out := map[string]Checkpoint{}
	for _, ir := range e.inputs {
		for _, s := range ir.streamList() {
			if cp, ok, _ := e.store.Load(s.key); ok {
				out[s.key] = cp
			}
		}
	}
	return out
}

// Stats returns a snapshot of every node's counters, sorted by name.
func (e *Engine) Stats() []NodeSnapshot {
	out := make([]NodeSnapshot, 0, len(e.stats))
	for _, st := range e.stats {
		out = append(out, st.snapshot())
	}
	for i := range out {
		for _, ib := range e.inboxes {
			if ib.n.name() == out[i].Name {
				out[i].QueueLen, out[i].QueueCap = ib.ring.Len(), ib.ring.Cap()
			}
		}
		for _, ir := range e.inputs {
			if ir.n.name() == out[i].Name {
				out[i].PoolFree, out[i].PoolCap = ir.owner.pool.Free(), ir.owner.pool.Cap()
				out[i].PoolResidentBytes, out[i].PoolOutBytes = ir.owner.pool.Resident(), ir.owner.pool.OutBytes()
				for _, s := range ir.streamList() {
					out[i].InFlight += s.InFlight()
				}
				out[i].Paused = ir.paused.Load()
				if lr, ok := ir.in.(LagReporter); ok {
					out[i].LagSeconds = lr.Lag().Seconds()
				}
				if lr, ok := ir.in.(RecordLagReporter); ok {
					out[i].LagRecords = lr.LagRecords()
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// stopInputs cancels the inputs' context and closes their packet gate.
// leaseValid reports whether outputs may write (Options.Lease). The first
// false stops the inputs; it stays false for the rest of the run.
func (e *Engine) leaseValid() bool {
	if e.opts.Lease == nil {
		return true
	}
	if e.leaseLost.Load() {
		return false
	}
	if e.opts.Lease() {
		return true
	}
	if e.leaseLost.CompareAndSwap(false, true) {
		e.log.Error("lease expired: not writing to outputs any more, stopping inputs (what was not written is read again from the last checkpoint)")
		e.stopInputs()
	}
	return false
}

func (e *Engine) stopInputs() {
	e.inCancel()
	for _, ir := range e.inputs {
		ir.stop()
	}
}

// ErrStopping is returned by Pause and Resume for an input whose engine is
// shutting down (orderly stop, or a reload draining its component).
var ErrStopping = errors.New("the input is stopping")

// Pause stops the named input from taking new packets (its source is not
// read while paused). Packets in flight continue.
func (e *Engine) Pause(name string) error { return e.setPaused(name, true) }

// Resume undoes Pause.
func (e *Engine) Resume(name string) error { return e.setPaused(name, false) }

func (e *Engine) setPaused(name string, on bool) error {
	for _, ir := range e.inputs {
		if ir.n.name() == name {
			if e.inCtx.Err() != nil {
				return fmt.Errorf("input %q: %w", name, ErrStopping)
			}
			ir.setPaused(on)
			return nil
		}
	}
	if _, ok := e.g.byName[name]; ok {
		return fmt.Errorf("%q is not an input: only inputs can be paused", name)
	}
	return fmt.Errorf("no plugin named %q", name)
}

// Config returns the engine's config.
func (e *Engine) Config() *Config { return e.cfg }

// Uptime returns how long the engine has been running.
func (e *Engine) Uptime() time.Duration {
	if e.startTime.IsZero() {
		return 0
	}
	return time.Since(e.startTime)
}

// Sleep waits d or until ctx ends and reports whether d elapsed: the
// backoff wait plugins and the engine share.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// instance returns the running plugin instance of node name.
func (e *Engine) instance(name string) (any, bool) {
	for _, ir := range e.inputs {
		if ir.n.name() == name {
			return ir.in, true
		}
		for _, c := range ir.chains() {
			if c.n.name() == name {
				return c.f, true
			}
		}
	}
	for _, fr := range e.filters {
		if fr.n.name() == name {
			return fr.chain.f, true
		}
		for _, c := range fr.chains() {
			if c.n.name() == name {
				return c.f, true
			}
		}
	}
	for _, or := range e.outputs {
		if or.n.name() == name {
			return or.out, true
		}
	}
	return nil, false
}

// ErrNotQueryable is returned by Query for plugins without state to query.
var ErrNotQueryable = errors.New("plugin has no queryable state")

// Query asks the named plugin's state (see Queryable).
func (e *Engine) Query(name string, params map[string]string) (any, error) {
	inst, ok := e.instance(name)
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", name)
	}
	q, ok := inst.(Queryable)
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotQueryable)
	}
	return q.Query(params)
}

// ErrNoCommands is returned by Command for plugins that take none.
var ErrNoCommands = errors.New("plugin takes no commands")

// Command passes an operator command to the named plugin (see Commander).
func (e *Engine) Command(ctx context.Context, name, cmd string, args []string) (any, error) {
	inst, ok := e.instance(name)
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", name)
	}
	c, ok := inst.(Commander)
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNoCommands)
	}
	return c.Command(ctx, cmd, args)
}

// Close releases the plugins of an engine that was built but will not run
// (validation, a rejected reload). It must not be called on an engine
// whose Run was called: Run closes its plugins itself.
func (e *Engine) Close() error {
	if e.started.Load() {
		return errors.New("engine: Close on an engine that ran; Run closes its plugins")
	}
	e.closePlugins()
	return nil
}
