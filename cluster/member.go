package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/cluster/assign"
	"github.com/dbus-project/dbus/engine"
	"github.com/go-zookeeper/zk"
)

// Runner runs resources for a Member. EngineRunner runs each in its own
// engine.Engine; tests may provide their own.
type Runner interface {
	// Check reports whether this member can run spec (its input exists
	// and is distributed), without starting anything.
	Check(spec ResourceSpec) error
	// Run runs spec until ctx ends, keeping its checkpoints in store,
	// and returns once everything was drained and committed.
	Run(ctx context.Context, spec ResourceSpec, store engine.CheckpointStore) error
}

// Options configure a Member beyond its Config.
type Options struct {
	Runner Runner
	Logger *slog.Logger
	// Dialer connects to ZooKeeper (tests put a proxy in between); nil
	// dials directly.
	Dialer zk.Dialer
	// Credentials resolve ${cred:NAME}; nil loads Config.CredentialsFile.
	Credentials *Credentials
	// Tick is the leader's clock period; 0 means 250ms.
	Tick time.Duration
	// RetryBackoff delays restarting a resource that failed; 0 means 2s.
	RetryBackoff time.Duration
	// OnConfig, when set, is called with the runner of a newly pushed
	// cluster config once it validated, before any resource is
	// restarted; an error rejects the config (RunMember reloads the
	// local pipeline here).
	OnConfig func(next Runner) error
}

// Member is one dbusd in a cluster: it registers an ephemeral member
// znode, takes part in the leader election (running the leader when it
// wins), watches the assignment and runs exactly the resources granted to
// it at the current epoch. Create it with Join, run it with Run.
//
// Goroutines: Run's loop owns the slots map; each running resource has a
// goroutine (started and awaited by the loop); watch forwarders and the
// leader goroutine are tracked by wg and stopped before Run returns.
type Member struct {
	cfg    *Config
	opts   Options
	s      *session
	p      paths
	log    *slog.Logger
	runner Runner
	creds  *Credentials

	wake chan struct{}
	// reloads carries pipeline configs read from the member's file
	// (SIGHUP); the newest pending one wins.
	reloads chan []byte
	quit    chan struct{}
	wg      sync.WaitGroup
	w       *watches

	// Owned by Run's goroutine.
	registered   int64 // session id the member znode belongs to
	electionNode string
	slots        map[string]*slot
	failed       map[string]failure
	published    string
	leaderCancel context.CancelFunc
	leaderDone   chan struct{}
	doubtStopped bool
	started      time.Time
	configSeen   int    // newest pushed config version handled
	configV      int    // pushed config version applied (0: the local file)
	configErr    string // why the newest version was rejected
	lastAssign   Assignment
	assignRaw    []byte        // the assignment znode's data lastAssign was parsed from
	rebalances   atomic.Uint64 // assignment epochs seen change (dbus_cluster_rebalances_total)
	losses       atomic.Uint64 // members lost while this member led (dbus_cluster_member_losses_total)
	liveMembers  atomic.Int64  // live members the leader read last (while this member leads)

	mu sync.Mutex
	// Guarded by mu.
	stores   map[string]*Store
	isLeader bool
	running  map[string]bool // resources whose pipeline runs now
	starts   map[string]int  // pipeline starts per resource since Join
	view     memberView      // what the admin API shows (memberadmin.go)
}

type slot struct {
	id     string
	epoch  uint64
	runner Runner // the runner (config) the slot was started with
	// Set before running closes.
	spec    ResourceSpec
	fp      string // runner's fingerprint of spec's effective config, "" if none
	cancel  context.CancelFunc
	done    chan struct{}
	running chan struct{} // closed once the resource runs
	started time.Time     // set before running closes
	err     error         // set before done closes
}

// healthyAfter is how long a resource that failed must run again before
// its failure is cleared (and it counts toward the member's share again):
// a resource failing repeatedly does not make the leader move others to
// and fro.
const healthyAfter = 10 * time.Second

