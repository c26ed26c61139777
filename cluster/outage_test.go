//go:build !race

// These tests make ZooKeeper clients reconnect with watches set (a server
// going away, an ensemble leader killed, a paused proxy), which trips a
// known data race inside github.com/go-zookeeper/zk (Conn.lastZxid, read by
// sendSetWatches while recvLoop writes it; upstream go-zookeeper/zk#35).
// They run without -race: `make test` runs them in a second pass.

package cluster

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/go-zookeeper/zk"
)

// TestClusterSessionDoubtStopsResources: a member whose ZooKeeper traffic
// stops (a partition) stops its resources by itself before its session
// can expire, so the new owner never overlaps with it.
func TestClusterSessionDoubtStopsResources(t *testing.T) {
	h := newHarness(t)
	proxy := newPauseProxy(t, h.zk[0])
	ca := h.config("a")
	ca.ZooKeeper = []string{proxy.addr()}
	a := h.start(ca, Options{})
	h.addResources(3, "src")
	h.waitFor("3 resources on a", 10*time.Second, func() bool { return len(a.m.Running()) == 3 })
	proxy.setPaused(true)
	cut := time.Now()
	h.waitFor("a stops its resources", 5*time.Second, func() bool { return len(a.m.Running()) == 0 })
	took := time.Since(cut)
	t.Logf("a stopped its resources %s after the partition (session timeout %s, doubt after %s)", took.Round(time.Millisecond), ca.SessionTimeout, ca.DoubtAfter())
	if took >= ca.SessionTimeout {
		t.Fatalf("resources stopped after %s, not before the session timeout %s", took, ca.SessionTimeout)
	}
	proxy.setPaused(false)
	h.waitFor("a runs its resources again", 15*time.Second, func() bool { return len(a.m.Running()) == 3 })
}

// zkScript returns the path of .ci/zookeeper.sh when the test ZooKeeper
// is the one that script runs (so the test may stop and start it).
func zkScript(t *testing.T, servers []string) string {
	t.Helper()
	port := os.Getenv("DBUS_ZK_PORT")
	if port == "" {
		port = "21810"
	}
	if len(servers) != 1 || servers[0] != "127.0.0.1:"+port {
		if testenv.CI() {
			t.Fatalf("DBUS_TEST_ZK=%v is not the .ci/zookeeper.sh server 127.0.0.1:%s", servers, port)
		}
		t.Skipf("DBUS_TEST_ZK is not the .ci/zookeeper.sh server: cannot stop and start it")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java")
	}
	return "../.ci/zookeeper.sh"
}

func script(t *testing.T, path string, args ...string) {
	t.Helper()
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
}

