package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/plugins/mock"
)

const pipeline = `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 20000}
filters:
  - {name: f, class: MockFilter, mode: modify, suffix: "%s", match: gen}
outputs:
  - {name: out, class: MockOutput, match: f}
admin: {token: tok, tap: {enabled: true}}
`

type node struct {
	sup  *engine.Supervisor
	addr string
	path string
}

func startNode(t *testing.T) *node {
	t.Helper()
	return startNodeWith(t, "")
}

// startNodeWith starts a node whose admin: section is section ("": the
// one in pipeline).
func startNodeWith(t *testing.T, section string) *node {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	path := filepath.Join(t.TempDir(), "dbus.yaml")
	conf := fmt.Sprintf(pipeline, "a")
	if section != "" {
		conf = strings.Replace(conf, "admin: {token: tok, tap: {enabled: true}}", "admin: "+section, 1)
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.LoadFile(path, reg)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	srv, err := admin.Start(ctx, admin.Options{Supervisor: sup, Registry: reg, ConfigPath: path, Logger: log,
		Version: "v-dbc", Section: cfg.Sections["admin"], ListenOverride: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &node{sup: sup, addr: srv.Addr(), path: path}
}

// dbc runs the command line and returns the exit code, stdout, stderr.
func (n *node) dbc(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"-addr", n.addr, "-token", "tok"}, args...)
	code := run(full, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func (n *node) paused(name string) bool {
	for _, s := range n.sup.Stats() {
		if s.Name == name {
			return s.Paused
		}
	}
	return false
}

func TestAPIDbcSingleNodeCommands(t *testing.T) {
	n := startNode(t)

	code, out, errs := n.dbc(t, "", "status")
	if code != 0 || !strings.Contains(out, "v-dbc") || !strings.Contains(out, "generation  1") {
		t.Fatalf("status = %d\n%s%s", code, out, errs)
	}
	code, out, _ = n.dbc(t, "", "-json", "status")
	if code != 0 || !strings.Contains(out, `"generation": 1`) {
		t.Fatalf("status -json = %d\n%s", code, out)
	}
	code, out, _ = n.dbc(t, "", "plugins")
	if code != 0 || !strings.Contains(out, "MockInput") || !strings.Contains(out, "gen") {
		t.Fatalf("plugins = %d\n%s", code, out)
	}
	code, out, _ = n.dbc(t, "", "plugins", "MockFilter")
	if code != 0 || !strings.Contains(out, "drop_ratio") || !strings.Contains(out, "One of: pass, modify") {
		t.Fatalf("plugins MockFilter = %d\n%s", code, out)
	}
	code, _, errs = n.dbc(t, "", "plugins", "Nope")
	if code != 1 || !strings.Contains(errs, `no plugin class "Nope"`) || !strings.Contains(errs, "HTTP 404") {
		t.Fatalf("plugins Nope = %d %s", code, errs)
	}
	code, out, _ = n.dbc(t, "", "queues")
	if code != 0 || !strings.Contains(out, "gen") || !strings.Contains(out, "running") {
		t.Fatalf("queues = %d\n%s", code, out)
	}
	code, out, _ = n.dbc(t, "", "checkpoints")
	if code != 0 || !strings.Contains(out, "INPUT") || !strings.Contains(out, "gen") {
		t.Fatalf("checkpoints = %d\n%s", code, out)
	}
	code, out, _ = n.dbc(t, "", "dag")
	if code != 0 || !strings.Contains(out, "gen -> f") || !strings.Contains(out, "f -> out") {
		t.Fatalf("dag = %d\n%s", code, out)
	}

	// tap with flags after the node name.
	code, out, errs = n.dbc(t, "", "tap", "f", "-max", "3", "-payload-bytes", "40")
	if code != 0 || strings.Count(out, "f seq=") != 3 || !strings.Contains(out, `a"`) {
		t.Fatalf("tap = %d\n%s%s", code, out, errs)
	}
	code, _, errs = n.dbc(t, "", "tap", "f", "-max", "100000")
	if code != 1 || !strings.Contains(errs, "over the limit") || !strings.Contains(errs, "HTTP 400") {
		t.Fatalf("oversized tap = %d %s", code, errs)
	}

	// pause / resume, observable in the supervisor's stats.
	if code, out, errs := n.dbc(t, "", "pause", "gen"); code != 0 || !strings.Contains(out, "gen: paused") || !n.paused("gen") {
		t.Fatalf("pause = %d %s %s", code, out, errs)
	}
	if code, _, _ := n.dbc(t, "", "queues"); code != 0 {
		t.Fatal("queues while paused")
	}
	if code, _, _ := n.dbc(t, "", "resume", "gen"); code != 0 || n.paused("gen") {
		t.Fatalf("resume = %d", code)
	}
	code, _, errs = n.dbc(t, "", "pause", "out")
	if code != 1 || !strings.Contains(errs, "only inputs") {
		t.Fatalf("pause out = %d %s", code, errs)
	}

	// reload from a file, from stdin, a bad one, and a re-read.
	other := filepath.Join(t.TempDir(), "b.yaml")
	os.WriteFile(other, []byte(fmt.Sprintf(pipeline, "b")), 0o644)
	code, out, errs = n.dbc(t, "", "reload", other)
	if code != 0 || !strings.Contains(out, "generation 2 (was 1)") || n.sup.Generation() != 2 {
		t.Fatalf("reload FILE = %d %s %s", code, out, errs)
	}
	code, out, _ = n.dbc(t, fmt.Sprintf(pipeline, "c"), "reload", "-")
	if code != 0 || !strings.Contains(out, "generation 3") {
		t.Fatalf("reload - = %d %s", code, out)
	}
	code, _, errs = n.dbc(t, "outputs: []\n", "reload", "-")
	if code != 1 || !strings.Contains(errs, "HTTP 400") || n.sup.Generation() != 3 {
		t.Fatalf("bad reload = %d %s", code, errs)
	}
	code, out, _ = n.dbc(t, "", "reload")
	if code != 0 || !strings.Contains(out, "generation 4") {
		t.Fatalf("reload (re-read) = %d %s", code, out)
	}
}

func TestAPIDbcAuthUsageAndCluster(t *testing.T) {
	t.Setenv("DBUS_ZK", "127.0.0.1:1") // nothing listens: cluster commands fail fast
	n := startNode(t)
	var out, errb bytes.Buffer
	if code := run([]string{"-addr", n.addr, "status"}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "authorization required") {
		t.Fatalf("no token = %d %s", code, errb.String())
	}
	tf := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tf, []byte("tok\n"), 0o600)
	out.Reset()
	if code := run([]string{"-addr", "http://" + n.addr, "-token-file", tf, "status"}, nil, &out, &errb); code != 0 {
		t.Fatalf("token file = %d %s", code, errb.String())
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"pause"}, {"tap"}, {"status", "extra"}, {"-addr", "::bad::", "status"}} {
		errb.Reset()
		if code := run(args, nil, io.Discard, &errb); code != 2 {
			t.Fatalf("dbc %v = %d, want 2 (usage): %s", args, code, errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"-addr", "127.0.0.1:1", "status"}, nil, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach") {
		t.Fatalf("unreachable = %d %s", code, errb.String())
	}
	// Cluster commands reach package cluster (or the "not available" stub):
	// either way they are not treated as single-node commands.
	for _, args := range [][]string{{"cluster"}, {"-zk", "127.0.0.1:1", "-timeout", "300ms", "members"}, {"-timeout", "300ms", "members", "-cluster", "x"}} {
		errb.Reset()
		code := run(args, nil, io.Discard, &errb)
		if code == 0 || strings.Contains(errb.String(), "unknown command") || strings.Contains(errb.String(), "flag provided but not defined: -zk") {
			t.Fatalf("dbc %v = %d: %s", args, code, errb.String())
		}
	}
}