// runningFor is how long the slot's resource has been running (0 while
// starting). Run's goroutine only.
func (sl *slot) runningFor() time.Duration {
	select {
	case <-sl.running:
		return time.Since(sl.started)
	default:
		return 0
	}
}

// errFinished marks a resource whose source ended: it is not restarted
// before RetryBackoff.
var errFinished = errors.New("source finished")

type failure struct {
	epoch    uint64
	at       time.Time
	err      string
	attempts int
}

// backoff is the delay before retrying a failed resource: RetryBackoff
// doubled per attempt, at most a minute.
func (m *Member) backoff(f failure) time.Duration {
	d := m.opts.RetryBackoff << min(f.attempts-1, 10)
	return min(d, time.Minute)
}

// Join connects to ZooKeeper, creates the cluster's znodes if needed and
// registers the member. It fails with a clear error when ZooKeeper is
// unreachable within cfg.ConnectTimeout or when another live process is
// registered under the same member name.
func Join(ctx context.Context, cfg *Config, opts Options) (*Member, error) {
	if opts.Runner == nil {
		return nil, errors.New("cluster: Options.Runner is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tick == 0 {
		opts.Tick = 250 * time.Millisecond
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 2 * time.Second
	}
	creds := opts.Credentials
	if creds == nil {
		var err error
		if creds, err = LoadCredentials(cfg.CredentialsFile); err != nil {
			return nil, err
		}
	}
	log := opts.Logger.With("cluster", cfg.Name, "member", cfg.Member)
	s, err := connect(ctx, cfg.ZooKeeper, cfg.SessionTimeout, cfg.ConnectTimeout, cfg.Auth, creds, opts.Dialer, log)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: member %s: %w", cfg.Name, cfg.Member, err)
	}
	m := &Member{cfg: cfg, opts: opts, s: s, p: newPaths(cfg.Root, cfg.Name), log: log, runner: opts.Runner, creds: creds,
		wake: make(chan struct{}, 1), reloads: make(chan []byte, 1), quit: make(chan struct{}), slots: map[string]*slot{}, failed: map[string]failure{},
		stores: map[string]*Store{}, running: map[string]bool{}, starts: map[string]int{}, started: time.Now().UTC()}
	s.margin = cfg.Doubt
	m.w = newWatches(s.conn, m.wake, m.quit, &m.wg)
	if err := s.ensure(m.p.layout()...); err != nil {
		s.close()
		return nil, fmt.Errorf("cluster %s: %w", cfg.Name, err)
	}
	if err := m.register(ctx); err != nil {
		s.close()
		return nil, err
	}
	m.wg.Add(1)
	go m.heartbeat()
	return m, nil
}

// heartbeat renews the lease every session_timeout/8 while the session is
// connected, and at once when it (re)connects. Requests are not sent
// while disconnected: a request queued then would renew the lease from
// its (old) queueing time only.
func (m *Member) heartbeat() {
	defer m.wg.Done()
	t := time.NewTicker(max(m.cfg.SessionTimeout/8, 10*time.Millisecond))
	defer t.Stop()
	for {
		state, ch := m.s.stateCh()
		if state == zk.StateHasSession {
			if err := m.s.renew(m.p.member(m.cfg.Member)); err != nil {
				m.log.Debug("ZooKeeper lease not renewed", "err", err)
			} else {
				signal(m.wake)
			}
		}
		select {
		case <-m.quit:
			return
		case <-ch:
		case <-t.C:
		}
	}
}

// Name returns the member name.
func (m *Member) Name() string { return m.cfg.Member }

// IsLeader reports whether this member runs the leader now.
func (m *Member) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.isLeader
}

// Running returns the resources whose pipeline runs now, sorted.
func (m *Member) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.running)
}

// Starts returns how many times each resource's pipeline was started on
// this member since it joined (tests, metrics).
func (m *Member) Starts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.starts)
}

// StoreStats returns the counters of the checkpoint store of every
// resource this member started since it joined (tests, metrics).
func (m *Member) StoreStats() map[string]StoreStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]StoreStats{}
	for id, st := range m.stores {
		out[id] = st.Stats()
	}
	return out
}

