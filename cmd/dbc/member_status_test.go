package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/cluster"
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

// TestClusterDbcStatusMember: dbc status against a cluster member's
// admin address shows the member, its epoch, session and the resources
// it owns with their state; dbc pause of a resource's input goes
// through the member's API (<resource>/<plugin>).
func TestClusterDbcStatusMember(t *testing.T) {
	servers := testenv.ZooKeeper(t)
	name := fmt.Sprintf("dbc%d", time.Now().UnixNano()%1e9)
	reg := engine.NewRegistry()
	mock.Register(reg)
	conf := fmt.Sprintf(`
inputs:
  - name: gen
    class: MockInput
    rate: 50
outputs:
  - name: null
    class: MockOutput
    match: gen
cluster:
  name: %s
  member: m1
  zookeeper: [%s]
  session_timeout: 2s
  connect_timeout: 3s
  local_dir: %s
admin:
  listen: 127.0.0.1:0
`, name, strings.Join(servers, ", "), t.TempDir())
	cfg, err := engine.Parse("m1.yaml", []byte(conf), reg)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := cluster.Dial(context.Background(), servers, cluster.AdminOptions{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	ad.Registry = reg
	if err := ad.CreateCluster(name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addrc := make(chan string, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- cluster.RunMemberWith(ctx, cfg, reg, log, cluster.RunOptions{OnAdmin: func(a string) { addrc <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	if err := ad.AddResource(name, cluster.ResourceSpec{ID: "r1", Input: "gen"}); err != nil {
		t.Fatal(err)
	}
	dbc := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(append([]string{"-addr", addr}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	var out string
	testenv.Eventually(t, 20*time.Second, func() bool {
		var code int
		code, out = dbc("status")
		return code == 0 && strings.Contains(out, "r1") && strings.Contains(out, "running")
	}, "dbc status shows r1 running; last output:\n%s", out)
	for _, want := range []string{"member m1", "leader m1 (this member)", "session", "connected", "1 owned"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dbc status: no %q in\n%s", want, out)
		}
	}
	// The member marks r1 running just before its engine is built: the
	// pause may need a retry.
	testenv.Eventually(t, 10*time.Second, func() bool {
		code, o := dbc("pause", "r1/gen")
		out = o
		return code == 0
	}, "dbc pause r1/gen: %s", out)
}