// TestClusterZooKeeperOutage: ZooKeeper is fully down for a few seconds
// (DBUS_TEST_ZK_OUTAGE, default 5s; 60s reproduces the minute):
// members stop their resources, nothing is lost, and the cluster runs
// every resource again once ZooKeeper is back.
func TestClusterZooKeeperOutage(t *testing.T) {
	h := newHarness(t)
	sh := zkScript(t, h.zk)
	outage := 5 * time.Second
	if v := os.Getenv("DBUS_TEST_ZK_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	ms := []*running{h.start(h.config("a"), Options{}), h.start(h.config("b"), Options{})}
	ids := h.addResources(6, "src")
	h.waitFor("6 resources running", 10*time.Second, func() bool { return len(h.runningBy()) == 6 })
	h.advance(ids, 20, 10*time.Second)
	script(t, sh, "stop")
	t.Cleanup(func() { exec.Command(sh, "start").Run() })
	h.waitFor("members stop their resources", 10*time.Second, func() bool {
		return len(ms[0].m.Running())+len(ms[1].m.Running()) == 0
	})
	time.Sleep(outage)
	script(t, sh, "start")
	back := time.Now()
	h.waitFor("every resource running again", 30*time.Second, func() bool {
		return len(ms[0].m.Running())+len(ms[1].m.Running()) == 6
	})
	t.Logf("cluster recovered %s after ZooKeeper returned from a %s outage", time.Since(back).Round(time.Millisecond), outage)
	h.advance(ids, 20, 10*time.Second)
	for _, id := range ids {
		hi := h.sink.highest(id)
		if g := h.sink.gaps(id, hi); len(g) > 0 {
			t.Errorf("resource %s lost %v", id, g[:min(10, len(g))])
		}
	}
}

// TestClusterEnsembleNodeLoss: a 3-node ZooKeeper ensemble loses one node
// (the ZooKeeper leader): the cluster keeps its assignment, and a resource
// added afterwards is still assigned and run.
func TestClusterEnsembleNodeLoss(t *testing.T) {
	h0 := newHarness(t)
	zkScript(t, h0.zk)
	sh := "../.ci/zookeeper.sh"
	script(t, sh, "start-ensemble")
	t.Cleanup(func() { exec.Command(sh, "stop-ensemble").Run() })
	out, err := exec.Command(sh, "env-ensemble").Output()
	if err != nil {
		t.Fatal(err)
	}
	servers := strings.Split(strings.TrimPrefix(strings.TrimSpace(string(out)), "export DBUS_TEST_ZK_ENSEMBLE="), ",")
	t.Setenv("DBUS_TEST_ZK", strings.Join(servers, ","))
	h := newHarness(t)
	ms := []*running{h.start(h.config("a"), Options{}), h.start(h.config("b"), Options{}), h.start(h.config("c"), Options{})}
	h.addResources(6, "src")
	h.waitFor("6 resources 2/2/2", 20*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 2 && c["b"] == 2 && c["c"] == 2
	})
	before := h.runningBy()
	// Kill the ensemble's leader node.
	st, _ := exec.Command(sh, "status").Output()
	node := "1"
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "node ") && strings.HasSuffix(line, "Mode: leader") {
			node = strings.Fields(line)[1]
		}
	}
	script(t, sh, "stop-node", node)
	t.Logf("killed ZooKeeper node %s (the ensemble's leader)", node)
	if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: "late", Input: "src", Config: map[string]any{"resource": "late"}}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the new resource runs", 20*time.Second, func() bool { return len(h.runningBy()) == 7 })
	after := h.runningBy()
	for id, o := range before {
		if after[id] != o {
			t.Errorf("resource %s moved from %s to %s while one ZooKeeper node was down", id, o, after[id])
		}
	}
	script(t, sh, "start-node", node)
	_ = ms
}