// register creates the member znode and the election node for the
// current session. A member znode of another live session means a
// duplicate member name: it is retried until ConnectTimeout (a restarted
// member waits for its previous session to expire), then refused.
func (m *Member) register(ctx context.Context) error {
	_, sid, _ := m.s.status()
	deadline := time.Now().Add(m.cfg.ConnectTimeout)
	data := m.memberData()
	// A left marker of a previous run that no leader consumed would make
	// a later loss of this run look like an orderly leave.
	m.s.conn.Delete(m.p.leftMember(m.cfg.Member), -1)
	for {
		_, err := m.s.conn.Create(m.p.member(m.cfg.Member), data, zk.FlagEphemeral, m.s.acl)
		if err == nil {
			break
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("cluster %s: register member %s: %w", m.cfg.Name, m.cfg.Member, err)
		}
		_, st, gerr := m.s.conn.Get(m.p.member(m.cfg.Member))
		if gerr == nil && st.EphemeralOwner == sid {
			if _, err := m.s.conn.Set(m.p.member(m.cfg.Member), data, -1); err != nil {
				return fmt.Errorf("cluster %s: register member %s: %w", m.cfg.Name, m.cfg.Member, err)
			}
			break
		}
		if time.Now().After(deadline) {
			owner := int64(0)
			if st != nil {
				owner = st.EphemeralOwner
			}
			return fmt.Errorf("cluster %s: duplicate member name %q: it is registered by another live session (0x%x) for more than %s; is another dbusd running with member: %s? Give each member a unique name",
				m.cfg.Name, m.cfg.Member, owner, m.cfg.ConnectTimeout, m.cfg.Member)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	node, err := m.s.conn.Create(m.p.election()+"/n_", []byte(m.cfg.Member), zk.FlagEphemeral|zk.FlagSequence, m.s.acl)
	if err != nil {
		return fmt.Errorf("cluster %s: member %s: join election: %w", m.cfg.Name, m.cfg.Member, err)
	}
	m.electionNode = node
	if sid != m.registered {
		m.s.bindLease(sid)
	}
	if err := m.s.renew(m.p.member(m.cfg.Member)); err != nil {
		m.log.Warn("ZooKeeper lease not renewed at registration (the heartbeat retries)", "err", err)
	}
	m.registered = sid
	m.published = string(data)
	m.log.Info("cluster member registered", "session", fmt.Sprintf("0x%x", sid), "election", node)
	return nil
}

func (m *Member) memberData() []byte {
	mi := MemberInfo{Name: m.cfg.Member, Weight: *m.cfg.Weight, Admin: m.cfg.Admin, Started: m.started, Running: []string{},
		Config: m.configV, ConfigError: m.configErr}
	for id, sl := range m.slots {
		select {
		case <-sl.running:
			mi.Running = append(mi.Running, id)
		default:
		}
	}
	sort.Strings(mi.Running)
	if len(m.failed) > 0 {
		mi.Failed = map[string]string{}
		for id, f := range m.failed {
			mi.Failed[id] = f.err
		}
	}
	return mustJSON(mi)
}

// publish rewrites the member znode when its data changed.
func (m *Member) publish() {
	data := m.memberData()
	if string(data) == m.published {
		return
	}
	if _, err := m.s.conn.Set(m.p.member(m.cfg.Member), data, -1); err != nil {
		m.log.Warn("cannot update member znode", "err", err)
		return
	}
	m.published = string(data)
}

// Run runs the member until ctx ends, then stops every resource (each
// drains and commits), steps down and closes the session.
func (m *Member) Run(ctx context.Context) error {
	defer m.shutdown()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	signal(m.wake)
	for {
		state, sid, _ := m.s.status()
		_, notify := m.s.stateCh()
		// The lease (invariant 4): data flows while the server cannot
		// have expired the session - through a ZooKeeper leader
		// election or a reconnection - and everything stops once it
		// could have (the engines' outputs already stopped writing).
		leaseOK := m.s.leaseValid(m.registered)
		if !leaseOK && !m.doubtStopped && !m.cfg.DisableDoubtStop {
			m.stopLeader()
			if len(m.slots) > 0 {
				m.log.Warn("ZooKeeper lease ran out (no confirmed contact for (1 - doubt) x session_timeout): stopping every resource before the session could expire",
					"state", state.String(), "lease_left", m.s.leaseLeft().Round(time.Millisecond))
				m.stopAll("lease ran out")
			}
			m.doubtStopped = true
		}
		switch {
		case state == zk.StateHasSession:
			if sid != m.registered {
				m.log.Warn("ZooKeeper session replaced (the previous one expired): registering again", "session", fmt.Sprintf("0x%x", sid))
				m.stopLeader()
				if !m.cfg.DisableDoubtStop {
					m.stopAll("session expired")
				}
				if err := m.register(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					m.log.Error("cannot register again", "err", err)
					break
				}
			}
			if !m.s.leaseValid(m.registered) && !m.cfg.DisableDoubtStop {
				break // wait for the heartbeat to renew the lease
			}
			m.doubtStopped = false
			if err := m.sync(ctx); err != nil && !isConnErr(err) {
				m.log.Warn("cluster sync", "err", err)
			}
		}
		m.reap()
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case data := <-m.reloads:
			m.reloadFile(data)
		case <-notify:
		case <-poll.C:
		}
	}
}

// ReloadFile asks the member to apply the pipeline of its config file
// again (data: the file's contents), as dbusd does on SIGHUP. It is
// applied like a pushed config (only the resources and local inputs whose
// pipeline changed restart) unless a pushed cluster config is in effect,
// which wins. The cluster section is not re-read (restart for that).
// Safe from any goroutine; never blocks.
func (m *Member) ReloadFile(data []byte) {
	for {
		select {
		case m.reloads <- data:
			return
		default:
		}
		select { // drop an older pending one
		case <-m.reloads:
		default:
		}
	}
}

// reloadFile applies the member's own file (config version 0).
func (m *Member) reloadFile(data []byte) {
	if m.configV != 0 {
		m.log.Warn("config file re-read, not applied: a pushed cluster config is in effect (push the file with dbc config push to change the pipeline)", "running_version", m.configV)
		return
	}
	inputs, err := m.resourceInputs()
	if err != nil {
		m.log.Error("config file not reloaded: cannot list the resources", "err", err)
		return
	}
	if m.applyConfig(0, data, inputs) {
		m.log.Info("config file reloaded")
	}
}

// sync reads the assignment and the election, then reconciles.
func (m *Member) sync(ctx context.Context) error {
	if err := m.elect(ctx); err != nil {
		return err
	}
	if err := m.syncConfig(); err != nil {
		return err
	}
	data, _, err := m.w.get(m.p.assignment())
	if err != nil {
		return fmt.Errorf("read assignment: %w", err)
	}
	// Parsed again only when it changed: the loop syncs on every wake
	// and poll, and the summary of 200 resources is ~15 KB of JSON.
	a := m.lastAssign
	if m.assignRaw == nil || !bytes.Equal(data, m.assignRaw) {
		a = Assignment{}
		if len(data) > 0 {
			if err := json.Unmarshal(data, &a); err != nil {
				return fmt.Errorf("assignment znode holds invalid JSON: %w", err)
			}
		}
		m.assignRaw = append(make([]byte, 0, len(data)), data...)
	}
	m.noteAssignment(&a)
	want := map[string]uint64{}
	for _, r := range a.State.Resources {
		if r.Owner == m.cfg.Member && !r.Releasing {
			want[r.ID] = r.Epoch
		}
	}
	for id, sl := range m.slots {
		if e, ok := want[id]; !ok || e != sl.epoch {
			m.stopSlot(sl, "assignment changed")
		}
	}
	for id, f := range m.failed {
		if e, ok := want[id]; !ok || e != f.epoch {
			delete(m.failed, id) // new grant or not ours: forget the failure
			continue
		}
		if sl, ok := m.slots[id]; ok && sl.runningFor() >= healthyAfter {
			delete(m.failed, id) // retried and running again
		}
	}
	for _, id := range sortedKeys(want) {
		if _, ok := m.slots[id]; ok {
			continue
		}
		if f, ok := m.failed[id]; ok && time.Since(f.at) < m.backoff(f) {
			continue
		}
		m.startSlot(id, want[id])
	}
	m.refreshView()
	m.publish()
	return nil
}

// elect starts or stops the leader according to the election children.
func (m *Member) elect(ctx context.Context) error {
	kids, _, err := m.w.children(m.p.election())
	if err != nil {
		return fmt.Errorf("read election: %w", err)
	}
	sort.Slice(kids, func(i, j int) bool { return seqOf(kids[i]) < seqOf(kids[j]) })
	lead := len(kids) > 0 && m.p.election()+"/"+kids[0] == m.electionNode
	if lead && m.leaderCancel == nil {
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		m.leaderCancel, m.leaderDone = cancel, done
		l := &leader{s: m.s, p: m.p, name: m.cfg.Member, node: m.electionNode, log: m.log,
			cfg: assign.Config{ReleaseTimeout: m.cfg.ReleaseTimeout}, tick: m.opts.Tick, now: time.Now, losses: &m.losses, live: &m.liveMembers}
		m.mu.Lock()
		m.isLeader = true
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer close(done)
			if err := l.run(lctx); err != nil && lctx.Err() == nil {
				m.log.Warn("leader stopped", "err", err)
			}
			m.mu.Lock()
			m.isLeader = false
			m.mu.Unlock()
			signal(m.wake)
		}()
	}
	if m.leaderDone != nil {
		select {
		case <-m.leaderDone:
			m.leaderCancel()
			m.leaderCancel, m.leaderDone = nil, nil
		default:
			if !lead {
				m.stopLeader()
			}
		}
	}
	return nil
}

