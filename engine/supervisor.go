package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine/internal/plan"
	"gopkg.in/yaml.v3"
)

// Supervisor runs a Config as independent components — the connected parts
// of the DAG, each an Engine of its own — and applies reloads as a diff:
// components whose plugins are unchanged keep running; changed or removed
// ones are drained (stop inputs, drain, flush, commit) and replaced; new
// ones start. A reload that fails validation or construction changes
// nothing. Every applied reload bumps the generation.
//
// Why components and not single plugins: filters run fused in their
// upstream's goroutine and the DAG is compiled to static hand-offs, so a
// changed plugin needs its component re-wired; an untouched component is
// independent and keeps running. See DESIGN.md.
type Supervisor struct {
	opts  Options
	store CheckpointStore

	mu      sync.Mutex // serialises Run start, reloads and component changes
	cfg     *Config
	comps   map[string]*component
	runCtx  context.Context
	running bool
	gen     atomic.Int64
	start   time.Time

	reloading atomic.Bool
	// Read side, published under mu and read without it, so that stats,
	// the admin API and metrics never wait for a reload's drain.
	view      atomic.Pointer[supView]
	startNano atomic.Int64
	wg        sync.WaitGroup
	doneCh    chan struct{} // signalled when a component finishes
}

// supView is what readers see: the config and the engines running it.
type supView struct {
	cfg     *Config
	engines []*Engine
}

// publish refreshes the read side; the caller holds s.mu.
func (s *Supervisor) publish() {
	v := &supView{cfg: s.cfg, engines: make([]*Engine, 0, len(s.comps))}
	for _, c := range s.comps {
		v.engines = append(v.engines, c.e)
	}
	s.view.Store(v)
}

type component struct {
	key    string
	names  []string
	e      *Engine
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
}

// ErrReloadInProgress is returned by Reload while another reload runs.
var ErrReloadInProgress = errors.New("a reload is already in progress")

// NewSupervisor validates cfg and constructs every component's plugins.
func NewSupervisor(cfg *Config, opts Options) (*Supervisor, error) {
	if opts.Registry == nil {
		opts.Registry = Default
	}
	store := opts.Store
	if store == nil {
		if cfg.Engine.CheckpointDir != "" {
			fs, err := OpenFileStore(cfg.Engine.CheckpointDir)
			if err != nil {
				return nil, err
			}
			store = fs
		} else {
			store = NewMemoryStore()
		}
	}
	s := &Supervisor{opts: opts, store: store, comps: map[string]*component{}, doneCh: make(chan struct{}, 64)}
	comps, err := s.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	for _, c := range comps {
		s.comps[c.key] = c
	}
	s.publish()
	s.gen.Store(1)
	return s, nil
}

// split returns the components of cfg: each a Config with the same engine
// block and the plugins of one connected part of the DAG (match and
// dead_letter edges), with a key that changes when any of them changes.
func split(cfg *Config) ([]*Config, []string, error) {
	g, err := compile(cfg)
	if err != nil {
		return nil, nil, err
	}
	var groups [][]*PluginConfig
	for _, part := range plan.Components(describe(g, nil)) {
		var pcs []*PluginConfig
		for _, i := range part {
			pcs = append(pcs, g.nodes[i].pc)
		}
		groups = append(groups, pcs)
	}
	var cfgs []*Config
	var keys []string
	engineKey := fmt.Sprintf("%+v", cfg.Engine)
	for _, pcs := range groups {
		sub := &Config{File: cfg.File, Engine: cfg.Engine, Plugins: pcs, Sections: cfg.Sections, Raw: cfg.Raw}
		h := sha256.New()
		h.Write([]byte(engineKey))
		for _, pc := range pcs {
			h.Write([]byte(pluginKey(pc)))
		}
		cfgs = append(cfgs, sub)
		keys = append(keys, hex.EncodeToString(h.Sum(nil))[:16])
	}
	return cfgs, keys, nil
}

// notInKey are the PluginConfig fields that do not configure the plugin:
// where it stands in the file, and what pluginKey renders separately.
var notInKey = map[string]bool{"Line": true, "Spec": true, "Conf": true}

// pluginKey is a canonical rendering of everything that configures pc:
// every field of PluginConfig (by reflection, so that a new engine key
// cannot be forgotten: retry_backoff_max and dead_letter_after were, and a
// reload changing only them changed nothing), then the plugin's own keys.
func pluginKey(pc *PluginConfig) string {
	var b strings.Builder
	v := reflect.ValueOf(pc).Elem()
	for i := 0; i < v.NumField(); i++ {
		if name := v.Type().Field(i).Name; !notInKey[name] {
			fmt.Fprintf(&b, "%s=%v|", name, v.Field(i).Interface())
		}
	}
	b.WriteByte(';')
	keys := make([]string, 0, len(pc.Conf.vals)+len(pc.Conf.nodes))
	for k := range pc.Conf.vals {
		keys = append(keys, k)
	}
	for k := range pc.Conf.nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := pc.Conf.vals[k]; ok {
			fmt.Fprintf(&b, "%s=%v;", k, v)
		} else {
			raw, _ := yaml.Marshal(pc.Conf.nodes[k])
			fmt.Fprintf(&b, "%s=%s;", k, raw)
		}
	}
	return b.String()
}

