package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestClusterConfigReload: members apply a pushed cluster config while
// running. Only the resources whose effective config changed restart
// (from their checkpoints, at the same epoch); a config that does not
// parse, or that would break a running resource, is rejected, reported
// in the member znode, and changes nothing.
func TestClusterConfigReload(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	b := h.start(h.config("b"), Options{})
	src := h.addResources(4, "src")
	gens := []string{"gen-0", "gen-1"}
	for _, id := range gens {
		if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: id, Input: "gen"}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitFor("6 resources running 3/3", 15*time.Second, func() bool {
		c := countBy(h.runningBy())
		return c["a"] == 3 && c["b"] == 3
	})
	starts := func() map[string]int {
		out := a.m.Starts()
		for id, n := range b.m.Starts() {
			out[id] += n
		}
		return out
	}
	_, epochs0 := (&procCluster{t: t, h: h}).resourceEpochs()
	members := func() map[string]MemberStatus {
		ms, err := h.admin.Members(h.cluster)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]MemberStatus{}
		for _, m := range ms {
			out[m.Name] = m
		}
		return out
	}
	push := func(yaml, comment string) int {
		t.Helper()
		v, err := h.admin.PushConfig(h.cluster, []byte(yaml), comment)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitApplied := func(v int) {
		t.Helper()
		h.waitFor("members at config version", 10*time.Second, func() bool {
			ms := members()
			return ms["a"].Config == v && ms["b"].Config == v && ms["a"].ConfigError == "" && ms["b"].ConfigError == ""
		})
	}
	same := func(before map[string]int, except ...string) {
		t.Helper()
		now := starts()
		for id, n := range before {
			want := n
			for _, e := range except {
				if e == id {
					want = n + 1
				}
			}
			if now[id] != want {
				t.Errorf("resource %s started %d times, want %d", id, now[id], want)
			}
		}
	}
	s0 := starts()
	for _, id := range append(append([]string{}, src...), gens...) {
		if s0[id] != 1 {
			t.Fatalf("resource %s started %d times before any push", id, s0[id])
		}
	}

	// v1: the same pipeline: nothing restarts.
	base := pipelineYAML(h.cluster)
	v1 := push(base, "same as the files")
	waitApplied(v1)
	time.Sleep(300 * time.Millisecond)
	same(s0)

	// v2: the generator's rate changes: only the gen resources restart.
	v2 := push(strings.Replace(base, "rate: 100", "rate: 150", 1), "faster generator")
	t0 := time.Now()
	waitApplied(v2)
	h.waitFor("gen resources restarted and running", 10*time.Second, func() bool {
		s := starts()
		r := h.runningBy()
		return s["gen-0"] == 2 && s["gen-1"] == 2 && r["gen-0"] != "" && r["gen-1"] != ""
	})
	t.Logf("v%d applied and the 2 changed resources running again in %s; 4 unchanged ones untouched", v2, time.Since(t0).Round(time.Millisecond))
	same(s0, gens...)
	s2 := starts()

	// dbc refuses a config that does not parse or lacks the input of a
	// registered resource.
	bad := strings.Replace(base, "class: MockOutput", "class: NoSuchOutput", 1)
	noGen := strings.Replace(strings.Replace(base, "  - name: gen\n    class: MockInput\n    rate: 100\n", "", 1), "    match: gen\n", "    match: src\n", 1)
	if noGen == base {
		t.Fatal("test config edit did not apply")
	}
	if _, err := h.admin.PushConfig(h.cluster, []byte(bad), "typo"); err == nil || !strings.Contains(err.Error(), "NoSuchOutput") {
		t.Errorf("push of an unknown class: err = %v", err)
	}
	if _, err := h.admin.PushConfig(h.cluster, []byte(noGen), "drop gen"); err == nil || !strings.Contains(err.Error(), `resources gen-0, gen-1 use input "gen", which this config lacks`) {
		t.Errorf("push dropping a used input: err = %v", err)
	}
	// Members check on their own (an older dbc, another registry): v3
	// does not parse, v4 would break the running gen resources. Both are
	// rejected, reported, and change nothing.
	rawPush(t, h, 3, bad)
	h.waitFor("v3 rejected by both", 10*time.Second, func() bool {
		ms := members()
		return strings.Contains(ms["a"].ConfigError, "v3 rejected") && strings.Contains(ms["b"].ConfigError, "NoSuchOutput")
	})
	rawPush(t, h, 4, noGen)
	h.waitFor("v4 rejected", 10*time.Second, func() bool {
		ms := members()
		return strings.Contains(ms["a"].ConfigError, `v4 rejected`) && strings.Contains(ms["a"].ConfigError, `input "gen" is not in`)
	})
	time.Sleep(300 * time.Millisecond)
	same(s2)
	ms := members()
	if ms["a"].Config != v2 || ms["b"].Config != v2 {
		t.Errorf("members run config v%d and v%d after rejections, want v%d", ms["a"].Config, ms["b"].Config, v2)
	}
	if c := countBy(h.runningBy()); c["a"]+c["b"] != 6 {
		t.Errorf("running after rejected configs: %v", c)
	}
	// No resource moved or was re-granted; nothing was lost.
	_, epochs := (&procCluster{t: t, h: h}).resourceEpochs()
	for id, e := range epochs0 {
		if epochs[id] != e {
			t.Errorf("resource %s re-granted by a reload: epoch %d -> %d", id, e, epochs[id])
		}
	}
	for _, id := range src {
		if g := h.sink.gaps(id, h.sink.highest(id)); len(g) > 0 || h.sink.highest(id) < 5 {
			t.Errorf("resource %s: up to %d, lost %v", id, h.sink.highest(id), g)
		}
	}
	// A member joining now falls back to the newest version it accepts
	// (v2, what the others run), reporting why v4 was not applied; it
	// takes its share and runs it.
	h.start(h.config("c"), Options{})
	h.waitFor("c runs v2 and its share", 15*time.Second, func() bool {
		ms := members()
		c := countBy(h.runningBy())
		return ms["c"].Config == v2 && strings.Contains(ms["c"].ConfigError, "v4 rejected") && c["a"] == 2 && c["b"] == 2 && c["c"] == 2
	})
}

// rawPush stores config version v as a push would, without dbc's checks.
func rawPush(t *testing.T, h *harness, v int, data string) {
	t.Helper()
	p := newPaths(DefaultRoot, h.cluster)
	meta := mustJSON(ConfigVersion{Version: v, Time: time.Now().UTC(), Size: len(data), Comment: "raw"})
	resps, err := h.admin.s.conn.Multi(
		&zk.CreateRequest{Path: p.configVersion(v), Data: []byte(data), Acl: h.admin.s.acl},
		&zk.SetDataRequest{Path: p.config(), Data: meta, Version: -1},
	)
	if _, err := multiErr(resps, err); err != nil {
		t.Fatalf("push v%d: %v", v, err)
	}
}
