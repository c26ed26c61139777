package cluster

import (
	"context"
	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
	"strings"
	"testing"
	"time"
)

// TestClusterBalancedAssignment: three members register, one leader is
// elected, 30 MockInput resources are spread 10/10/10 and run.
func TestClusterBalancedAssignment(t *testing.T) {
	h := newHarness(t)
	var ms []*running
	for _, n := range []string{"a", "b", "c"} {
		ms = append(ms, h.start(h.config(n), Options{}))
	}
	h.addResources(30, "gen")
	h.waitFor("30 resources running 10/10/10", 20*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 10 && c["b"] == 10 && c["c"] == 10
	})
	leaders := 0
	for _, m := range ms {
		if m.m.IsLeader() {
			leaders++
		}
	}
	members, err := h.admin.Members(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, m := range members {
		if m.Leader {
			marked++
		}
	}
	if leaders != 1 || marked != 1 {
		t.Fatalf("leaders: %d in process, %d marked by admin", leaders, marked)
	}
	rs, err := h.admin.Resources(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Owner == "" || r.Epoch == 0 {
			t.Fatalf("resource %s: owner %q epoch %d", r.ID, r.Owner, r.Epoch)
		}
	}
}

// TestClusterMemberLossMovesOnlyItsResources: a member's session closes
// abruptly; only its resources move, they resume from their checkpoints
// with no sequence lost, and the other members' resources are not
// restarted.
func TestClusterMemberLossMovesOnlyItsResources(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	b := h.start(h.config("b"), Options{})
	c := h.start(h.config("c"), Options{})
	ids := h.addResources(9, "src")
	h.waitFor("9 resources running 3/3/3", 20*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 3 && c["b"] == 3 && c["c"] == 3
	})
	h.advance(ids, 20, 10*time.Second) // checkpoints advance
	before := h.runningBy()
	startsBefore := map[string]int{}
	for _, r := range []*running{a, b, c} {
		for id, st := range r.m.StoreStats() {
			_ = st
			startsBefore[id+"@"+r.m.Name()]++
		}
	}
	epochs := map[string]uint64{}
	rs, _ := h.admin.Resources(h.cluster)
	for _, r := range rs {
		epochs[r.ID] = r.Epoch
	}
	victim := before[ids[0]]
	var vr *running
	for _, r := range []*running{a, b, c} {
		if r.m.Name() == victim {
			vr = r
		}
	}
	killed := time.Now()
	vr.m.Kill()
	vr.stop()
	h.waitFor("victim's resources running elsewhere", 10*time.Second, func() bool {
		now := h.runningBy()
		return len(now) == 9 && countBy(now)[victim] == 0
	})
	t.Logf("resources moved %s after the session closed (session timeout 2s)", time.Since(killed).Round(time.Millisecond))
	after := h.runningBy()
	rs, _ = h.admin.Resources(h.cluster)
	for _, r := range rs {
		if before[r.ID] != victim {
			if after[r.ID] != before[r.ID] || r.Epoch != epochs[r.ID] {
				t.Errorf("resource %s of a survivor moved or was re-granted: %s@%d -> %s@%d", r.ID, before[r.ID], epochs[r.ID], after[r.ID], r.Epoch)
			}
		} else if r.Epoch <= epochs[r.ID] {
			t.Errorf("moved resource %s kept epoch %d", r.ID, r.Epoch)
		}
	}
	// Let the moved resources run, then check nothing was lost.
	h.advance(ids, 20, 10*time.Second)
	for _, id := range ids {
		hi := h.sink.highest(id)
		if hi < 10 {
			t.Fatalf("resource %s delivered only up to %d", id, hi)
		}
		if g := h.sink.gaps(id, hi); len(g) > 0 {
			t.Errorf("resource %s lost sequences %v", id, g[:min(len(g), 10)])
		}
	}
}