// nopCloseStore shares one store between components; the supervisor
// closes it.
type nopCloseStore struct{ CheckpointStore }

func (nopCloseStore) Close() error { return nil }

// build constructs engines for the components of cfg whose key is not in
// keep. It returns every component of cfg (kept ones from keep).
func (s *Supervisor) build(cfg *Config, keep map[string]*component) ([]*component, error) {
	cfgs, keys, err := split(cfg)
	if err != nil {
		return nil, err
	}
	var out, fresh []*component
	var errs []error
	for i, sub := range cfgs {
		if c, ok := keep[keys[i]]; ok {
			out = append(out, c)
			continue
		}
		opts := s.opts
		opts.Store = nopCloseStore{s.store}
		e, err := New(sub, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := &component{key: keys[i], e: e}
		for _, pc := range sub.Plugins {
			c.names = append(c.names, pc.Name)
		}
		out = append(out, c)
		fresh = append(fresh, c)
	}
	if len(errs) > 0 {
		for _, c := range fresh {
			c.e.closePlugins()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Run runs every component until ctx ends (orderly shutdown of all) or
// every component finished; then it closes the checkpoint store.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("supervisor: Run called twice")
	}
	s.running = true
	s.runCtx = ctx
	s.start = time.Now()
	s.startNano.Store(s.start.UnixNano())
	for _, c := range s.comps {
		s.startComp(ctx, c)
	}
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
		case <-s.doneCh:
			if !s.allDone() {
				continue
			}
		}
		break
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, c := range s.comps {
		if c.err != nil {
			errs = append(errs, c.err)
		}
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Supervisor) allDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.comps {
		select {
		case <-c.done:
		default:
			return false
		}
	}
	return true
}

func (s *Supervisor) startComp(ctx context.Context, c *component) {
	cctx, cancel := context.WithCancelCause(ctx)
	c.cancel = cancel
	c.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.err = s.runComp(cctx, c)
		close(c.done)
		select {
		case s.doneCh <- struct{}{}:
		default:
		}
	}()
}

// Reload applies cfg as a diff and returns the new generation. It fails,
// changing nothing, if cfg does not build, or if another reload runs.
func (s *Supervisor) Reload(cfg *Config) (int64, error) {
	if !s.reloading.CompareAndSwap(false, true) {
		return s.gen.Load(), ErrReloadInProgress
	}
	defer s.reloading.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	comps, err := s.build(cfg, s.comps)
	if err != nil {
		return s.gen.Load(), fmt.Errorf("reload rejected, pipeline unchanged: %w", err)
	}
	next := map[string]*component{}
	for _, c := range comps {
		next[c.key] = c
	}
	// Drain and stop what changed or went away; each engine commits its
	// checkpoints before Run returns.
	var stopErrs []error
	for key, c := range s.comps {
		if _, ok := next[key]; ok {
			continue
		}
		if s.running && c.done != nil {
			c.cancel(ErrReplacedByReload)
			<-c.done
			if c.err != nil {
				stopErrs = append(stopErrs, c.err)
			}
		} else {
			c.e.closePlugins()
		}
	}
	for key, c := range next {
		if _, ok := s.comps[key]; ok {
			continue
		}
		if s.running {
			s.startComp(s.runCtx, c)
		}
	}
	s.comps = next
	s.cfg = cfg
	s.publish()
	gen := s.gen.Add(1)
	return gen, errors.Join(stopErrs...)
}

// HardStop asks every running component to stop hard now, as if its
// shutdown_timeout had passed: what is acked is committed, the rest will
// be read again. For a second SIGINT/SIGTERM during a long drain. Run's
// context must be cancelled too (HardStop does not begin a shutdown by
// itself when none is under way: it only cuts a drain short).
func (s *Supervisor) HardStop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.comps {
		c.e.HardStop()
	}
}

// Generation counts applied configs (1 for the first).
func (s *Supervisor) Generation() int64 { return s.gen.Load() }

// Reloading reports whether a reload is being applied (components may be
// draining).
func (s *Supervisor) Reloading() bool { return s.reloading.Load() }

// Config returns the running config. It does not wait for a reload.
func (s *Supervisor) Config() *Config { return s.view.Load().cfg }

// Engines returns the running components' engines (during a reload, the
// ones running before it). It does not wait for a reload.
func (s *Supervisor) Engines() []*Engine {
	return append([]*Engine(nil), s.view.Load().engines...)
}

