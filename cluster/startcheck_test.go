package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
)

// TestClusterWarnsBinlogInputWithoutResources: a member whose config has
// a MysqlbinlogInput while the cluster declares no resource for it warns
// at start, naming the input, the per-resource field (server_id) and the
// dbc command that adds one; an input that has a resource gets no
// warning. Before, such a member started silently and the binlog was
// read by nobody.
func TestClusterWarnsBinlogInputWithoutResources(t *testing.T) {
	h := newHarness(t)
	if err := mysqlbinlog.Register(h.reg); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: "s1", Input: "src", Config: map[string]any{"resource": "s1"}}); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`engine:
  checkpoint_interval: 50ms
inputs:
  - name: src
    class: ClusterTestInput
  - name: binlog
    class: MysqlbinlogInput
    addr: 127.0.0.1:1
    server_id: 7001
outputs:
  - name: out
    class: ClusterTestSink
    match: src
    sink: %s
  - name: null
    class: MockOutput
    match: binlog
cluster:
  name: %s
  member: a
  zookeeper: [%s]
  session_timeout: 2s
  connect_timeout: 3s
  local_dir: %s
`, h.cluster, h.cluster, strings.Join(h.zk, ", "), t.TempDir())
	cfg, err := engine.Parse("member.yaml", []byte(data), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	var buf testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunMemberWith(ctx, cfg, h.reg, log, RunOptions{}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(buf.String(), "declares none") },
		"no warning for the binlog input without resources; log:\n%s", buf.String())
	out := buf.String()
	for _, want := range []string{`input \"binlog\" (class MysqlbinlogInput)`, "dbc resources add -cluster " + h.cluster, "-input binlog", `\"server_id\": ...`} {
		if !strings.Contains(out, want) {
			t.Fatalf("warning lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `input \"src\"`) {
		t.Fatalf("warning for input src, which has a resource:\n%s", out)
	}
}
