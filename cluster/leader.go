package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/cluster/assign"
	"github.com/go-zookeeper/zk"
)

// maxMultiOps bounds the ops of one multi request (ZooKeeper's request
// size limit is about 1 MB).
const maxMultiOps = 500

// leader runs the assignment machine while this member holds the lowest
// election node. It is level-triggered: every wake re-reads members,
// resources and the rebalance marker, diffs them against the machine and
// feeds the differences as events; the resulting actions are written
// before the next wake is served. Any write error ends the leader (the
// member re-runs the election and a new leader restores from ZooKeeper).
type leader struct {
	s        *session
	p        paths
	name     string
	node     string // our election znode: every write checks it exists
	cfg      assign.Config
	log      *slog.Logger
	tick     time.Duration
	now      func() time.Time
	onChange func() // called after each successful write (tests)

	mach          *assign.Machine
	assignVersion int32
	ownerExists   map[string]bool
	dirty         bool              // the machine changed without actions: write the summary
	releasing     map[string]string // resource -> member told to stop it
	rebalanceVer  int32
	losses        *atomic.Uint64 // members found gone without a left marker; nil: not counted
	live          *atomic.Int64  // live members at the last read; nil: not kept
	gone          []string       // members seen gone since the last write (memberGone after it)
	woke          time.Time      // when the step being written began (the log line's took)
}

// memberGone is called once for each member the leader sees gone: it
// counts a loss unless the member left a left/<name> marker (an orderly
// leave), which it consumes.
func (l *leader) memberGone(name string) {
	p := l.p.leftMember(name)
	if ok, _, err := l.s.conn.Exists(p); err == nil && ok {
		l.s.conn.Delete(p, -1)
		return
	} else if err != nil {
		return // unknown: not counted
	}
	l.log.Warn("cluster member lost: its session ended without leaving", "lost", name)
	if l.losses != nil {
		l.losses.Add(1)
	}
}

func (l *leader) run(ctx context.Context) error {
	var wg sync.WaitGroup
	quit := make(chan struct{})
	defer func() { close(quit); wg.Wait() }()
	wake := make(chan struct{}, 1)
	w := newWatches(l.s.conn, wake, quit, &wg)
	if err := l.restore(w); err != nil {
		return fmt.Errorf("leader %s: restore: %w", l.name, err)
	}
	l.log.Info("cluster leader elected", "member", l.name, "epoch", l.mach.Epoch())
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			l.woke = time.Now()
			acts, err := l.sync(w)
			if err != nil {
				return err
			}
			if err := l.apply(acts, l.dirty); err != nil {
				return err
			}
			l.dirty = false
		case <-t.C:
			l.woke = time.Now()
			acts := l.mach.Step(assign.Tick{Now: l.now()})
			if err := l.apply(acts, false); err != nil {
				return err
			}
		}
	}
}

type liveState struct {
	members   map[string]MemberInfo
	resources map[string]bool
	rebalance int32
}

func (l *leader) read(w *watches) (liveState, error) {
	ls := liveState{members: map[string]MemberInfo{}, resources: map[string]bool{}}
	names, _, err := w.children(l.p.members())
	if err != nil {
		return ls, fmt.Errorf("list members: %w", err)
	}
	// One read per member, all in flight at once (a failover at 20
	// members read them one round trip after the other).
	infos := make([]*MemberInfo, len(names))
	err = forEachParallel(len(names), func(i int) error {
		n := names[i]
		data, _, err := w.get(l.p.member(n))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read member %s: %w", n, err)
		}
		var mi MemberInfo
		if err := json.Unmarshal(data, &mi); err != nil {
			l.log.Warn("member znode holds invalid JSON: ignoring the member", "member", n, "err", err)
			return nil
		}
		mi.Name = n
		infos[i] = &mi
		return nil
	})
	if err != nil {
		return ls, err
	}
	for _, mi := range infos {
		if mi != nil {
			ls.members[mi.Name] = *mi
		}
	}
	ids, _, err := w.children(l.p.resources())
	if err != nil {
		return ls, fmt.Errorf("list resources: %w", err)
	}
	for _, id := range ids {
		ls.resources[id] = true
	}
	_, st, err := w.get(l.p.rebalance())
	if err != nil {
		return ls, fmt.Errorf("read rebalance marker: %w", err)
	}
	ls.rebalance = st.Version
	return ls, nil
}