func (s *Supervisor) engineOf(name string) (*Engine, bool) {
	for _, e := range s.Engines() {
		if _, ok := e.g.byName[name]; ok {
			return e, true
		}
	}
	return nil, false
}

// Stats returns every node's counters, sorted by name.
func (s *Supervisor) Stats() []NodeSnapshot {
	var out []NodeSnapshot
	for _, e := range s.Engines() {
		out = append(out, e.Stats()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Pause pauses the named input.
func (s *Supervisor) Pause(name string) error {
	e, ok := s.engineOf(name)
	if !ok {
		return fmt.Errorf("no plugin named %q", name)
	}
	return e.Pause(name)
}

// Resume resumes the named input.
func (s *Supervisor) Resume(name string) error {
	e, ok := s.engineOf(name)
	if !ok {
		return fmt.Errorf("no plugin named %q", name)
	}
	return e.Resume(name)
}

// Tap taps the named node; see Engine.Tap.
func (s *Supervisor) Tap(ctx context.Context, name string, opts TapOptions) (<-chan TapRecord, error) {
	e, ok := s.engineOf(name)
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", name)
	}
	return e.Tap(ctx, name, opts)
}

// Checkpoints returns the committed checkpoint of every open stream.
func (s *Supervisor) Checkpoints() map[string]Checkpoint {
	out := map[string]Checkpoint{}
	for _, e := range s.Engines() {
		for k, v := range e.Checkpoints() {
			out[k] = v
		}
	}
	return out
}

// Uptime returns how long Run has been running.
func (s *Supervisor) Uptime() time.Duration {
	t0 := s.startNano.Load()
	if t0 == 0 {
		return 0
	}
	return time.Since(time.Unix(0, t0))
}

// Edge is one DAG edge for display.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"` // "match" or "dead_letter"
}

// Graph returns the running DAG's edges, sorted by From then To.
func (s *Supervisor) Graph() []Edge {
	var out []Edge
	for _, e := range s.Engines() {
		out = e.appendEdges(out)
	}
	sortEdges(out)
	return out
}

// InFlight returns the packets in flight over every component.
func (s *Supervisor) InFlight() int {
	n := 0
	for _, e := range s.Engines() {
		n += e.InFlight()
	}
	return n
}

// Query asks the named plugin's state; see Engine.Query.
func (s *Supervisor) Query(name string, params map[string]string) (any, error) {
	e, ok := s.engineOf(name)
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", name)
	}
	return e.Query(name, params)
}

// Command passes an operator command to the named plugin; see
// Engine.Command.
func (s *Supervisor) Command(ctx context.Context, name, cmd string, args []string) (any, error) {
	e, ok := s.engineOf(name)
	if !ok {
		return nil, fmt.Errorf("no plugin named %q", name)
	}
	return e.Command(ctx, name, cmd, args)
}

// Close releases the plugins of a supervisor that was built but will not
// run (dbusd -t, validation); the checkpoint store is closed too.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("supervisor: Close after Run; cancel Run's context instead")
	}
	for _, c := range s.comps {
		c.e.closePlugins()
	}
	return s.store.Close()
}

// runComp runs c's engine. A component whose exactly_once transaction
// was aborted (ErrTransactionAborted) is rebuilt from its config and run
// again after a backoff (and so on while the restarted engine fails, a
// target still down): the new engine resumes from the positions of the
// last committed transaction (TransactionalOutput). Any other error ends
// the component.
func (s *Supervisor) runComp(ctx context.Context, c *component) error {
	failures := 0
	restarting := false
	for {
		began := time.Now()
		err := c.e.Run(ctx)
		if ctx.Err() != nil || err == nil {
			return err
		}
		if time.Since(began) > time.Minute {
			failures, restarting = 0, false
		}
		// Once restarting, a start that fails (the target still down)
		// is retried too.
		if !errors.Is(err, ErrTransactionAborted) && !restarting {
			return err
		}
		restarting = true
		cfg := c.e.cfg
		for {
			failures++
			backoff := min(cfg.Engine.RestartBackoff<<min(failures-1, 8), 30*time.Second)
			c.e.log.Error("exactly_once pipeline stopped: restarting it from the last committed transaction", "err", err, "backoff", backoff)
			if !Sleep(ctx, backoff) {
				return err
			}
			opts := s.opts
			opts.Store = nopCloseStore{s.store}
			opts.Offline = true // validated at the first start; the target may be down
			e, nerr := New(cfg, opts)
			if nerr != nil {
				err = fmt.Errorf("restart: %w", nerr)
				continue
			}
			// A reload holding mu may be waiting for this component
			// to end: never block on mu once ctx is cancelled.
			for !s.mu.TryLock() {
				if ctx.Err() != nil {
					e.closePlugins()
					return err
				}
				time.Sleep(10 * time.Millisecond)
			}
			c.e = e
			s.publish()
			s.mu.Unlock()
			break
		}
	}
}
