package cluster

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/go-zookeeper/zk"
)

// TestClusterProcessFailoverSoak: N dbusd processes run M MockInput
// resources; members are killed with SIGKILL one after another (and
// started again). After every kill, within session timeout + a scaled
// second (see TestClusterProcessKill for why that bound), every resource
// runs on exactly one live member, and none on the dead one. Short
// version (CI, make test): 5 members x 40 resources, 2 kills; `make
// soak` (DBUS_SOAK=1): 20 x 200, 6 kills, 3 s sessions (the issue's
// setting). DBUS_SOAK_MEMBERS, DBUS_SOAK_RESOURCES, DBUS_SOAK_KILLS and
// DBUS_SOAK_SESSION change them.
func TestClusterProcessFailoverSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("process soak")
	}
	members, resources, kills := 5, 40, 2
	session := procSessionTimeout
	if os.Getenv("DBUS_SOAK") != "" {
		// The scale run: 3 s sessions (with 2 s, 20 processes
		// on a loaded 2-core runner miss heartbeats: leases run out).
		members, resources, kills, session = 20, 200, 6, 3*time.Second
	}
	if s := os.Getenv("DBUS_SOAK_SESSION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second {
			t.Fatalf("DBUS_SOAK_SESSION=%q: want a duration >= 1s", s)
		}
		session = d
	}
	for env, v := range map[string]*int{"DBUS_SOAK_MEMBERS": &members, "DBUS_SOAK_RESOURCES": &resources, "DBUS_SOAK_KILLS": &kills} {
		if s := os.Getenv(env); s != "" {
			if _, err := fmt.Sscan(s, v); err != nil || *v < 1 {
				t.Fatalf("%s=%q: want a positive integer", env, s)
			}
		}
	}
	if members < 2 {
		t.Fatal("the soak needs at least 2 members")
	}
	pc := newProcCluster(t)
	pc.yaml = func(p *proc) string {
		return strings.Replace(pc.memberYAML(p, 200*time.Millisecond, 5), "session_timeout: "+procSessionTimeout.String(), "session_timeout: "+session.String(), 1)
	}
	procs := make([]*proc, members)
	name := func(i int) string { return fmt.Sprintf("m%02d", i) }
	for i := range procs {
		// Low rate: the point is ownership, and 20 processes share the
		// runner's cores.
		procs[i] = pc.start(name(i), 200*time.Millisecond, 5)
	}
	pc.waitMembers(members)
	var specs []ResourceSpec
	var ids []string
	for i := 0; i < resources; i++ {
		id := fmt.Sprintf("res-%03d", i)
		ids = append(ids, id)
		specs = append(specs, ResourceSpec{ID: id, Input: "src", Config: map[string]any{"payload": procPayload}})
	}
	if _, err := pc.h.admin.AddResources(pc.h.cluster, specs); err != nil {
		t.Fatal(err)
	}

	// exactlyOnce reports whether every resource is listed as running by
	// exactly one live member other than dead, and a description if not;
	// listed, whether dead is still registered.
	var listed bool
	zp, err := pc.h.admin.existing(pc.h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce := func(dead string) (bool, string) {
		// The member znodes only (the list, then all at once): each
		// round trip of the poll is counted in the failover's time.
		names, _, err := pc.h.admin.s.conn.Children(zp.members())
		if err != nil {
			return false, err.Error()
		}
		ms := make([]MemberInfo, len(names))
		if err := forEachParallel(len(names), func(i int) error {
			if _, err := pc.h.admin.s.getJSON(zp.member(names[i]), &ms[i]); errors.Is(err, zk.ErrNoNode) {
				names[i] = "" // gone since the list
			} else if err != nil {
				return err
			}
			return nil
		}); err != nil {
			return false, err.Error()
		}
		runs := map[string][]string{}
		listed = false
		for i, m := range ms {
			if names[i] == "" {
				continue
			}
			listed = listed || names[i] == dead
			for _, id := range m.Running {
				runs[id] = append(runs[id], names[i])
			}
		}
		var bad []string
		for _, id := range ids {
			if on := runs[id]; len(on) != 1 || on[0] == dead {
				bad = append(bad, fmt.Sprintf("%s on %v", id, on))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return false, fmt.Sprintf("%d resources not on exactly one live member: %s", len(bad), strings.Join(bad[:min(len(bad), 10)], ", "))
		}
		return true, ""
	}
	// settled: exactly once and balanced (no planned move under way, so
	// that the next kill measures a failover only).
	settled := func() (bool, string) {
		if ok, why := exactlyOnce(""); !ok {
			return false, why
		}
		c := map[string]int{}
		for _, m := range mustMembers(t, pc) {
			c[m.Name] = len(m.Running)
		}
		lo, hi := resources, 0
		for i := 0; i < members; i++ {
			lo, hi = min(lo, c[name(i)]), max(hi, c[name(i)])
		}
		if hi-lo > 1 {
			return false, fmt.Sprintf("not balanced: %v", c)
		}
		return true, ""
	}
	var why string
	ok := testenv.WaitFor(time.Duration(members)*3*time.Second+30*time.Second, func() (ok bool) { ok, why = settled(); return })
	if !ok {
		t.Fatalf("start: %s", why)
	}

	limit := session + testenv.Scaled(time.Second)
	var worst time.Duration
	for k := 0; k < kills; k++ {
		i := (k * 7) % members // spread the victims, leader included
		victim := procs[i]
		had := 0
		for _, m := range mustMembers(t, pc) {
			if m.Name == victim.name {
				had = len(m.Running)
			}
		}
		victim.kill()
		killed := time.Now()
		// Poll until it holds (the bound is checked after, with the
		// time it took; giving up at 4x the bound with the last state).
		// Where the time goes: the victim's member znode gone (its
		// session expired: ZooKeeper's part), then all running again
		// (the leader's and the survivors' part). One read of the
		// member znodes per poll: more would load the runner.
		var took, gone time.Duration
		if !testenv.WaitFor(4*limit, func() (ok bool) {
			ok, why = exactlyOnce(victim.name)
			took = time.Since(killed)
			if gone == 0 && !listed {
				gone = took
			}
			return
		}) {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log)
				var lines []string
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "leader") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") && !strings.Contains(l, "declares none") {
						lines = append(lines, l)
					}
				}
				t.Logf("%s: leader/warning/error lines (last 15 of %d):\n%s", p.name, len(lines), strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
			t.Fatalf("kill %d (%s, %d resources) at %s: not settled within %s: %s", k+1, victim.name, had, killed.Format("15:04:05.000"), 4*limit, why)
		}
		worst = max(worst, took)
		t.Logf("kill -9 %s (%d of %d resources): its session gone after %s, every resource on exactly one live member after %s (bound %s); %s",
			victim.name, had, resources, gone.Round(time.Millisecond), took.Round(time.Millisecond), limit, failoverTimeline(procs, victim, killed))
		if took > limit {
			t.Errorf("kill %d (%s): took %s, more than session timeout %s + %s", k+1, victim.name, took.Round(time.Millisecond), session, testenv.Scaled(time.Second))
		}
		// Back in: the restarted member registers again (its old
		// session is gone) and takes its share by planned moves.
		procs[i] = pc.start(victim.name, 200*time.Millisecond, 5)
		pc.waitMembers(members)
		if !testenv.WaitFor(60*time.Second, func() (ok bool) { ok, why = settled(); return }) {
			t.Fatalf("after restarting %s: %s", victim.name, why)
		}
	}
	t.Logf("%d members x %d resources, %d kills, session %s: worst failover %s (bound %s)", members, resources, kills, session, worst.Round(time.Millisecond), limit)
}

