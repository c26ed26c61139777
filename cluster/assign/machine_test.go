package assign

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func res(n int) []Event {
	var evs []Event
	for i := 0; i < n; i++ {
		evs = append(evs, ResourceAdded{ID: fmt.Sprintf("r%02d", i)})
	}
	return evs
}

func fmtActions(as []Action) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, "; ")
}

// counts returns member -> number of owned resources.
func counts(m *Machine) map[string]int {
	out := map[string]int{}
	for _, o := range m.Owners() {
		out[o]++
	}
	return out
}

func TestClusterAssignScenarios(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		steps      []step
		wantCounts map[string]int
		wantOwner  map[string]string
	}{
		{
			name: "inactive machine emits nothing, activation assigns",
			steps: []step{
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"x"}, ""},
				{ResourceAdded{"y"}, ""},
				{Leadership{true}, "start x on a @1; start y on a @1"},
			},
			wantOwner: map[string]string{"x": "a", "y": "a"},
		},
		{
			name: "failed resources stay put and do not count toward the share",
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{MemberJoined{"b", 1}, ""},
				{ResourceAdded{"r1"}, "start r1 on a @1"},
				{ResourceAdded{"r2"}, "start r2 on b @2"},
				{ResourceAdded{"r3"}, "start r3 on a @3"},
				{ResourceAdded{"r4"}, "start r4 on b @4"},
				{ResourceFailed{"r1", true}, ""},
				{ResourceFailed{"r1", true}, ""}, // no change, no step
				// a holds one healthy resource of three: b gives one up.
				{ResourceFailed{"r3", true}, "stop r4 on b @5; start r4 on a @5"},
				// r1 runs again and counts again: 2 healthy on a, 1 on b
				// is within the quotas (floor 1, the remainder stays
				// with a), so nothing moves (sticky).
				{ResourceFailed{"r1", false}, ""},
				{ResourceFailed{"nope", true}, ""},
				// A new grant clears the flag: b leaves, a takes all.
				{MemberLeft{"b"}, "start r2 on a @6"},
				{ResourceFailed{"r3", false}, ""},
			},
			wantOwner: map[string]string{"r1": "a", "r2": "a", "r3": "a", "r4": "a"},
		},
		{
			name: "join moves half with immediate handover",
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"r1"}, "start r1 on a @1"},
				{ResourceAdded{"r2"}, "start r2 on a @2"},
				{ResourceAdded{"r3"}, "start r3 on a @3"},
				{ResourceAdded{"r4"}, "start r4 on a @4"},
				{MemberJoined{"b", 1}, "stop r3 on a @5; start r3 on b @5; stop r4 on a @5; start r4 on b @5"},
			},
			wantCounts: map[string]int{"a": 2, "b": 2},
		},
		{
			name: "graceful release waits for Released",
			cfg:  Config{ReleaseTimeout: 10 * time.Second},
			steps: []step{
				{Leadership{true}, ""},
				{Tick{t0}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"r1"}, "start r1 on a @1"},
				{ResourceAdded{"r2"}, "start r2 on a @2"},
				{MemberJoined{"b", 1}, "stop r2 on a @3"},
				{Tick{t0.Add(5 * time.Second)}, ""},
				{Released{"r2", "b"}, ""}, // not the owner: ignored
				{Released{"r2", "a"}, "start r2 on b @4"},
				{Tick{t0.Add(20 * time.Second)}, ""},
			},
			wantOwner: map[string]string{"r1": "a", "r2": "b"},
		},
		{
			name: "release deadline forces the grant",
			cfg:  Config{ReleaseTimeout: 10 * time.Second},
			steps: []step{
				{Leadership{true}, ""},
				{Tick{t0}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"r1"}, "start r1 on a @1"},
				{ResourceAdded{"r2"}, "start r2 on a @2"},
				{MemberJoined{"b", 1}, "stop r2 on a @3"},
				{Tick{t0.Add(9 * time.Second)}, ""},
				{Tick{t0.Add(10 * time.Second)}, "start r2 on b @4"},
				{Released{"r2", "a"}, ""}, // late: a no longer owns it
			},
			wantOwner: map[string]string{"r1": "a", "r2": "b"},
		},
		{
			name: "member left: its resources are granted at once, others untouched",
			cfg:  Config{ReleaseTimeout: 10 * time.Second},
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{MemberJoined{"b", 1}, ""},
				{MemberJoined{"c", 1}, ""},
				{ResourceAdded{"r1"}, "*"},
				{ResourceAdded{"r2"}, "*"},
				{ResourceAdded{"r3"}, "*"},
				{ResourceAdded{"r4"}, "*"},
				{ResourceAdded{"r5"}, "*"},
				{ResourceAdded{"r6"}, "*"},
				{MemberLeft{"b"}, "start r2 on a @7; start r5 on c @7"},
			},
			wantCounts: map[string]int{"a": 3, "c": 3},
		},
		{
			name: "weights: 3:1",
			steps: append(append([]step{
				{Leadership{true}, ""},
				{MemberJoined{"heavy", 3}, ""},
				{MemberJoined{"light", 1}, ""},
			}, wrap(res(8))...), step{Rebalance{}, ""}),
			wantCounts: map[string]int{"heavy": 6, "light": 2},
		},
		{
			name: "weight 0 drains a member",
			steps: append(append([]step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{MemberJoined{"b", 1}, ""},
			}, wrap(res(4))...),
				step{WeightChanged{"b", 0}, "*"}),
			wantCounts: map[string]int{"a": 4},
		},
		{
			name: "no eligible member: owners are told to stop, nothing granted",
			cfg:  Config{ReleaseTimeout: time.Second},
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"x"}, "start x on a @1"},
				{WeightChanged{"a", 0}, "stop x on a @2"},
				{Released{"x", "a"}, ""},
			},
			wantCounts: map[string]int{},
		},
		{
			name: "resource removed: owner stopped and record forgotten",
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"x"}, "start x on a @1"},
				{ResourceRemoved{"x"}, "stop x on a @2; forget x on a @2"},
				{ResourceRemoved{"x"}, ""},
			},
			wantCounts: map[string]int{},
		},
		{
			name: "duplicate and unknown events are no-ops",
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{ResourceAdded{"x"}, "start x on a @1"},
				{ResourceAdded{"x"}, ""},
				{MemberJoined{"a", 1}, ""},
				{MemberLeft{"nobody"}, ""},
				{WeightChanged{"nobody", 5}, ""},
				{Released{"nope", "a"}, ""},
				{Rebalance{}, ""},
			},
			wantOwner: map[string]string{"x": "a"},
		},
		{
			name: "losing leadership silences the machine",
			steps: []step{
				{Leadership{true}, ""},
				{MemberJoined{"a", 1}, ""},
				{Leadership{false}, ""},
				{ResourceAdded{"x"}, ""},
				{Leadership{true}, "start x on a @1"},
			},
			wantOwner: map[string]string{"x": "a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.cfg)
			var last uint64
			for i, st := range tc.steps {
				got := m.Step(st.ev)
				for _, a := range got {
					if a.Epoch < last {
						t.Fatalf("step %d (%T): epoch went back from %d to %d", i, st.ev, last, a.Epoch)
					}
					last = a.Epoch
				}
				if st.want != "*" && fmtActions(got) != st.want {
					t.Fatalf("step %d (%T %+v):\n got  %q\n want %q", i, st.ev, st.ev, fmtActions(got), st.want)
				}
			}
			if tc.wantCounts != nil && !reflect.DeepEqual(counts(m), tc.wantCounts) {
				t.Errorf("counts = %v, want %v", counts(m), tc.wantCounts)
			}
			if tc.wantOwner != nil && !reflect.DeepEqual(m.Owners(), tc.wantOwner) {
				t.Errorf("owners = %v, want %v", m.Owners(), tc.wantOwner)
			}
		})
	}
}

