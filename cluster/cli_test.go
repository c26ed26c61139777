package cluster

import (
	"bytes"
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
