package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/internal/testenv"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// memberProc is an in-process dbusd cluster member (RunMemberWith) with
// its admin API.
type memberProc struct {
	name   string
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startMemberWithAdmin runs member name of h's cluster from a full config
// file (pipeline, cluster: and admin: sections), as dbusd does.
func (h *harness) startMemberWithAdmin(name, adminSection string) *memberProc {
	h.t.Helper()
	data := pipelineYAML(h.cluster) + fmt.Sprintf(`
cluster:
  name: %s
  member: %s
  zookeeper: [%s]
  session_timeout: 2s
  release_timeout: 2s
  connect_timeout: 3s
  local_dir: %s
%s`, h.cluster, name, strings.Join(h.zk, ", "), h.t.TempDir(), adminSection)
	cfg, err := engine.Parse(name+".yaml", []byte(data), h.reg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &memberProc{name: name, cancel: cancel, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		p.done <- RunMemberWith(ctx, cfg, h.reg, h.log, RunOptions{Version: "test", OnAdmin: func(a string) { addr <- a }})
	}()
	select {
	case p.addr = <-addr:
	case err := <-p.done:
		h.t.Fatalf("member %s: %v", name, err)
	case <-time.After(testenv.Scaled(10 * time.Second)):
		h.t.Fatalf("member %s: admin API not listening", name)
	}
	h.t.Cleanup(func() {
		cancel()
		if err := <-p.done; err != nil {
			h.t.Errorf("member %s: %v", name, err)
		}
	})
	return p
}

// call sends a request to p's admin API; hdr adds X-Dbus-Request.
func (p *memberProc) call(t *testing.T, method, path string, hdr bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hdr {
		req.Header.Set(admin.RequestHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *memberProc) state(t *testing.T) MemberState {
	t.Helper()
	code, b := p.call(t, "GET", "/api/v1/cluster", true)
	if code != http.StatusOK {
		t.Fatalf("member %s: GET /api/v1/cluster: %d %s", p.name, code, b)
	}
	var st MemberState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("member %s: %v: %s", p.name, err, b)
	}
	return st
}

func (p *memberProc) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := p.call(t, "GET", "/metrics", false)
	if code != http.StatusOK {
		t.Fatalf("member %s: GET /metrics: %d %s", p.name, code, b)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mf, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("member %s: /metrics does not parse: %v", p.name, err)
	}
	return mf
}

// value returns the value of family name's series whose labels include
// want (nil: the first series), and whether there is one.
func value(mf map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := mf[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func runningIDs(st MemberState) []string {
	var ids []string
	for _, r := range st.Resources {
		if r.State == "running" {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// TestClusterMemberAdminAPI: two dbusd members (RunMemberWith, real
// ZooKeeper) serve the admin API: each reports its member id, epoch,
// leader and exactly the resources it owns (together all of them, none
// twice), each resource engine's API under /api/v1/resources/{id}/ and
// in the top-level DAG as <id>/<plugin>, and /metrics parses with the
// dbus_cluster_* series and per-resource engine series. Before, cluster
// mode started no admin API at all.
func TestClusterMemberAdminAPI(t *testing.T) {
	h := newHarness(t)
	adminSection := "admin:\n  listen: 127.0.0.1:0\n"
	a := h.startMemberWithAdmin("a", adminSection)
	b := h.startMemberWithAdmin("b", adminSection)
	ids := h.addResources(4, "src")
	members := []*memberProc{a, b}
	testenv.Eventually(t, 20*time.Second, func() bool {
		var all []string
		for _, p := range members {
			r := runningIDs(p.state(t))
			if len(r) != 2 {
				return false
			}
			all = append(all, r...)
		}
		sort.Strings(all)
		return strings.Join(all, ",") == strings.Join(ids, ",")
	}, "4 resources running 2/2, each on one member")

	leaders := 0
	for _, p := range members {
		st := p.state(t)
		if st.Member != p.name || st.Cluster != h.cluster || st.Epoch == 0 || st.Session != "connected" || st.LeaseSeconds <= 0 {
			t.Fatalf("member %s: status %+v", p.name, st)
		}
		if st.Leader != "a" && st.Leader != "b" {
			t.Fatalf("member %s: leader %q", p.name, st.Leader)
		}
		if st.IsLeader {
			leaders++
		}
		for _, r := range st.Resources {
			if r.Epoch == 0 || r.Error != "" {
				t.Fatalf("member %s: resource %+v", p.name, r)
			}
		}
		// /api/v1/status carries the same member state (dbc status).
		code, body := p.call(t, "GET", "/api/v1/status", true)
		var s struct{ Cluster *MemberState }
		if code != 200 || json.Unmarshal(body, &s) != nil || s.Cluster == nil || s.Cluster.Member != p.name {
			t.Fatalf("member %s: /api/v1/status %d %s", p.name, code, body)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d members say they lead", leaders)
	}

	for _, p := range members {
		own := runningIDs(p.state(t))
		// Per-resource engine views; another member's resource is 404.
		for _, id := range own {
			code, body := p.call(t, "GET", "/api/v1/resources/"+id+"/dag", true)
			if code != 200 || !strings.Contains(string(body), `"src"`) {
				t.Fatalf("member %s: resource %s dag: %d %s", p.name, id, code, body)
			}
			code, body = p.call(t, "GET", "/api/v1/resources/"+id+"/checkpoints", true)
			if code != 200 || !strings.Contains(string(body), `"name": "src"`) {
				t.Fatalf("member %s: resource %s checkpoints: %d %s", p.name, id, code, body)
			}
		}
		for _, id := range ids {
			if !contains(own, id) {
				if code, body := p.call(t, "GET", "/api/v1/resources/"+id+"/dag", true); code != 404 {
					t.Fatalf("member %s: a resource it does not run (%s): %d %s", p.name, id, code, body)
				}
			}
		}
		code, body := p.call(t, "GET", "/api/v1/dag", true)
		for _, id := range own {
			if code != 200 || !strings.Contains(string(body), `"`+id+`/src"`) {
				t.Fatalf("member %s: top-level dag misses %s/src: %d %s", p.name, id, code, body)
			}
		}

		// /metrics: cluster series and the engines' series by resource.
		var mf map[string]*dto.MetricFamily
		testenv.Eventually(t, 10*time.Second, func() bool {
			mf = p.metrics(t)
			v, _ := value(mf, "dbus_plugin_packets_out_total", map[string]string{"resource": own[0], "plugin": "out"})
			return v > 0
		}, "member %s: dbus_plugin_packets_out_total{resource=%q,plugin=out} > 0", p.name, own[0])
		check := func(name string, labels map[string]string, ok func(float64) bool) {
			t.Helper()
			v, found := value(mf, name, labels)
			if !found || !ok(v) {
				t.Fatalf("member %s: %s%v = %v (found %v)", p.name, name, labels, v, found)
			}
		}
		check("dbus_cluster_resources_owned", nil, func(v float64) bool { return v == 2 })
		check("dbus_cluster_resources_failed", nil, func(v float64) bool { return v == 0 })
		check("dbus_cluster_members", nil, func(v float64) bool { return v == 2 })
		check("dbus_cluster_assignment_epoch", nil, func(v float64) bool { return v > 0 })
		check("dbus_cluster_session_state", map[string]string{"state": "connected"}, func(v float64) bool { return v == 1 })
		check("dbus_cluster_session_state", map[string]string{"state": "expired"}, func(v float64) bool { return v == 0 })
		check("dbus_cluster_fencing_rejections_total", nil, func(v float64) bool { return v == 0 })
		check("dbus_cluster_rebalances_total", nil, func(v float64) bool { return v >= 0 })
		check("dbus_cluster_lease_remaining_seconds", nil, func(v float64) bool { return v > 0 })
		check("dbus_cluster_leader", nil, func(v float64) bool { return v == 0 || v == 1 })
		for _, id := range own {
			check("dbus_plugin_packets_in_total", map[string]string{"resource": id, "plugin": "src", "kind": "input"}, func(v float64) bool { return v > 0 })
			check("dbus_input_paused", map[string]string{"resource": id, "plugin": "src"}, func(v float64) bool { return v == 0 })
		}
		for _, id := range ids {
			if !contains(own, id) {
				if _, found := value(mf, "dbus_plugin_packets_in_total", map[string]string{"resource": id}); found {
					t.Fatalf("member %s: series of resource %s it does not run", p.name, id)
				}
			}
		}
		check("dbus_build_info", nil, func(v float64) bool { return v == 1 })
	}
}

// TestAPIClusterMemberMutationNeedsHeader: on a member's admin API a
// mutating call (pause a resource's input) without X-Dbus-Request or
// from another origin is refused and changes nothing; with the header
// it pauses the input, through the resource's API and through the
// top-level name <resource>/<plugin>; a reload through the API is
// refused (a member changes config by dbc config push or SIGHUP).
func TestAPIClusterMemberMutationNeedsHeader(t *testing.T) {
	h := newHarness(t)
	a := h.startMemberWithAdmin("a", "admin:\n  listen: 127.0.0.1:0\n")
	h.addResources(2, "src")
	testenv.Eventually(t, 20*time.Second, func() bool { return len(runningIDs(a.state(t))) == 2 }, "2 resources running on a")
	paused := func(id string) bool {
		mf := a.metrics(t)
		v, _ := value(mf, "dbus_input_paused", map[string]string{"resource": id, "plugin": "src"})
		return v == 1
	}
	if code, body := a.call(t, "POST", "/api/v1/resources/res-00/inputs/src/pause", false); code != http.StatusForbidden {
		t.Fatalf("pause without %s: %d %s", admin.RequestHeader, code, body)
	}
	req, _ := http.NewRequest("POST", "http://"+a.addr+"/api/v1/resources/res-00/inputs/src/pause", nil)
	req.Header.Set(admin.RequestHeader, "1")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin pause: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if paused("res-00") {
		t.Fatal("a refused pause paused the input")
	}
	if code, body := a.call(t, "POST", "/api/v1/resources/res-00/inputs/src/pause", true); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	if !paused("res-00") || paused("res-01") {
		t.Fatal("pause through the resource API: res-00 not paused, or res-01 paused")
	}
	if code, body := a.call(t, "POST", "/api/v1/inputs/"+url.PathEscape("res-01/src")+"/pause", true); code != 200 {
		t.Fatalf("pause res-01/src: %d %s", code, body)
	}
	if !paused("res-01") {
		t.Fatal("pause through the top-level name res-01/src did not pause it")
	}
	if code, body := a.call(t, "POST", "/api/v1/resources/res-00/reload", true); code < 400 {
		t.Fatalf("reload of a resource through the API: %d %s", code, body)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestClusterMemberLossesCounted: the leader counts a member whose
// session ended without leaving (dbus_cluster_member_losses_total), not
// one that stopped in order (it leaves a left/<name> marker before its
// member znode goes). Before, the counter was always 0.
func TestClusterMemberLossesCounted(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	b := h.start(h.config("b"), Options{})
	c := h.start(h.config("c"), Options{})
	testenv.Eventually(t, 10*time.Second, func() bool { return a.m.IsLeader() && a.m.ClusterStats().Members == 3 }, "a leads 3 members: %+v", a.m.Status())
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return a.m.ClusterStats().Members == 2 }, "b gone from the assignment")
	if n := a.m.ClusterStats().MemberLosses; n != 0 {
		t.Fatalf("an orderly stop counted as %d losses", n)
	}
	c.m.Kill()
	testenv.Eventually(t, 10*time.Second, func() bool { return a.m.ClusterStats().MemberLosses == 1 }, "c's loss counted (losses %d)", a.m.ClusterStats().MemberLosses)
	testenv.Never(t, time.Second, func() bool { return a.m.ClusterStats().MemberLosses != 1 }, "losses changed after settling")
}
