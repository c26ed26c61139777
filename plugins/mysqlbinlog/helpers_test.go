package mysqlbinlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

var serverIDs atomic.Uint32

func init() { serverIDs.Store(uint32(1000 + time.Now().UnixNano()%100000)) }

// db is a test database on the test server.
type db struct {
	t        testing.TB
	addr     string
	user, pw string
	name     string
	c        *client.Conn
}

func testDB(t testing.TB) *db {
	t.Helper()
	addr, user, pw := testenv.MySQL(t)
	c, err := client.Connect(addr, user, pw, "")
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	name := "dbus_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	d := &db{t: t, addr: addr, user: user, pw: pw, name: name, c: c}
	d.exec("SET NAMES utf8mb4")
	d.exec("SET SESSION time_zone = '+00:00'")
	d.exec("DROP DATABASE IF EXISTS " + name)
	d.exec("CREATE DATABASE " + name + " DEFAULT CHARSET utf8mb4")
	d.exec("USE " + name)
	t.Cleanup(func() {
		d.c.Execute("DROP DATABASE IF EXISTS " + name)
		d.c.Close()
	})
	return d
}

func (d *db) exec(q string, args ...any) {
	d.t.Helper()
	if _, err := d.c.Execute(q, args...); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
}

// reconnect reopens the admin connection (after a server restart).
func (d *db) reconnect() {
	d.t.Helper()
	var err error
	if !testenv.WaitFor(10*time.Second, func() bool {
		var c *client.Conn
		if c, err = client.Connect(d.addr, d.user, d.pw, ""); err != nil {
			return false
		}
		d.c = c
		return true
	}) {
		d.t.Fatalf("reconnect: %v", err)
	}
	d.exec("SET NAMES utf8mb4")
	d.exec("SET SESSION time_zone = '+00:00'")
	d.exec("USE " + d.name)
}

// pos returns the server's current binlog position.
func (d *db) pos() Position {
	d.t.Helper()
	r, err := d.c.Execute("SHOW MASTER STATUS")
	if err != nil {
		d.t.Fatal(err)
	}
	f, _ := r.GetString(0, 0)
	p, _ := r.GetUint(0, 1)
	g, _ := d.c.Execute("SELECT @@gtid_binlog_pos")
	gs, _ := g.GetString(0, 0)
	return Position{File: f, Pos: uint32(p), GTID: gs}
}

// pipeline is a running engine: MysqlbinlogInput -> recorder.
type pipeline struct {
	t      testing.TB
	e      *engine.Engine
	rec    *mock.Recorder
	cancel context.CancelFunc
	done   chan error
	input  *Input
	logs   *logBuf
}

// logBuf collects the engine's log lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(b)
	}
	return l.buf.Write(b)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits for a log line containing every one of subs.
func (p *pipeline) waitLog(within time.Duration, subs ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			ok := true
			for _, s := range subs {
				if !strings.Contains(line, s) {
					ok = false
					break
				}
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log line with %q within %v; log:\n%s", subs, within, p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var inputs atomic.Pointer[Input] // the last constructed input (tests read Lag etc.)

// startPipeline runs a pipeline with the input fields given (addr, user,
// password and server_id are filled in) and store.
func startPipeline(t testing.TB, d *db, fields string, store engine.CheckpointStore) *pipeline {
	t.Helper()
	reg := engine.NewRegistry()
	rec := mock.NewRecorder()
	if err := reg.Register(engine.Spec{
		Class: "MysqlbinlogInput", Kind: engine.KindInput, Fields: spec.Fields,
		NewInput: func(c *engine.Conf) (engine.Input, error) {
			in, err := newInput(c)
			if err == nil {
				inputs.Store(in)
			}
			return in, err
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	sid := serverIDs.Add(1)
	defaults := []string{
		fmt.Sprintf("addr: %q", d.addr), fmt.Sprintf("user: %q", d.user), fmt.Sprintf("password: %q", d.pw),
		fmt.Sprintf("server_id: %d", sid), "heartbeat: 200ms", "read_timeout: 2s", "reconnect_backoff: 50ms",
		"reconnect_max_backoff: 500ms", fmt.Sprintf("include: [%q]", d.name),
	}
	var lines []string
	for _, l := range defaults {
		k := l[:strings.IndexByte(l, ':')+1]
		if !strings.Contains("\n"+strings.TrimSpace(fields), "\n"+k) && !strings.HasPrefix(strings.TrimSpace(fields), k) {
			lines = append(lines, l)
		}
	}
	yaml := fmt.Sprintf(`engine:
  checkpoint_interval: 20ms
  shutdown_timeout: 10s
  restart_backoff: 50ms
inputs:
  - name: bl
    class: MysqlbinlogInput
%s
%s
outputs:
  - name: out
    class: Rec
    match: [bl]
`, indent(strings.Join(lines, "\n"), "    "), indent(fields, "    "))
	cfg, err := engine.Parse("test.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	logs := &logBuf{}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{t: t, e: e, rec: rec, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { p.done <- e.Run(ctx) }()
	t.Cleanup(func() { p.stop() })
	// Wait for the input to exist.
	testenv.WaitFor(5*time.Second, func() bool { return inputs.Load() != nil })
	p.input = inputs.Swap(nil)
	return p
}

func indent(s, pre string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = pre + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// stop shuts the engine down in order and returns Run's error.
func (p *pipeline) stop() error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		p.t.Fatalf("engine did not stop within 30s\n%s", buf[:n])
	}
	return nil
}

// wait waits until the recorder holds n packets.
func (p *pipeline) wait(n int, within time.Duration) [][]byte {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for p.rec.Len() < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("got %d packets, want %d within %v", p.rec.Len(), n, within)
		}
		select {
		case err := <-p.done:
			p.t.Fatalf("engine stopped early with %d packets (want %d): %v", p.rec.Len(), n, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return p.rec.Payloads()
}

// rowChange is a decoded payload.
type rowChange struct {
	Source struct {
		File     string `json:"file"`
		Pos      uint32 `json:"pos"`
		GTID     string `json:"gtid"`
		ServerID uint32 `json:"server_id"`
	} `json:"source"`
	DB      string `json:"db"`
	Table   string `json:"table"`
	Kind    string `json:"kind"`
	TsMs    int64  `json:"ts_ms"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	PK     []string                   `json:"pk"`
	Key    map[string]json.RawMessage `json:"key"`
	Before map[string]json.RawMessage `json:"before"`
	After  map[string]json.RawMessage `json:"after"`
	Rows   []struct {
		Key    map[string]json.RawMessage `json:"key"`
		Before map[string]json.RawMessage `json:"before"`
		After  map[string]json.RawMessage `json:"after"`
	} `json:"rows"`
}

func decode(t testing.TB, b []byte) rowChange {
	t.Helper()
	var r rowChange
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("payload is not the documented JSON: %v\n%s", err, b)
	}
	return r
}

func decodeAll(t testing.TB, ps [][]byte) []rowChange {
	out := make([]rowChange, len(ps))
	for i, p := range ps {
		out[i] = decode(t, p)
	}
	return out
}

// ciScript runs .ci/mariadb.sh with args.
func ciScript(t testing.TB, env []string, args ...string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, ".ci", "mariadb.sh"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf(".ci/mariadb.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// buildDbusd builds ./cmd/dbusd of the repository at root into dir and
// returns the binary's path (the kill -9 tests run it as a process).
func buildDbusd(t testing.TB, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dbusd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dbusd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build dbusd: %v\n%s", err, out)
	}
	return bin
}
