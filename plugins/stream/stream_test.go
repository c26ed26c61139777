package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/mock"
	"github.com/dbus-project/dbus/plugins/stream"
)

func runCfg(t *testing.T, reg *engine.Registry, yaml string, store engine.CheckpointStore) {
	t.Helper()
	cfg, err := engine.Parse("t.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func registry() *engine.Registry {
	reg := engine.NewRegistry()
	mock.Register(reg)
	stream.Register(reg)
	return reg
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestStreamFileToFileAndResumeFromOffset(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	b.WriteString("last line without newline")
	os.WriteFile(in, []byte(b.String()), 0o644)
	store := engine.NewMemoryStore()
	conf := fmt.Sprintf(`
inputs:
  - {name: in, class: StreamInput, source: file, path: %s}
outputs:
  - {name: out, class: StreamOutput, path: %s, match: in}
`, in, out)
	runCfg(t, registry(), conf, store)
	lines := readLines(t, out)
	if len(lines) != 1001 || lines[0] != "line 0" || lines[999] != "line 999" || lines[1000] != "last line without newline" {
		t.Fatalf("got %d lines: first %q last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	cp, _, _ := store.Load("in")
	if cp.Offset != int64(b.Len()) {
		t.Fatalf("checkpoint %d, want the file size %d", cp.Offset, b.Len())
	}
	// Append and run again: only the new lines are read.
	f, _ := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nnew 1\nnew 2\n")
	f.Close()
	runCfg(t, registry(), conf, store)
	lines = readLines(t, out)
	if len(lines) != 1004 || lines[1001] != "" || lines[1002] != "new 1" || lines[1003] != "new 2" {
		t.Fatalf("after resume got %d lines, tail %q", len(lines), lines[len(lines)-3:])
	}
}

func TestStreamCommandToJSONOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	runCfg(t, registry(), fmt.Sprintf(`
inputs:
  - {name: cmd, class: StreamInput, source: command, command: "seq 1 500"}
outputs:
  - {name: out, class: StreamOutput, path: %s, format: json, sync: true, match: cmd}
`, out), engine.NewMemoryStore())
	lines := readLines(t, out)
	if len(lines) != 500 {
		t.Fatalf("got %d lines", len(lines))
	}
	var rec struct{ Payload string }
	if err := json.Unmarshal([]byte(lines[499]), &rec); err != nil || rec.Payload != "500" {
		t.Fatalf("last line %q: %v", lines[499], err)
	}
}

func TestStreamBadConfig(t *testing.T) {
	reg := registry()
	cfg, err := engine.Parse("t.yaml", []byte(`
inputs:
  - {name: in, class: StreamInput, source: file}
outputs:
  - {name: out, class: StreamOutput, match: in}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(cfg, engine.Options{Registry: reg}); err == nil || !strings.Contains(err.Error(), "needs a path") {
		t.Fatalf("missing path: %v", err)
	}
}

func TestStreamCommandStopsWithItsChildren(t *testing.T) {
	reg := registry()
	cfg, err := engine.Parse("t.yaml", []byte(`
inputs:
  - {name: idle, class: StreamInput, source: command, command: "sleep 3600"}
outputs:
  - {name: out, class: MockOutput, match: idle}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown waited %s on the command's child", took)
	}
}
