package cluster

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/engine/metrics"
	"github.com/go-zookeeper/zk"
)

// MemberState is a member's state as its admin API serves it
// (GET /api/v1/cluster, and "cluster" in /api/v1/status).
type MemberState struct {
	Cluster string `json:"cluster"`
	Member  string `json:"member"`
	// Leader is the leader named by the newest assignment; IsLeader is
	// whether this member runs the leader now.
	Leader   string `json:"leader"`
	IsLeader bool   `json:"is_leader"`
	// Epoch of the newest assignment this member saw.
	Epoch   uint64 `json:"epoch"`
	Members int    `json:"members"`
	// Session is connected, connecting, disconnected or expired;
	// LeaseSeconds is the time left on the lease (0: ran out, the
	// outputs write nothing).
	Session      string    `json:"session"`
	LeaseSeconds float64   `json:"lease_seconds"`
	Started      time.Time `json:"started"`
	Config       int       `json:"config_version"` // pushed config applied (0: the member's file)
	ConfigError  string    `json:"config_error,omitempty"`
	// Resources this member owns in the assignment (releasing ones too),
	// sorted by id.
	Resources []OwnedResource `json:"resources"`
}

// OwnedResource is one owned resource in MemberState.
type OwnedResource struct {
	ID    string `json:"id"`
	Epoch uint64 `json:"epoch"` // grant epoch (the fencing token's)
	// State: running, starting (granted, pipeline not up yet or waiting
	// for its retry), failed (the last run failed: Error says why; it is
	// retried with backoff), releasing (being handed to another member).
	State     string    `json:"state"`
	Error     string    `json:"error,omitempty"`
	FailedAt  time.Time `json:"failed_at,omitzero"`
	Attempts  int       `json:"attempts,omitempty"`
	Releasing bool      `json:"releasing,omitempty"`
}

// memberView is what the member loop last published for the admin API
// (Member.mu guards it).
type memberView struct {
	cluster   string
	leader    string
	epoch     uint64
	members   int
	pending   int
	owned     []OwnedResource // state filled in at read time for running ones
	runner    Runner
	config    int
	configErr string
}

// noteAssignment records the assignment sync read (Run's goroutine).
func (m *Member) noteAssignment(a *Assignment) {
	if a.State.Epoch != m.lastAssign.State.Epoch && m.lastAssign.State.Epoch != 0 {
		m.rebalances.Add(1)
	}
	m.lastAssign = *a
}

// refreshView rebuilds the admin API's view from the last assignment,
// the slots and the failures (Run's goroutine).
func (m *Member) refreshView() {
	a := &m.lastAssign
	v := memberView{cluster: m.cfg.Name, leader: a.Leader, epoch: a.State.Epoch, members: len(a.State.Members),
		runner: m.runner, config: m.configV, configErr: m.configErr}
	for _, r := range a.State.Resources {
		if r.Owner == "" {
			v.pending++
		}
		if r.Owner != m.cfg.Member {
			continue
		}
		rs := OwnedResource{ID: r.ID, Epoch: r.Epoch, State: "starting", Releasing: r.Releasing}
		if f, ok := m.failed[r.ID]; ok && f.epoch == r.Epoch {
			rs.State, rs.Error, rs.FailedAt, rs.Attempts = "failed", f.err, f.at.UTC(), f.attempts
		}
		if r.Releasing {
			rs.State = "releasing"
		}
		v.owned = append(v.owned, rs)
	}
	sort.Slice(v.owned, func(i, j int) bool { return v.owned[i].ID < v.owned[j].ID })
	m.mu.Lock()
	m.view = v
	m.mu.Unlock()
}

// Status returns the member's state for its admin API.
func (m *Member) Status() MemberState {
	state, _, _ := m.s.status()
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.view
	st := MemberState{Cluster: m.cfg.Name, Member: m.cfg.Member, Leader: v.leader, IsLeader: m.isLeader, Epoch: v.epoch,
		Members: v.members, Session: sessionState(state), LeaseSeconds: max(m.s.leaseLeft().Seconds(), 0),
		Started: m.started, Config: v.config, ConfigError: v.configErr, Resources: []OwnedResource{}}
	for _, r := range v.owned {
		if m.running[r.ID] {
			// Running now; a failure recorded before this run stays
			// visible until it is cleared (healthyAfter).
			r.State = "running"
		}
		st.Resources = append(st.Resources, r)
	}
	return st
}

