package assign

import (
	"fmt"
	"sort"
	"time"
)

// Config tunes a Machine.
type Config struct {
	// ReleaseTimeout is how long a member may take to release a resource
	// it was told to Stop before the resource is granted to its new owner
	// anyway (fencing the old one). Zero grants at once: the Start is
	// emitted in the same step as the Stop.
	ReleaseTimeout time.Duration
}

// Member is a live cluster member as the machine sees it.
type Member struct {
	Name string `json:"name"`
	// Weight is the member's relative share; 0 drains the member.
	Weight int `json:"weight"`
}

// Resource is one unit of input work and its ownership.
type Resource struct {
	ID string `json:"id"`
	// Owner holds the grant (the fencing token names it); "" for none.
	Owner string `json:"owner,omitempty"`
	// Epoch is the epoch at which Owner was granted the resource.
	Epoch uint64 `json:"epoch,omitempty"`
	// Target is the owner the balancer wants; it differs from Owner while
	// the resource moves.
	Target string `json:"target,omitempty"`
	// Releasing is set once Owner was told to Stop; Deadline is when the
	// grant is forced to Target.
	Releasing bool      `json:"releasing,omitempty"`
	Deadline  time.Time `json:"-"`
	// Failed is set while Owner reports it cannot run the resource: it
	// stays with Owner (sticky) but does not count toward Owner's share.
	Failed bool `json:"failed,omitempty"`
}

// State is the persisted form of a Machine.
type State struct {
	Epoch     uint64     `json:"epoch"`
	Members   []Member   `json:"members"`
	Resources []Resource `json:"resources"`
}

// Event is an input of the machine.
type Event interface{ event() }

// MemberJoined: a member registered (or re-registered with a new weight).
type MemberJoined struct {
	Name   string
	Weight int
}

// MemberLeft: a member's registration vanished (session closed or expired).
type MemberLeft struct{ Name string }

// WeightChanged: a member's weight changed.
type WeightChanged struct {
	Name   string
	Weight int
}

// ResourceAdded: a resource was registered.
type ResourceAdded struct{ ID string }

// ResourceRemoved: a resource was unregistered.
type ResourceRemoved struct{ ID string }

// Released: Member reports it stopped resource ID (after a Stop).
type Released struct{ ID, Member string }

// ResourceFailed: the owner of ID reports that it cannot run it (Failed)
// or runs it again (!Failed). A failed resource does not count toward its
// owner's share, so the owner gets its full share of healthy ones.
type ResourceFailed struct {
	ID     string
	Failed bool
}

// Leadership: this machine became (Active) or stopped being the leader.
type Leadership struct{ Active bool }

// Tick gives the machine the time; deadlines are checked against it.
type Tick struct{ Now time.Time }

// Rebalance asks for a recomputation of the targets (an operator's
// request; every other event rebalances too).
type Rebalance struct{}

func (MemberJoined) event()    {}
func (MemberLeft) event()      {}
func (WeightChanged) event()   {}
func (ResourceAdded) event()   {}
func (ResourceRemoved) event() {}
func (Released) event()        {}
func (ResourceFailed) event()  {}
func (Leadership) event()      {}
func (Tick) event()            {}
func (Rebalance) event()       {}

// Kind is the kind of an Action.
type Kind uint8

// Action kinds.
const (
	// Start: grant Resource to Member at Epoch (fences any previous owner).
	Start Kind = iota + 1
	// Stop: tell Member to release Resource.
	Stop
	// Forget: Resource was removed; delete its ownership record.
	Forget
)

func (k Kind) String() string {
	switch k {
	case Start:
		return "start"
	case Stop:
		return "stop"
	case Forget:
		return "forget"
	}
	return "unknown"
}

// Action is an output of the machine.
type Action struct {
	Kind     Kind
	Resource string
	Member   string
	Epoch    uint64
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s on %s @%d", a.Kind, a.Resource, a.Member, a.Epoch)
}