// TestClusterGracefulMove: a member joining takes its share through a
// graceful release: the old owner's final commit succeeds (no fencing)
// and nothing is lost.
func TestClusterGracefulMove(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	ids := h.addResources(4, "src")
	h.waitFor("4 resources on a", 10*time.Second, func() bool { return countBy(h.runningBy())["a"] == 4 })
	h.advance(ids, 20, 10*time.Second)
	h.start(h.config("b"), Options{})
	h.waitFor("2/2", 10*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 2 && c["b"] == 2
	})
	h.advance(ids, 20, 10*time.Second) // the moved ones run on b
	for id, st := range a.m.StoreStats() {
		if st.Fenced != 0 {
			t.Errorf("graceful move of %s was fenced %d times", id, st.Fenced)
		}
	}
	for _, id := range ids {
		if g := h.sink.gaps(id, h.sink.highest(id)); len(g) > 0 {
			t.Errorf("resource %s lost %v", id, g)
		}
	}
}

// TestClusterBadInput: clear errors for an unreachable ZooKeeper, a
// resource for an unknown input and a duplicate member name.
func TestClusterBadInput(t *testing.T) {
	h := newHarness(t)
	t.Run("unreachable", func(t *testing.T) {
		c := h.config("x")
		c.ZooKeeper = []string{"127.0.0.1:1"}
		c.ConnectTimeout = time.Second
		_, err := Join(context.Background(), c, Options{Runner: NewEngineRunner(h.pcfg, h.reg, nil, h.log), Logger: h.log})
		if err == nil || !strings.Contains(err.Error(), "cannot reach ZooKeeper at 127.0.0.1:1") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown input", func(t *testing.T) {
		r := NewEngineRunner(h.pcfg, h.reg, nil, h.log)
		err := r.Check(ResourceSpec{ID: "r1", Input: "nope"})
		if err == nil || !strings.Contains(err.Error(), `input "nope" is not in this member's config`) || !strings.Contains(err.Error(), "src, gen") {
			t.Fatalf("err = %v", err)
		}
		if _, err := h.admin.PushConfig(h.cluster, []byte(pipelineYAML(h.cluster)), "test"); err != nil {
			t.Fatal(err)
		}
		err = h.admin.AddResource(h.cluster, ResourceSpec{ID: "r1", Input: "nope"})
		if err == nil || !strings.Contains(err.Error(), `unknown input "nope"`) {
			t.Fatalf("AddResource err = %v", err)
		}
		// A member given such a resource anyway reports it as failed.
		m := h.start(h.config("m"), Options{})
		if _, err := h.admin.s.conn.Create(newPaths(DefaultRoot, h.cluster).resource("bad"), mustJSON(ResourceSpec{ID: "bad", Input: "nope"}), 0, h.admin.s.acl); err != nil {
			t.Fatal(err)
		}
		h.waitFor("failure reported", 10*time.Second, func() bool {
			ms, _ := h.admin.Members(h.cluster)
			return len(ms) == 1 && strings.Contains(ms[0].Failed["bad"], `input "nope" is not in this member's config`)
		})
		_ = m
	})
	t.Run("credentials refused", func(t *testing.T) {
		err := h.admin.AddResource(h.cluster, ResourceSpec{ID: "r2", Input: "src", Config: map[string]any{"dsn": "repl:hunter2@tcp(db:3306)/"}})
		if err == nil || !strings.Contains(err.Error(), "inline password") {
			t.Fatalf("err = %v", err)
		}
		if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: "r3", Input: "src", Config: map[string]any{"resource": "repl:${cred:db}@tcp(db:3306)/"}}); err != nil {
			t.Fatalf("credential reference refused: %v", err)
		}
	})
	t.Run("duplicate member", func(t *testing.T) {
		h.start(h.config("dup"), Options{})
		c := h.config("dup")
		c.ConnectTimeout = time.Second
		_, err := Join(context.Background(), c, Options{Runner: NewEngineRunner(h.pcfg, h.reg, nil, h.log), Logger: h.log})
		if err == nil || !strings.Contains(err.Error(), `duplicate member name "dup"`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestClusterSampleConfig: etc/cluster.yaml parses, and its cluster
// section is valid.
func TestClusterSampleConfig(t *testing.T) {
	reg := testRegistry()
	cfg, err := engine.LoadFile("../etc/cluster.yaml", reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(cfg.File, cfg.Sections["cluster"])
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "prod" || c.DoubtAfter() != 2*time.Second || len(NewEngineRunner(cfg, reg, nil, nil).DistributedInputs()) != 1 {
		t.Fatalf("unexpected %+v", c)
	}
	n := cfg.Sections["cluster"]
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "bogus"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "1"})
	if _, err := ParseConfig(cfg.File, n); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown key accepted: %v", err)
	}
}
