package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/cluster"
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// clusterHarness is a cluster in the shared test ZooKeeper with its
// operator Admin (the cluster commands moved here from package cluster
// with their tests; members run as dbusd runs them, RunMemberWith).
type clusterHarness struct {
	t       *testing.T
	zk      []string
	cluster string
	admin   *cluster.Admin
}

func newClusterHarness(t *testing.T) *clusterHarness {
	t.Helper()
	servers := testenv.ZooKeeper(t)
	name := fmt.Sprintf("dbc%d-%s", time.Now().UnixNano()%1e9, strings.ToLower(strings.TrimPrefix(t.Name(), "TestCluster")))
	a, err := cluster.Dial(context.Background(), servers, cluster.AdminOptions{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.CreateCluster(name); err != nil {
		t.Fatal(err)
	}
	return &clusterHarness{t: t, zk: servers, cluster: name, admin: a}
}

// clusterPipeline is the members' pipeline: a distributed MockInput.
const clusterPipeline = `engine:
  checkpoint_interval: 50ms
  shutdown_timeout: 5s
inputs:
  - name: src
    class: MockInput
    rate: 100
outputs:
  - name: null
    class: MockOutput
    match: src
`

// start runs member name (extra: more cluster: settings, indented) and,
// without extra, waits until it registered.
func (h *clusterHarness) start(name, extra string) {
	h.t.Helper()
	conf := clusterPipeline + fmt.Sprintf(`cluster:
  name: %s
  member: %s
  zookeeper: [%s]
  session_timeout: 2s
  connect_timeout: 3s
  local_dir: %s
%s`, h.cluster, name, strings.Join(h.zk, ", "), h.t.TempDir(), extra)
	cfg, err := engine.Parse(name+".yaml", []byte(conf), engine.Default)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cluster.RunMemberWith(ctx, cfg, engine.Default, slog.New(slog.NewTextHandler(io.Discard, nil)), cluster.RunOptions{})
	}()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("member %s: %v", name, err)
		}
	})
	if extra != "" {
		return
	}
	testenv.Eventually(h.t, 10*time.Second, func() bool {
		ms, _ := h.admin.Members(h.cluster)
		for _, m := range ms {
			if m.Name == name {
				return true
			}
		}
		return false
	}, "member %s registered", name)
}

// runningBy returns resource -> member as the members list them.
func (h *clusterHarness) runningBy() map[string]string {
	ms, err := h.admin.Members(h.cluster)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		for _, id := range m.Running {
			out[id] = m.Name
		}
	}
	return out
}

func (h *clusterHarness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	testenv.Eventually(h.t, d, cond, "%s", what)
}

// TestClusterCLI drives the dbc sub-commands against a live cluster.
func TestClusterCLI(t *testing.T) {
	h := newClusterHarness(t)
	h.start("a", "")
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := runCluster(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	must := func(want string, args ...string) string {
		t.Helper()
		out, code := run(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("dbc %s: code %d, output:\n%s\nwant %q", strings.Join(args, " "), code, out, want)
		}
		return out
	}
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "v1.yaml"), filepath.Join(dir, "v2.yaml")
	os.WriteFile(f1, []byte(clusterPipeline), 0o644)
	os.WriteFile(f2, []byte(strings.Replace(clusterPipeline, "rate: 100", "rate: 50", 1)), 0o644)
	must("version 1 pushed", "config", "push", "-cluster", h.cluster, "-file", f1)
	must("version 2 pushed", "config", "push", "-cluster", h.cluster, "-file", f2)
	must("-     rate: 100", "config", "diff", "-cluster", h.cluster)
	must("+     rate: 50", "config", "diff", "-cluster", h.cluster)
	must("2", "config", "history", "-cluster", h.cluster)
	must(h.cluster, "clusters")
	must("added", "resources", "add", "-cluster", h.cluster, "-id", "r1", "-input", "src", "-config", `{"payload":64}`)
	out, code := run("resources", "add", "-cluster", h.cluster, "-id", "r2", "-input", "nope")
	if code == 0 || !strings.Contains(out, `unknown input "nope"`) {
		t.Fatalf("bad input accepted: %s", out)
	}
	h.waitFor("r1 running", 10*time.Second, func() bool { return h.runningBy()["r1"] == "a" })
	must("r1", "members", "-cluster", h.cluster)
	h.waitFor("checkpoint", 5*time.Second, func() bool {
		out, _ := run("checkpoints", "-cluster", h.cluster)
		return strings.Contains(out, "r1")
	})
	must("running", "resources", "-cluster", h.cluster)
	must(`"leader": true`, "-json", "members", "-cluster", h.cluster)
	must("requested", "rebalance", "-cluster", h.cluster)
	must("removed", "resources", "remove", "-cluster", h.cluster, "-id", "r1")
	h.waitFor("r1 stopped", 10*time.Second, func() bool { return len(h.runningBy()) == 0 })
	if out, code := run("members"); code == 0 || !strings.Contains(out, "-cluster is required") {
		t.Fatalf("missing -cluster: %d %s", code, out)
	}
}