type step struct {
	ev   Event
	want string // exact actions, "" for none; "*" to skip the check
}

func wrap(evs []Event) []step {
	var out []step
	for _, e := range evs {
		out = append(out, step{e, "*"})
	}
	return out
}

func TestClusterAssignRestore(t *testing.T) {
	cfg := Config{ReleaseTimeout: 10 * time.Second}
	m := New(cfg)
	m.Step(Leadership{Active: true})
	m.Step(Tick{t0})
	m.Step(MemberJoined{"a", 1})
	for _, e := range res(4) {
		m.Step(e)
	}
	m.Step(MemberJoined{"b", 1}) // r02, r03 releasing from a
	st := m.Snapshot()
	// The leader dies; b's successor restores without a (a left too).
	st2 := st
	st2.Members = []Member{{Name: "b", Weight: 1}}
	n := Restore(cfg, st2, t0.Add(time.Minute))
	if n.Active() {
		t.Fatal("restored machine is active")
	}
	got := n.Step(Leadership{Active: true})
	want := "start r00 on b @6; start r01 on b @6; start r02 on b @6; start r03 on b @6"
	if fmtActions(got) != want {
		t.Fatalf("after restore:\n got  %s\n want %s", fmtActions(got), want)
	}
	// Restoring with every member keeps the release pending with a new deadline.
	k := Restore(cfg, st, t0.Add(time.Minute))
	if got := k.Step(Leadership{Active: true}); len(got) != 0 {
		t.Fatalf("restore with pending releases emitted %s", fmtActions(got))
	}
	if got := k.Step(Tick{t0.Add(time.Minute + 10*time.Second)}); fmtActions(got) != "start r02 on b @6; start r03 on b @6" {
		t.Fatalf("forced release after restore: %s", fmtActions(got))
	}
}