// seqOf returns the sequence suffix of an election node name.
func seqOf(name string) string {
	if i := strings.LastIndex(name, "_"); i >= 0 {
		return name[i+1:]
	}
	return name
}

func (m *Member) stopLeader() {
	if m.leaderCancel == nil {
		return
	}
	m.leaderCancel()
	<-m.leaderDone
	m.leaderCancel, m.leaderDone = nil, nil
}

// startSlot starts resource id at epoch in its own goroutine: it checks
// the owner record (fencing token), loads the resource spec and runs it.
func (m *Member) startSlot(id string, epoch uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	sl := &slot{id: id, epoch: epoch, runner: m.runner, cancel: cancel, done: make(chan struct{}), running: make(chan struct{})}
	m.slots[id] = sl
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer signal(m.wake)
		defer close(sl.done)
		defer cancel()
		sl.err = m.runSlot(ctx, sl)
	}()
}

func (m *Member) runSlot(ctx context.Context, sl *slot) error {
	// The owner record (the fencing token) and the spec are read at
	// once: one round trip on a failover's path, not two. Nothing runs
	// unless the owner record names this member at the slot's epoch.
	var rec OwnerRecord
	var spec ResourceSpec
	var st *zk.Stat
	specErr := make(chan error, 1)
	go func() {
		_, err := m.s.getJSON(m.p.resource(sl.id), &spec)
		specErr <- err
	}()
	st, err := m.s.getJSON(m.p.owner(sl.id), &rec)
	serr := <-specErr
	if err != nil {
		return fmt.Errorf("read owner record of resource %s: %w", sl.id, err)
	}
	if rec.Member != m.cfg.Member || rec.Epoch != sl.epoch {
		return fmt.Errorf("resource %s: owner record names %s at epoch %d, not %s at %d (assignment in progress)", sl.id, rec.Member, rec.Epoch, m.cfg.Member, sl.epoch)
	}
	if serr != nil {
		return fmt.Errorf("read resource %s: %w", sl.id, serr)
	}
	spec.ID = sl.id
	if err := sl.runner.Check(spec); err != nil {
		return err
	}
	sl.spec = spec
	if cr, ok := sl.runner.(ConfigurableRunner); ok {
		if sl.fp, err = cr.Fingerprint(spec); err != nil {
			return err
		}
	}
	var local *engine.FileStore
	if m.cfg.LocalDir != "" {
		local, err = engine.OpenFileStore(filepath.Join(m.cfg.LocalDir, m.cfg.Name, sl.id))
		if err != nil {
			return fmt.Errorf("resource %s: local checkpoint copy: %w", sl.id, err)
		}
	}
	store := newStore(m.s, m.p, sl.id, m.cfg.Member, sl.epoch, st.Version, local, m.log)
	m.mu.Lock()
	m.stores[sl.id] = store
	m.mu.Unlock()
	m.log.Info("resource starting", "resource", sl.id, "input", spec.Input, "epoch", sl.epoch)
	m.mu.Lock()
	m.running[sl.id] = true
	m.starts[sl.id]++
	m.mu.Unlock()
	sl.started = time.Now()
	close(sl.running)
	signal(m.wake) // publish the running list
	err = sl.runner.Run(ctx, spec, store)
	m.mu.Lock()
	delete(m.running, sl.id)
	m.mu.Unlock()
	m.log.Info("resource stopped", "resource", sl.id, "epoch", sl.epoch, "err", err)
	if ctx.Err() != nil && err != nil && !errors.Is(err, engine.ErrFenced) {
		// Stopped on purpose; a failed final commit leaves the previous
		// checkpoint (the data is read again, never lost).
		m.log.Warn("resource stopped with an error", "resource", sl.id, "err", err)
		return nil
	}
	if err == nil && ctx.Err() == nil {
		return errFinished
	}
	return err
}