// TestClusterCLIBinlogKafkaResources: dbc resources add works for binlog
// and Kafka resources of a pushed config; a binlog resource must set its
// own server_id, and one already used by another resource is refused.
func TestClusterCLIBinlogKafkaResources(t *testing.T) {
	h := newClusterHarness(t)
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := runCluster(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	f := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(f, []byte(`inputs:
  - name: binlog
    class: MysqlbinlogInput
    addr: "127.0.0.1:1"
    server_id: 7000
  - name: kin
    class: KafkaInput
    brokers: ["127.0.0.1:1"]
    topics: [none]
    check_seeds: false
outputs:
  - name: out
    class: StreamOutput
    match: [binlog, kin]
    path: /dev/null
`), 0o644)
	for _, c := range []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{"config", "push", "-cluster", h.cluster, "-file", f}, true, "pushed"},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "db1", "-input", "binlog", "-config",
			`{"addr": "db1:3306", "password": "${cred:db1}", "server_id": 7101, "include": ["shop.*"]}`}, true, "added"},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "db2", "-input", "binlog", "-config",
			`{"addr": "db2:3306", "server_id": 7101}`}, false, "server_id 7101 is already used by resource db1"},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "db3", "-input", "binlog", "-config",
			`{"addr": "db3:3306"}`}, false, `set "server_id" in the resource's config`},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "db4", "-input", "binlog", "-config",
			`{"addr": "db4:3306", "password": "hunter2", "server_id": 7104}`}, false, "password"},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "db2", "-input", "binlog", "-config",
			`{"addr": "db2:3306", "server_id": 7102}`}, true, "added"},
		{[]string{"resources", "add", "-cluster", h.cluster, "-id", "mirror", "-input", "kin", "-config",
			`{"topics": ["orders"], "partitions": ["0", "1"]}`}, true, "added"},
	} {
		out, code := run(c.args...)
		if (code == 0) != c.ok || !strings.Contains(out, c.want) {
			t.Errorf("dbc %s: code %d, output:\n%s\nwant ok=%v and %q", strings.Join(c.args, " "), code, out, c.ok, c.want)
		}
	}
}