type member struct {
	name   string
	weight int
	// scratch for rebalance
	quota int
	held  []*Resource
	extra bool
	frac  int64
}

// Machine is the assignment state machine. See the package doc.
type Machine struct {
	cfg       Config
	active    bool
	now       time.Time
	epoch     uint64
	members   map[string]*member
	names     []string // sorted member names
	res       map[string]*Resource
	ids       []string // sorted resource ids
	releasing int

	// per-step
	stepEpoch uint64
	out       []Action
	pool      []*Resource
}

// New returns an inactive machine with no members or resources.
func New(cfg Config) *Machine {
	return &Machine{cfg: cfg, members: map[string]*member{}, res: map[string]*Resource{}}
}

// Restore returns an inactive machine holding st, at time now. Owners and
// targets naming members absent from st.Members are cleared; release
// deadlines restart at now.
func Restore(cfg Config, st State, now time.Time) *Machine {
	m := New(cfg)
	m.now = now
	m.epoch = st.Epoch
	for _, mb := range st.Members {
		m.addMember(mb.Name, mb.Weight)
	}
	for _, r := range st.Resources {
		rc := r
		if _, ok := m.members[rc.Owner]; !ok {
			rc.Owner, rc.Releasing = "", false
		}
		if _, ok := m.members[rc.Target]; !ok {
			rc.Target = ""
		}
		if rc.Releasing {
			rc.Deadline = now.Add(cfg.ReleaseTimeout)
			m.releasing++
		} else {
			rc.Deadline = time.Time{}
		}
		m.addResource(&rc)
	}
	return m
}

// Epoch returns the current epoch.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Active reports whether the machine emits actions.
func (m *Machine) Active() bool { return m.active }

// Resource returns a copy of resource id.
func (m *Machine) Resource(id string) (Resource, bool) {
	r, ok := m.res[id]
	if !ok {
		return Resource{}, false
	}
	return *r, true
}

// Snapshot returns the machine's state, sorted, for persistence.
func (m *Machine) Snapshot() State {
	st := State{Epoch: m.epoch, Members: make([]Member, 0, len(m.names)), Resources: make([]Resource, 0, len(m.ids))}
	for _, n := range m.names {
		st.Members = append(st.Members, Member{Name: n, Weight: m.members[n].weight})
	}
	for _, id := range m.ids {
		st.Resources = append(st.Resources, *m.res[id])
	}
	return st
}

// Owners returns resource id -> owner for every granted resource.
func (m *Machine) Owners() map[string]string {
	out := make(map[string]string, len(m.res))
	for id, r := range m.res {
		if r.Owner != "" {
			out[id] = r.Owner
		}
	}
	return out
}