// TestClusterAssignProperties replays random event sequences and checks
// the invariants after each step: determinism, growing epochs, quotas
// met once settled, no resource moved unless its owner left or was over
// quota.
func TestClusterAssignProperties(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		evs := randomEvents(rng, 300)
		a, b := New(Config{}), New(Config{})
		a.Step(Leadership{true})
		b.Step(Leadership{true})
		var last uint64
		for i, ev := range evs {
			before := a.Owners()
			membersBefore := map[string]bool{}
			for _, n := range a.names {
				membersBefore[n] = true
			}
			countsBefore := counts(a)
			ga, gb := a.Step(ev), b.Step(ev)
			if !reflect.DeepEqual(ga, gb) {
				t.Fatalf("seed %d step %d: not deterministic", seed, i)
			}
			for _, act := range ga {
				if act.Epoch <= last && act.Epoch != last {
					t.Fatalf("seed %d step %d: epoch went back", seed, i)
				}
				last = act.Epoch
			}
			checkQuotas(t, a, fmt.Sprintf("seed %d step %d (%T)", seed, i, ev))
			// Moves: a resource kept by a live member may only move if that
			// member was over its new quota; the number moved from a member
			// is at most its excess.
			after := a.Owners()
			moved := map[string]int{}
			for id, o := range before {
				if n, ok := after[id]; ok && n != o && a.members[o] != nil {
					moved[o]++
				}
			}
			for o, n := range moved {
				excess := countsBefore[o] - a.members[o].quota
				if a.members[o].weight == 0 {
					excess = countsBefore[o]
				}
				if n > excess {
					t.Fatalf("seed %d step %d (%T %+v): %d resources moved off %s, excess was %d", seed, i, ev, ev, n, o, excess)
				}
			}
			_ = membersBefore
		}
	}
}

func randomEvents(rng *rand.Rand, n int) []Event {
	var evs []Event
	nextRes := 0
	live := map[int]bool{}
	for i := 0; i < n; i++ {
		switch rng.Intn(6) {
		case 0, 1:
			evs = append(evs, ResourceAdded{ID: fmt.Sprintf("r%04d", nextRes)})
			nextRes++
		case 2:
			if nextRes > 0 {
				evs = append(evs, ResourceRemoved{ID: fmt.Sprintf("r%04d", rng.Intn(nextRes))})
			}
		case 3:
			k := rng.Intn(8)
			live[k] = true
			evs = append(evs, MemberJoined{Name: fmt.Sprintf("m%d", k), Weight: 1 + rng.Intn(3)})
		case 4:
			evs = append(evs, MemberLeft{Name: fmt.Sprintf("m%d", rng.Intn(8))})
		case 5:
			evs = append(evs, WeightChanged{Name: fmt.Sprintf("m%d", rng.Intn(8)), Weight: rng.Intn(4)})
		}
	}
	return evs
}

// checkQuotas asserts that with immediate handover every resource is owned
// and every eligible member holds floor or ceil of its ideal share.
func checkQuotas(t *testing.T, m *Machine, where string) {
	t.Helper()
	var W int64
	for _, n := range m.names {
		W += int64(m.members[n].weight)
	}
	c := counts(m)
	N := int64(len(m.ids))
	if W == 0 {
		if len(c) != 0 {
			t.Fatalf("%s: no eligible member but owners %v", where, c)
		}
		return
	}
	total := 0
	for _, n := range m.names {
		w := int64(m.members[n].weight)
		lo := N * w / W
		hi := lo
		if N*w%W != 0 {
			hi++
		}
		if got := int64(c[n]); got < lo || got > hi {
			t.Fatalf("%s: %s (weight %d) holds %d, want %d..%d (N=%d W=%d)", where, n, w, got, lo, hi, N, W)
		}
		total += c[n]
	}
	if int64(total) != N {
		t.Fatalf("%s: %d of %d resources owned", where, total, N)
	}
}

// TestClusterAssignJoinMovesIdealShare checks the headline target: a member
// joining 50 members holding 10 000 resources moves no more than its ideal
// share.
func TestClusterAssignJoinMovesIdealShare(t *testing.T) {
	m, _ := bigMachine(10000, 50)
	before := m.Owners()
	acts := m.Step(MemberJoined{Name: "m050", Weight: 1})
	moved := 0
	for id, o := range m.Owners() {
		if before[id] != o {
			moved++
		}
	}
	starts := 0
	for _, a := range acts {
		if a.Kind == Start {
			starts++
		}
	}
	ideal := 10000 / 51
	if moved > ideal+1 || starts != moved {
		t.Fatalf("moved %d (starts %d), ideal share %d", moved, starts, ideal)
	}
	if c := counts(m)["m050"]; c != moved {
		t.Fatalf("new member got %d, moved %d", c, moved)
	}
	t.Logf("moved/ideal = %d/%d", moved, ideal)
}

func bigMachine(nres, nmem int) (*Machine, []string) {
	m := New(Config{})
	m.Step(Leadership{Active: true})
	var names []string
	for i := 0; i < nmem; i++ {
		n := fmt.Sprintf("m%03d", i)
		names = append(names, n)
		m.addMember(n, 1)
	}
	for i := 0; i < nres; i++ {
		m.addResource(&Resource{ID: fmt.Sprintf("res-%05d", i)})
	}
	m.Step(Rebalance{})
	sort.Strings(names)
	return m, names
}