// failoverTimeline says, from the members' logs, when (after killed) a
// leader was elected, the first assignment was written (with the
// leader's took: from its wake to the write) and the last resource
// started: where the leader's and the members' part of a failover goes.
func failoverTimeline(procs []*proc, victim *proc, killed time.Time) string {
	var out []string
	first := map[string]time.Time{}
	var lastStart time.Time
	var written string
	for _, p := range procs {
		if p == victim {
			continue
		}
		b, _ := os.ReadFile(p.log)
		for _, l := range strings.Split(string(b), "\n") {
			ts, _, ok := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if !ok {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil || !at.After(killed) {
				continue
			}
			for _, what := range []string{"cluster leader elected", "assignment written", "resource starting"} {
				if !strings.Contains(l, what) {
					continue
				}
				if f, ok := first[what]; !ok || at.Before(f) {
					first[what] = at
					if what == "assignment written" {
						written = l
					}
				}
				if what == "resource starting" && at.After(lastStart) {
					lastStart = at
				}
			}
		}
	}
	for _, what := range []string{"cluster leader elected", "assignment written"} {
		if at, ok := first[what]; ok {
			out = append(out, fmt.Sprintf("%s at %s", what, at.Sub(killed).Round(time.Millisecond)))
		}
	}
	if i := strings.Index(written, " took="); i >= 0 {
		out = append(out, "leader's "+strings.Fields(written[i:])[0])
	}
	if !lastStart.IsZero() {
		out = append(out, fmt.Sprintf("last resource starting at %s", lastStart.Sub(killed).Round(time.Millisecond)))
	}
	return strings.Join(out, ", ")
}

func mustMembers(t *testing.T, pc *procCluster) []MemberStatus {
	t.Helper()
	ms, err := pc.h.admin.Members(pc.h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