// Step applies ev and returns the actions to carry out, in order.
func (m *Machine) Step(ev Event) []Action {
	m.out = nil
	m.stepEpoch = 0
	rebalance := true
	switch e := ev.(type) {
	case MemberJoined:
		if mb, ok := m.members[e.Name]; ok {
			mb.weight = max(e.Weight, 0)
		} else {
			m.addMember(e.Name, e.Weight)
		}
	case WeightChanged:
		mb, ok := m.members[e.Name]
		if !ok {
			return nil
		}
		mb.weight = max(e.Weight, 0)
	case MemberLeft:
		if _, ok := m.members[e.Name]; !ok {
			return nil
		}
		m.removeMember(e.Name)
		for _, id := range m.ids {
			r := m.res[id]
			if r.Owner == e.Name {
				if r.Releasing {
					m.releasing--
				}
				r.Owner, r.Releasing, r.Deadline, r.Failed = "", false, time.Time{}, false
			}
			if r.Target == e.Name {
				r.Target = ""
			}
		}
	case ResourceAdded:
		if _, ok := m.res[e.ID]; ok {
			return nil
		}
		m.addResource(&Resource{ID: e.ID})
	case ResourceRemoved:
		r, ok := m.res[e.ID]
		if !ok {
			return nil
		}
		if r.Owner != "" && !r.Releasing {
			m.emit(Stop, r.ID, r.Owner)
		}
		if r.Releasing {
			m.releasing--
		}
		m.emit(Forget, r.ID, r.Owner)
		m.removeResource(e.ID)
	case Released:
		r, ok := m.res[e.ID]
		if !ok || r.Owner != e.Member || e.Member == "" {
			return nil
		}
		if r.Releasing {
			m.releasing--
		}
		r.Owner, r.Releasing, r.Deadline, r.Failed = "", false, time.Time{}, false
		rebalance = false
	case ResourceFailed:
		r, ok := m.res[e.ID]
		if !ok || r.Owner == "" || r.Failed == e.Failed {
			return nil
		}
		r.Failed = e.Failed
	case Leadership:
		m.active = e.Active
		if !e.Active {
			return nil
		}
	case Tick:
		if e.Now.After(m.now) {
			m.now = e.Now
		}
		rebalance = false
		if m.releasing == 0 {
			return nil
		}
	case Rebalance:
	default:
		panic(fmt.Sprintf("BUG: assign: unknown event %T", ev))
	}
	if !m.active {
		m.out = nil
		return nil
	}
	if rebalance {
		m.rebalance()
	}
	m.reconcile()
	return m.out
}

func (m *Machine) emit(k Kind, id, member string) {
	if m.stepEpoch == 0 {
		m.epoch++
		m.stepEpoch = m.epoch
	}
	m.out = append(m.out, Action{Kind: k, Resource: id, Member: member, Epoch: m.stepEpoch})
}

func (m *Machine) addMember(name string, weight int) {
	m.members[name] = &member{name: name, weight: max(weight, 0)}
	i := sort.SearchStrings(m.names, name)
	m.names = append(m.names, "")
	copy(m.names[i+1:], m.names[i:])
	m.names[i] = name
}

func (m *Machine) removeMember(name string) {
	delete(m.members, name)
	i := sort.SearchStrings(m.names, name)
	if i < len(m.names) && m.names[i] == name {
		m.names = append(m.names[:i], m.names[i+1:]...)
	}
}

func (m *Machine) addResource(r *Resource) {
	m.res[r.ID] = r
	i := sort.SearchStrings(m.ids, r.ID)
	if i < len(m.ids) && m.ids[i] == r.ID {
		return
	}
	m.ids = append(m.ids, "")
	copy(m.ids[i+1:], m.ids[i:])
	m.ids[i] = r.ID
}

func (m *Machine) removeResource(id string) {
	delete(m.res, id)
	i := sort.SearchStrings(m.ids, id)
	if i < len(m.ids) && m.ids[i] == id {
		m.ids = append(m.ids[:i], m.ids[i+1:]...)
	}
}

// eligible reports whether name is a live member with a positive weight.
func (m *Machine) eligible(name string) bool {
	mb, ok := m.members[name]
	return ok && mb.weight > 0
}

