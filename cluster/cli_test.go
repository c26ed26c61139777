package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterCLI drives the dbc sub-commands against a live cluster.
func TestClusterCLI(t *testing.T) {
	h := newHarness(t)
	h.start(h.config("a"), Options{})
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := RunCLI(append([]string{"-zk", zk}, args...), &out, &errb)
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
	os.WriteFile(f1, []byte(pipelineYAML(h.cluster)), 0o644)
	os.WriteFile(f2, []byte(strings.Replace(pipelineYAML(h.cluster), "rate: 100", "rate: 50", 1)), 0o644)
	must("version 1 pushed", "config", "push", "-cluster", h.cluster, "-file", f1)
	must("version 2 pushed", "config", "push", "-cluster", h.cluster, "-file", f2)
	must("-     rate: 100", "config", "diff", "-cluster", h.cluster)
	must("+     rate: 50", "config", "diff", "-cluster", h.cluster)
	must("2", "config", "history", "-cluster", h.cluster)
	must(h.cluster, "clusters")
	must("added", "resources", "add", "-cluster", h.cluster, "-id", "r1", "-input", "src", "-config", `{"resource":"r1"}`)
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
	h := newHarness(t)
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := RunCLI(append([]string{"-zk", zk}, args...), &out, &errb)
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
	h := newHarness(t)
	t.Setenv("DBUS_CRED_ZK_DBUS_CLI", "s3cret")
	ca := h.config("a")
	ca.Auth = &AuthConfig{User: "dbus", Password: "${cred:zk-dbus-cli}"}
	h.start(ca, Options{})
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := RunCLI(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
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
	h := newHarness(t)
	zk := strings.Join(h.zk, ",")
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := RunCLI(append([]string{"-zk", zk}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte(`inputs:
  - {name: binlog, class: MysqlbinlogInput, addr: "127.0.0.1:1", server_id: 7000}
  - {name: src, class: ClusterTestInput}
outputs:
  - {name: out, class: StreamOutput, match: [binlog, src], path: /dev/null}
`), 0o644)
	if out, code := run("config", "push", "-cluster", h.cluster, "-file", conf); code != 0 {
		t.Fatalf("push: %s", out)
	}
	var specs []ResourceSpec
	for i := 0; i < 200; i++ {
		specs = append(specs, ResourceSpec{ID: fmt.Sprintf("r%03d", i), Input: "src", Config: map[string]any{"resource": i}})
	}
	specs = append(specs, ResourceSpec{ID: "db1", Input: "binlog", Config: map[string]any{"addr": "db1:3306", "server_id": 7101}},
		ResourceSpec{ID: "db2", Input: "binlog", Config: map[string]any{"addr": "db2:3306", "server_id": 7101}})
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