// TestClusterCLIAuth: with cluster.auth set on the members (digest auth,
// creator-only ACLs), dbc without credentials is refused with a hint, and
// dbc -auth-user -auth-password '${cred:NAME}' reads the cluster.
func TestClusterCLIAuth(t *testing.T) {
	h := newClusterHarness(t)
	t.Setenv("DBUS_CRED_ZK_DBUS_CLI", "s3cret")
	h.start("a", "  auth: {user: dbus, password: \"${cred:zk-dbus-cli}\"}\n")
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := runCluster(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	// The member joins in the background: wait until dbc with the
	// credentials lists it.
	h.waitFor("dbc members with auth lists a", 10*time.Second, func() bool {
		out, code := run("-auth-user", "dbus", "-auth-password", "${cred:zk-dbus-cli}", "members", "-cluster", h.cluster)
		return code == 0 && strings.Contains(out, "\na ")
	})
	if out, code := run("members", "-cluster", h.cluster); code == 0 || !strings.Contains(out, "-auth-user") {
		t.Fatalf("dbc members without auth: code %d, output:\n%s", code, out)
	}
	if out, code := run("-auth-user", "dbus", "-auth-password", "s3cret", "members", "-cluster", h.cluster); code == 0 || !strings.Contains(out, "credential reference") {
		t.Fatalf("a literal password was accepted: code %d, output:\n%s", code, out)
	}
	if out, code := run("-auth-user", "dbus", "-auth-password", "${cred:zk-dbus-cli}", "members", "-cluster", h.cluster); code != 0 || !strings.Contains(out, "\na ") {
		t.Fatalf("dbc members with auth: code %d, output:\n%s", code, out)
	}
}

// TestClusterCLIBulkAdd: dbc resources add -file adds 200 resources in
// one run (one session, multis of up to 500 creates; 200 dbc runs took
// 52 s), checked as single adds are: a server_id used twice in the batch
// refuses the whole batch, nothing created.
func TestClusterCLIBulkAdd(t *testing.T) {
	h := newClusterHarness(t)
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := runCluster(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte(`inputs:
  - {name: binlog, class: MysqlbinlogInput, addr: "127.0.0.1:1", server_id: 7000}
  - {name: src, class: MockInput}
outputs:
  - {name: out, class: StreamOutput, match: [binlog, src], path: /dev/null}
`), 0o644)
	if out, code := run("config", "push", "-cluster", h.cluster, "-file", conf); code != 0 {
		t.Fatalf("push: %s", out)
	}
	var specs []cluster.ResourceSpec
	for i := 0; i < 200; i++ {
		specs = append(specs, cluster.ResourceSpec{ID: fmt.Sprintf("r%03d", i), Input: "src", Config: map[string]any{"payload": 64 + i}})
	}
	specs = append(specs, cluster.ResourceSpec{ID: "db1", Input: "binlog", Config: map[string]any{"addr": "db1:3306", "server_id": 7101}},
		cluster.ResourceSpec{ID: "db2", Input: "binlog", Config: map[string]any{"addr": "db2:3306", "server_id": 7101}})
	f := filepath.Join(dir, "res.json")
	write := func() {
		b, _ := json.Marshal(specs)
		os.WriteFile(f, b, 0o644)
	}
	write()
	if out, code := run("resources", "add", "-cluster", h.cluster, "-file", f); code == 0 || !strings.Contains(out, "server_id 7101 is already used by resource db1") {
		t.Fatalf("a batch reusing a server_id: code %d, output:\n%s", code, out)
	}
	if rs, _ := h.admin.Resources(h.cluster); len(rs) != 0 {
		t.Fatalf("a refused batch created %d resources", len(rs))
	}
	specs[len(specs)-1].Config["server_id"] = 7102
	write()
	start := time.Now()
	if out, code := run("resources", "add", "-cluster", h.cluster, "-file", f); code != 0 || !strings.Contains(out, "202 resources added") {
		t.Fatalf("bulk add: code %d, output:\n%s", code, out)
	}
	t.Logf("202 resources added in %s", time.Since(start).Round(time.Millisecond))
	if rs, _ := h.admin.Resources(h.cluster); len(rs) != 202 {
		t.Fatalf("%d resources registered, want 202", len(rs))
	}
	if out, code := run("resources", "add", "-cluster", h.cluster, "-file", f); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("re-adding existing ids: code %d, output:\n%s", code, out)
	}
}