// rebalance recomputes every resource's Target: weighted quotas (floor or
// ceil of N*w/W; the remainder goes first to members already holding more
// than their floor, so that they keep it), then the fewest moves: only
// resources without an eligible holder and the excess of members over
// quota are placed, in id order, on members under quota, in name order.
func (m *Machine) rebalance() {
	var W int64
	var elig []*member
	for _, n := range m.names {
		mb := m.members[n]
		mb.held = mb.held[:0]
		if mb.weight > 0 {
			W += int64(mb.weight)
			elig = append(elig, mb)
		}
	}
	if len(elig) == 0 {
		for _, id := range m.ids {
			m.res[id].Target = ""
		}
		return
	}
	// Sticky base: current target if eligible, else current owner.
	// Failed resources stay where they are and count for nobody.
	m.pool = m.pool[:0]
	var N int64
	for _, id := range m.ids {
		r := m.res[id]
		if r.Failed && m.eligible(r.Owner) && !r.Releasing {
			r.Target = r.Owner
			continue
		}
		N++
		base := ""
		if m.eligible(r.Target) {
			base = r.Target
		} else if m.eligible(r.Owner) {
			base = r.Owner
		}
		r.Target = base
		if base == "" {
			m.pool = append(m.pool, r)
			continue
		}
		mb := m.members[base]
		mb.held = append(mb.held, r)
	}
	var sum int64
	for _, mb := range elig {
		q := N * int64(mb.weight) / W
		mb.quota = int(q)
		mb.frac = N * int64(mb.weight) % W
		mb.extra = int64(len(mb.held)) > q
		sum += q
	}
	if rem := int(N - sum); rem > 0 {
		// Only members with a fractional share may get the ceiling.
		order := make([]*member, 0, len(elig))
		for _, mb := range elig {
			if mb.frac > 0 {
				order = append(order, mb)
			}
		}
		sort.SliceStable(order, func(i, j int) bool {
			a, b := order[i], order[j]
			if a.extra != b.extra {
				return a.extra
			}
			if a.frac != b.frac {
				return a.frac > b.frac
			}
			return a.name < b.name
		})
		for i := 0; i < rem && i < len(order); i++ {
			order[i].quota++
		}
	}
	// Free the excess of members over quota: not yet granted ones first
	// (moving them costs nothing), then the highest ids.
	for _, mb := range elig {
		excess := len(mb.held) - mb.quota
		if excess <= 0 {
			continue
		}
		keep := mb.held[:0]
		for i := len(mb.held) - 1; i >= 0 && excess > 0; i-- {
			if r := mb.held[i]; r.Owner != mb.name {
				r.Target = ""
				m.pool = append(m.pool, r)
				mb.held[i] = nil
				excess--
			}
		}
		for i := len(mb.held) - 1; i >= 0 && excess > 0; i-- {
			if r := mb.held[i]; r != nil {
				r.Target = ""
				m.pool = append(m.pool, r)
				mb.held[i] = nil
				excess--
			}
		}
		for _, r := range mb.held {
			if r != nil {
				keep = append(keep, r)
			}
		}
		mb.held = keep
	}
	if len(m.pool) == 0 {
		return
	}
	sort.Slice(m.pool, func(i, j int) bool { return m.pool[i].ID < m.pool[j].ID })
	k := 0
	for _, mb := range elig {
		for len(mb.held) < mb.quota && k < len(m.pool) {
			m.pool[k].Target = mb.name
			mb.held = append(mb.held, m.pool[k])
			k++
		}
	}
	if k != len(m.pool) {
		panic(fmt.Sprintf("BUG: assign: %d resources left unplaced with quotas summing to %d", len(m.pool)-k, N))
	}
	for i := range m.pool {
		m.pool[i] = nil
	}
}

// reconcile moves Owner towards Target: grants free resources, tells
// owners of moving resources to stop, forces releases past their deadline.
func (m *Machine) reconcile() {
	for _, id := range m.ids {
		r := m.res[id]
		if r.Releasing {
			if m.now.Before(r.Deadline) {
				continue
			}
			// Deadline passed: the new grant fences the old owner.
			r.Owner, r.Releasing, r.Deadline = "", false, time.Time{}
			m.releasing--
		}
		if r.Owner == r.Target {
			continue
		}
		if r.Owner == "" {
			m.grant(r)
			continue
		}
		m.emit(Stop, r.ID, r.Owner)
		if m.cfg.ReleaseTimeout <= 0 {
			r.Owner = ""
			if r.Target != "" {
				m.grant(r)
			}
			continue
		}
		r.Releasing = true
		r.Deadline = m.now.Add(m.cfg.ReleaseTimeout)
		m.releasing++
	}
}

func (m *Machine) grant(r *Resource) {
	if r.Target == "" {
		return
	}
	m.emit(Start, r.ID, r.Target)
	r.Owner, r.Epoch, r.Failed = r.Target, m.stepEpoch, false
}