func (l *leader) restore(w *watches) error {
	l.woke = time.Now()
	ls, err := l.read(w)
	if err != nil {
		return err
	}
	var prev Assignment
	st, err := l.s.getJSON(l.p.assignment(), &prev)
	if err != nil {
		return err
	}
	l.assignVersion = st.Version
	l.rebalanceVer = ls.rebalance
	if l.live != nil {
		l.live.Store(int64(len(ls.members)))
	}
	// Members of the previous leader's assignment gone since (the
	// previous leader itself, when it was lost).
	for _, pm := range prev.State.Members {
		if _, ok := ls.members[pm.Name]; !ok {
			l.gone = append(l.gone, pm.Name)
		}
	}
	prevRes := map[string]assign.Resource{}
	for _, r := range prev.State.Resources {
		prevRes[r.ID] = r
	}
	owners, _, err := l.s.conn.Children(l.p.owners())
	if err != nil {
		return fmt.Errorf("list owners: %w", err)
	}
	l.ownerExists = map[string]bool{}
	recs := map[string]OwnerRecord{}
	epoch := prev.State.Epoch
	// All owner records in flight at once: a new leader read 200 of
	// them one round trip after the other before its first grant.
	got := make([]*OwnerRecord, len(owners))
	err = forEachParallel(len(owners), func(i int) error {
		var rec OwnerRecord
		if _, err := l.s.getJSON(l.p.owner(owners[i]), &rec); err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		}
		got[i] = &rec
		return nil
	})
	if err != nil {
		return err
	}
	for i, id := range owners {
		if rec := got[i]; rec != nil {
			l.ownerExists[id] = true
			recs[id] = *rec
			epoch = max(epoch, rec.Epoch)
		}
	}
	state := assign.State{Epoch: epoch}
	for _, n := range sortedKeys(ls.members) {
		state.Members = append(state.Members, assign.Member{Name: n, Weight: ls.members[n].Weight})
	}
	l.releasing = map[string]string{}
	for _, id := range sortedKeys(ls.resources) {
		r := assign.Resource{ID: id}
		if rec, ok := recs[id]; ok && rec.Member != "" {
			r.Owner, r.Epoch = rec.Member, rec.Epoch
		}
		if pr, ok := prevRes[id]; ok {
			r.Target = pr.Target
			if pr.Releasing && pr.Owner == r.Owner && r.Owner != "" {
				r.Releasing = true
				l.releasing[id] = r.Owner
			}
		}
		state.Resources = append(state.Resources, r)
	}
	l.mach = assign.Restore(l.cfg, state, l.now())
	acts := l.mach.Step(assign.Leadership{Active: true})
	// Owner records of resources that were removed while no leader ran.
	for id := range l.ownerExists {
		if !ls.resources[id] && recs[id].Member != "" {
			acts = append(acts, assign.Action{Kind: assign.Forget, Resource: id})
		}
	}
	acts = append(acts, l.releasedActions(ls)...)
	return l.apply(acts, true)
}

// sync diffs the live state against the machine and steps it.
func (l *leader) sync(w *watches) ([]assign.Action, error) {
	ls, err := l.read(w)
	if err != nil {
		return nil, err
	}
	if l.live != nil {
		l.live.Store(int64(len(ls.members)))
	}
	var acts []assign.Action
	step := func(ev assign.Event) { acts = append(acts, l.mach.Step(ev)...) }
	step(assign.Tick{Now: l.now()})
	snap := l.mach.Snapshot()
	known := map[string]int{}
	for _, m := range snap.Members {
		known[m.Name] = m.Weight
	}
	for _, n := range sortedKeys(known) {
		if _, ok := ls.members[n]; !ok {
			step(assign.MemberLeft{Name: n})
			l.gone = append(l.gone, n)
		}
	}
	for _, n := range sortedKeys(ls.members) {
		wt, ok := known[n]
		switch {
		case !ok:
			step(assign.MemberJoined{Name: n, Weight: ls.members[n].Weight})
		case wt != ls.members[n].Weight:
			step(assign.WeightChanged{Name: n, Weight: ls.members[n].Weight})
		}
	}
	have := map[string]bool{}
	for _, r := range snap.Resources {
		have[r.ID] = true
	}
	for _, id := range sortedKeys(have) {
		if !ls.resources[id] {
			step(assign.ResourceRemoved{ID: id})
		}
	}
	for _, id := range sortedKeys(ls.resources) {
		if !have[id] {
			step(assign.ResourceAdded{ID: id})
		}
	}
	// Failures the owners report: a failed resource does not count
	// toward its owner's share.
	for _, r := range l.mach.Snapshot().Resources {
		if r.Owner == "" {
			continue
		}
		failed := ls.members[r.Owner].Failed[r.ID] != ""
		if failed != r.Failed {
			step(assign.ResourceFailed{ID: r.ID, Failed: failed})
			l.dirty = true // the summary shows it even if nothing moves
		}
	}
	if ls.rebalance != l.rebalanceVer {
		l.rebalanceVer = ls.rebalance
		step(assign.Rebalance{})
	}
	l.track(acts)
	acts = append(acts, l.releasedActions(ls)...)
	return acts, nil
}