func (m *Member) stopSlot(sl *slot, why string) {
	m.log.Info("stopping resource", "resource", sl.id, "epoch", sl.epoch, "why", why)
	sl.cancel()
}

// stopAll stops every resource and waits for them (each drains and tries
// its final commit).
func (m *Member) stopAll(why string) {
	for _, sl := range m.slots {
		m.stopSlot(sl, why)
	}
	for _, sl := range m.slots {
		<-sl.done
	}
	m.reap()
}

// reap removes finished slots, recording failures.
func (m *Member) reap() {
	changed := false
	for id, sl := range m.slots {
		select {
		case <-sl.done:
		default:
			continue
		}
		delete(m.slots, id)
		changed = true
		if sl.err != nil {
			if !errors.Is(sl.err, errFinished) {
				m.log.Error("resource failed", "resource", id, "epoch", sl.epoch, "err", sl.err)
			}
			f := m.failed[id]
			if f.epoch != sl.epoch {
				f = failure{epoch: sl.epoch}
			}
			f.at, f.err = time.Now(), sl.err.Error()
			f.attempts++
			m.failed[id] = f
		}
	}
	if changed {
		m.refreshView()
		if st, _, _ := m.s.status(); st == zk.StateHasSession {
			m.publish()
		}
		signal(m.wake)
	}
}

func (m *Member) shutdown() {
	m.stopLeader()
	m.stopAll("member shutting down")
	if m.registered != 0 {
		if _, sid, _ := m.s.status(); sid == m.registered {
			// Leaving in order, not lost: say so before the member
			// znode goes (the leader reads it after seeing that).
			m.s.conn.Create(m.p.leftMember(m.cfg.Member), nil, 0, m.s.acl)
			m.s.conn.Delete(m.electionNode, -1)
			m.s.conn.Delete(m.p.member(m.cfg.Member), -1)
		}
	}
	close(m.quit)
	m.wg.Wait()
	m.s.close()
}

// Kill closes the ZooKeeper session abruptly without stopping resources
// gracefully first: the resources' contexts are cancelled but their
// checkpoint writes go nowhere. Tests use it to simulate a crashed member.
func (m *Member) Kill() {
	m.s.close()
}

// localDirDefault is the default of local_dir.
func localDirDefault() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dbus", "cluster")
	}
	return filepath.Join(os.TempDir(), "dbus-cluster")
}