// ClusterStats returns the dbus_cluster_* values of this member.
func (m *Member) ClusterStats() metrics.ClusterStats {
	st := m.Status()
	cs := metrics.ClusterStats{Members: st.Members, Leader: st.IsLeader, Epoch: st.Epoch,
		Rebalances: m.rebalances.Load(), FencingRejections: m.s.fencedTotal.Load(), MemberLosses: m.losses.Load(),
		SessionState: st.Session, LeaseSeconds: st.LeaseSeconds}
	m.mu.Lock()
	cs.ResourcesPending = m.view.pending
	m.mu.Unlock()
	if n := m.liveMembers.Load(); st.IsLeader && n > 0 {
		// The leader reads the members on every change; the
		// assignment's list (what others report) is rewritten only
		// when the assignment changes.
		cs.Members = int(n)
	}
	for _, r := range st.Resources {
		switch {
		case r.State == "failed":
			cs.ResourcesFailed++
		case !r.Releasing:
			cs.ResourcesOwned++
		}
	}
	return cs
}

func sessionState(s zk.State) string {
	switch s {
	case zk.StateHasSession:
		return "connected"
	case zk.StateExpired:
		return "expired"
	case zk.StateDisconnected, zk.StateUnknown:
		return "disconnected"
	default:
		return "connecting"
	}
}

// liveEngines are the engines of the resources an EngineRunner runs now
// (shared by the runners of successive pushed configs).
type liveEngines struct {
	mu sync.Mutex
	m  map[string]liveEngine
}

type liveEngine struct {
	e *engine.Engine
	b admin.Backend
}

func (l *liveEngines) add(id string, e *engine.Engine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]liveEngine{}
	}
	l.m[id] = liveEngine{e: e, b: admin.EngineBackend(e, time.Now())}
}

func (l *liveEngines) remove(id string, e *engine.Engine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.m[id]; ok && cur.e == e {
		delete(l.m, id)
	}
}

func (l *liveEngines) get(id string) (admin.Backend, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.m[id]
	return cur.b, ok
}

func (l *liveEngines) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.m))
	for id := range l.m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// MemberAdmin is a member's admin.Member: the member's status and the
// engines its EngineRunner runs. The member is set once it joined;
// before that the API answers with the configured names only.
type MemberAdmin struct {
	cluster, member string
	runner          *EngineRunner
	m               atomic.Pointer[Member]
}

// NewMemberAdmin returns the admin view of the member named in cc whose
// resources runner runs; call SetMember once it joined.
func NewMemberAdmin(cc *Config, runner *EngineRunner) *MemberAdmin {
	return &MemberAdmin{cluster: cc.Name, member: cc.Member, runner: runner}
}

// SetMember attaches the joined member.
func (a *MemberAdmin) SetMember(m *Member) { a.m.Store(m) }

// Status implements admin.Member.
func (a *MemberAdmin) Status() any {
	m := a.m.Load()
	if m == nil {
		return MemberState{Cluster: a.cluster, Member: a.member, Session: "connecting", Resources: []OwnedResource{}}
	}
	st := m.Status()
	for i, r := range st.Resources {
		if _, ok := a.runner.live.get(r.ID); r.State == "running" && !ok {
			// Its engine is being built: not in /api/v1/resources yet.
			st.Resources[i].State = "starting"
		}
	}
	return st
}

// Resources implements admin.Member.
func (a *MemberAdmin) Resources() []string { return a.runner.live.names() }

// Resource implements admin.Member.
func (a *MemberAdmin) Resource(name string) (admin.Backend, bool) { return a.runner.live.get(name) }

// Config implements admin.Member: the pipeline of the config the member
// applies now (a pushed one, or its file).
func (a *MemberAdmin) Config() *engine.Config {
	if m := a.m.Load(); m != nil {
		m.mu.Lock()
		r := m.view.runner
		m.mu.Unlock()
		if er, ok := r.(*EngineRunner); ok {
			return er.cfg
		}
	}
	return a.runner.cfg
}

// Stats implements admin.Member.
func (a *MemberAdmin) Stats() metrics.ClusterStats {
	m := a.m.Load()
	if m == nil {
		return metrics.ClusterStats{SessionState: "connecting"}
	}
	return m.ClusterStats()
}