// track records which resources are being released.
func (l *leader) track(acts []assign.Action) {
	for _, a := range acts {
		switch a.Kind {
		case assign.Stop:
			if r, ok := l.mach.Resource(a.Resource); ok && r.Releasing {
				l.releasing[a.Resource] = a.Member
			}
		case assign.Start, assign.Forget:
			delete(l.releasing, a.Resource)
		}
	}
}

// releasedActions feeds Released for every resource being released whose
// owner no longer lists it as running (or is gone).
func (l *leader) releasedActions(ls liveState) []assign.Action {
	var acts []assign.Action
	for _, id := range sortedKeys(l.releasing) {
		owner := l.releasing[id]
		mi, ok := ls.members[owner]
		if ok && slices.Contains(mi.Running, id) {
			continue
		}
		delete(l.releasing, id)
		more := l.mach.Step(assign.Released{ID: id, Member: owner})
		l.track(more)
		acts = append(acts, more...)
	}
	return acts
}

// apply writes the owner records of granted and forgotten resources and
// then the assignment summary, in multis that each check that our
// election node still exists (a deposed leader writes nothing).
func (l *leader) apply(acts []assign.Action, force bool) error {
	l.track(acts)
	if len(acts) == 0 && !force {
		l.countGone()
		return nil
	}
	var ops []any
	for _, a := range acts {
		switch a.Kind {
		case assign.Start:
			data := mustJSON(OwnerRecord{Member: a.Member, Epoch: a.Epoch})
			if l.ownerExists[a.Resource] {
				ops = append(ops, &zk.SetDataRequest{Path: l.p.owner(a.Resource), Data: data, Version: -1})
			} else {
				ops = append(ops, &zk.CreateRequest{Path: l.p.owner(a.Resource), Data: data, Acl: l.s.acl})
				l.ownerExists[a.Resource] = true
			}
		case assign.Forget:
			// A tombstone, never a delete: a znode created again starts
			// at version 0, and a stale owner's checkpoint write guarded
			// by an old version would succeed (invariant 11).
			if l.ownerExists[a.Resource] {
				data := mustJSON(OwnerRecord{Epoch: l.mach.Epoch()})
				ops = append(ops, &zk.SetDataRequest{Path: l.p.owner(a.Resource), Data: data, Version: -1})
			}
		}
	}
	summary := mustJSON(Assignment{Leader: l.name, Time: l.now().UTC(), State: l.mach.Snapshot()})
	ops = append(ops, &zk.SetDataRequest{Path: l.p.assignment(), Data: summary, Version: l.assignVersion})
	guard := &zk.CheckVersionRequest{Path: l.node, Version: -1}
	for len(ops) > 0 {
		n := min(len(ops), maxMultiOps)
		chunk := append([]any{guard}, ops[:n]...)
		resps, err := l.s.conn.Multi(chunk...)
		if i, err := multiErr(resps, err); err != nil {
			what := "request"
			if i >= 0 && i < len(chunk) {
				what = fmt.Sprintf("op %d (%T)", i, chunk[i])
			}
			return fmt.Errorf("leader %s: write assignment epoch %d: %s failed: %w", l.name, l.mach.Epoch(), what, err)
		}
		if n == len(ops) {
			l.assignVersion = resps[len(resps)-1].Stat.Version
		}
		ops = ops[n:]
	}
	if len(acts) > 0 {
		l.log.Info("assignment written", "epoch", l.mach.Epoch(), "actions", len(acts), "took", time.Since(l.woke).Round(time.Millisecond))
	}
	l.countGone()
	if l.onChange != nil {
		l.onChange()
	}
	return nil
}

// countGone counts the losses of the members seen gone since the last
// write (a read of left/<name> each). It runs after the grants are
// written: it is not on the failover's path.
func (l *leader) countGone() {
	for _, n := range l.gone {
		l.memberGone(n)
	}
	l.gone = l.gone[:0]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