// TestClusterFencingFrozenMember: member a is frozen (its ZooKeeper
// traffic stops, as under SIGSTOP, and it does not stop its resources
// itself); its session expires and b takes its resources. When a thaws,
// its pipelines try to commit: every write is fenced, none lands, and the
// checkpoints keep advancing under b only.
func TestClusterFencingFrozenMember(t *testing.T) {
	h := newHarness(t)
	proxy := newPauseProxy(t, h.zk[0])
	ca := h.config("a")
	ca.ZooKeeper = []string{proxy.addr()}
	ca.DisableDoubtStop = true // frozen: cannot stop anything itself
	a := h.start(ca, Options{})
	ids := h.addResources(4, "src")
	h.waitFor("4 resources on a", 10*time.Second, func() bool { return countBy(h.runningBy())["a"] == 4 })
	b := h.start(h.config("b"), Options{})
	h.waitFor("2/2", 10*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 2 && c["b"] == 2
	})
	aRes := map[string]bool{}
	for id, o := range h.runningBy() {
		if o == "a" {
			aRes[id] = true
		}
	}
	h.advance(ids, 20, 10*time.Second)
	proxy.setPaused(true)
	frozen := time.Now()
	h.waitFor("b runs every resource", 15*time.Second, func() bool { return countBy(h.runningBy())["b"] == 4 })
	t.Logf("b took over %s after a froze (session timeout 2s)", time.Since(frozen).Round(time.Millisecond))
	h.waitFor("b committed a checkpoint of every moved resource", 10*time.Second, func() bool {
		cps, _ := h.admin.Checkpoints(h.cluster)
		for id := range aRes {
			if cps[id].Member != "b" {
				return false
			}
		}
		return true
	})
	savedAtLoss := map[string]int64{}
	for id, st := range a.m.StoreStats() {
		savedAtLoss[id] = st.Saved
	}
	proxy.setPaused(false)
	// Sample the checkpoint records while a thaws, re-registers and its
	// zombie pipelines try to commit and stop.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		cps, err := h.admin.Checkpoints(h.cluster)
		if err != nil {
			t.Fatal(err)
		}
		for id := range aRes {
			if rec := cps[id]; rec.Member != "b" {
				t.Fatalf("checkpoint of %s written by %s at epoch %d after b took it over", id, rec.Member, rec.Epoch)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id, st := range a.m.StoreStats() {
		if aRes[id] && st.Saved != savedAtLoss[id] {
			t.Errorf("a saved a checkpoint of %s after losing it (%d -> %d)", id, savedAtLoss[id], st.Saved)
		}
	}
	// a's pipelines stopped on their own once the lease ran out (before
	// the thaw), so they may not have tried to commit at all: write with
	// a's stale stores directly, every write must be fenced.
	a.m.mu.Lock()
	stale := map[string]*Store{}
	for id := range aRes {
		stale[id] = a.m.stores[id]
	}
	a.m.mu.Unlock()
	h.waitFor("a has a session again", 10*time.Second, func() bool {
		st, sid, _ := a.m.s.status()
		return st == zk.StateHasSession && sid != stale[firstKey(aRes)].sid
	})
	for id, st := range stale {
		if err := st.Save(map[string]engine.Checkpoint{"src": {Offset: 1}}); !errors.Is(err, engine.ErrFenced) {
			t.Errorf("a's stale checkpoint write of %s after thawing: %v, want fenced", id, err)
		}
	}
	// a is a member again (new session) and gets its share back.
	h.waitFor("2/2 again", 15*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 2 && c["b"] == 2
	})
	h.advance(ids, 20, 10*time.Second)
	for _, id := range ids {
		if g := h.sink.gaps(id, h.sink.highest(id)); len(g) > 0 {
			t.Errorf("resource %s lost %v", id, g[:min(10, len(g))])
		}
	}
	_ = b
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// TestClusterLeaseFrozenMemberStopsWriting: member a is frozen (its
// ZooKeeper traffic stops and it does nothing by itself, as under
// SIGSTOP) until b took its resources over, then thaws. a's pipelines
// write nothing to their outputs once a's lease could have run out
// (its last confirmed contact + session timeout): before the lease,
// a thawed member kept writing ~800 records per lost resource.
func TestClusterLeaseFrozenMemberStopsWriting(t *testing.T) {
	h := newHarness(t)
	proxy := newPauseProxy(t, h.zk[0])
	aSink := newSink(h.cluster + "-a")
	pa, err := engine.Parse("a.yaml", []byte(pipelineYAML(h.cluster+"-a")), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	ca := h.config("a")
	ca.ZooKeeper = []string{proxy.addr()}
	ca.DisableDoubtStop = true // frozen: the member loop stops nothing itself
	a := h.start(ca, Options{Runner: NewEngineRunner(pa, h.reg, nil, h.log)})
	h.addResources(2, "src")
	h.waitFor("2 resources on a", 10*time.Second, func() bool { return countBy(h.runningBy())["a"] == 2 })
	h.waitFor("a writes", 10*time.Second, func() bool { return aSink.highest("res-00") > 10 })
	b := h.start(h.config("b"), Options{})
	_ = b
	h.waitFor("1/1", 10*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 1 && c["b"] == 1
	})
	proxy.setPaused(true)
	frozen := time.Now()
	startsAtFreeze := a.m.Starts()
	h.waitFor("b runs both resources", 15*time.Second, func() bool { return countBy(h.runningBy())["b"] == 2 })
	proxy.setPaused(false)
	h.waitFor("a has a new session", 10*time.Second, func() bool {
		st, sid, _ := a.m.s.status()
		return st == zk.StateHasSession && sid == a.m.s.leaseSID.Load() && a.m.s.leaseValid(sid)
	})
	// Give a zombie pipeline time to write, should it still.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Only a's old pipelines write resources a did not start again
	// (once back, a may be granted one of them anew, legitimately).
	limit := frozen.Add(ca.SessionTimeout)
	checked := 0
	starts := a.m.Starts()
	for _, id := range []string{"res-00", "res-01"} {
		if starts[id] != startsAtFreeze[id] || startsAtFreeze[id] == 0 {
			continue
		}
		checked++
		last := aSink.lastWrite(id)
		t.Logf("a's last write of %s %s after it froze (session timeout %s)", id, last.Sub(frozen).Round(time.Millisecond), ca.SessionTimeout)
		if last.After(limit) {
			t.Errorf("a's old pipeline of %s wrote %d records past its lease (after froze + session timeout %s), the last %s after it froze",
				id, aSink.writesAfter(id, limit), ca.SessionTimeout, last.Sub(frozen).Round(time.Millisecond))
		}
	}
	if checked == 0 {
		t.Fatalf("a started every resource again after thawing (starts %v -> %v): nothing to check", startsAtFreeze, starts)
	}
}

// TestClusterLeaseEnsembleLeaderElection: the ZooKeeper leader of a
// 3-node ensemble is killed while the cluster runs under load. Every
// client is disconnected during the election, but no lease runs out:
// no resource stops or restarts, data keeps flowing, and no checkpoint
// write is fenced. Before the lease, members stopped every resource after
// 0.2 x session timeout of disconnection (a ~1.1 s pause and a replay
// from the checkpoints on every election).
func TestClusterLeaseEnsembleLeaderElection(t *testing.T) {
	h0 := newHarness(t)
	zkScript(t, h0.zk)
	sh := "../.ci/zookeeper.sh"
	script(t, sh, "start-ensemble")
	t.Cleanup(func() { exec.Command(sh, "stop-ensemble").Run() })
	out, err := exec.Command(sh, "env-ensemble").Output()
	if err != nil {
		t.Fatal(err)
	}
	servers := strings.Split(strings.TrimPrefix(strings.TrimSpace(string(out)), "export DBUS_TEST_ZK_ENSEMBLE="), ",")
	t.Setenv("DBUS_TEST_ZK", strings.Join(servers, ","))
	h := newHarness(t)
	var ms []*running
	for _, n := range []string{"a", "b", "c"} {
		c := h.config(n)
		c.SessionTimeout = 4 * time.Second
		c.ConnectTimeout = 10 * time.Second
		ms = append(ms, h.start(c, Options{}))
	}
	ids := h.addResources(6, "src")
	h.waitFor("6 resources 2/2/2", 20*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 2 && c["b"] == 2 && c["c"] == 2
	})
	h.waitFor("every resource delivers", 10*time.Second, func() bool {
		for _, id := range ids {
			if h.sink.highest(id) < 20 {
				return false
			}
		}
		return true
	})
	starts := map[string]map[string]int{}
	for _, m := range ms {
		starts[m.m.Name()] = m.m.Starts()
	}
	st, _ := exec.Command(sh, "status").Output()
	node := ""
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "node ") && strings.HasSuffix(line, "Mode: leader") {
			node = strings.Fields(line)[1]
		}
	}
	if node == "" {
		t.Fatalf("no leader in the ensemble status:\n%s", st)
	}
	before := map[string]int64{}
	for _, id := range ids {
		before[id] = h.sink.highest(id)
	}
	killed := time.Now()
	script(t, sh, "stop-node", node)
	t.Cleanup(func() { exec.Command(sh, "start-node", node).Run() })
	t.Logf("killed ZooKeeper node %s (the ensemble's leader)", node)
	// Through the election and well past it: every member is connected
	// again with its lease renewed, and every resource advanced.
	h.waitFor("members connected again with a valid lease", 20*time.Second, func() bool {
		for _, m := range ms {
			st, sid, _ := m.m.s.status()
			if st != zk.StateHasSession || !m.m.s.leaseValid(sid) {
				return false
			}
		}
		return true
	})
	t.Logf("every member connected again %s after the kill", time.Since(killed).Round(time.Millisecond))
	h.waitFor("every resource advances", 10*time.Second, func() bool {
		for _, id := range ids {
			if h.sink.highest(id) < before[id]+100 {
				return false
			}
		}
		return true
	})
	for _, m := range ms {
		if got := m.m.Starts(); !maps.Equal(got, starts[m.m.Name()]) {
			t.Errorf("member %s restarted resources during the ZooKeeper election: starts %v -> %v", m.m.Name(), starts[m.m.Name()], got)
		}
		for id, s := range m.m.StoreStats() {
			if s.Fenced != 0 {
				t.Errorf("member %s: %d fenced checkpoint writes of %s", m.m.Name(), s.Fenced, id)
			}
		}
	}
	for _, id := range ids {
		if g := h.sink.gaps(id, h.sink.highest(id)); len(g) > 0 {
			t.Errorf("resource %s lost %v", id, g[:min(10, len(g))])
		}
	}
}
