package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// TestEngineEtcSamplesValidate loads every sample config in etc/ and
// constructs every plugin (what dbusd -t does), offline: the samples name
// brokers and files of a deployment, not of this machine.
func TestEngineEtcSamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../etc/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("etc samples: %v %v", files, err)
	}
	for _, f := range files {
		if filepath.Base(f) == "prometheus-alerts.yaml" {
			continue // Prometheus rules, not a pipeline (checked by engine/metrics tests)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"-t", "-offline", "-conf", f}, &out, &errb); code != 0 {
				t.Fatalf("dbusd -t %s = %d: %s", f, code, errb.String())
			}
		})
	}
}

func TestEngineEmbeddedDefaultMatchesEtcDryrun(t *testing.T) {
	b, err := os.ReadFile("../../etc/dryrun.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, defaultConfig) {
		t.Fatalf("cmd/dbusd/default.yaml and etc/dryrun.yaml differ: keep them identical")
	}
}

func TestEngineDbusdCheckListsEveryError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
inputs:
  - {name: gen, class: MockInput, count: x}
outputs:
  - {name: out, class: NoSuchOutput, match: gen}
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"-t", "-conf", bad}, &out, &errb); code == 0 {
		t.Fatalf("bad config accepted")
	}
	for _, w := range []string{"bad.yaml:3:", "count: want an integer", "bad.yaml:5:", `unknown class "NoSuchOutput"`} {
		if !strings.Contains(errb.String(), w) {
			t.Fatalf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	if code := run([]string{"-t", "-conf", filepath.Join(dir, "missing.yaml")}, &out, &errb); code == 0 {
		t.Fatalf("missing file accepted")
	}
}

func TestEngineDbusdDryRunSummary(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-dryrun", "-duration", "300ms", "-report", "100ms", "-log-level", "warn"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var s Summary
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil {
		t.Fatalf("summary %q: %v", out.String(), err)
	}
	if s.Packets == 0 || s.PacketsPerSec <= 0 || s.Seconds <= 0 || s.Plugins["gen"] == 0 {
		t.Fatalf("summary has no throughput: %+v", s)
	}
	if !strings.Contains(errb.String(), "gen=") {
		t.Fatalf("no per-plugin rate lines: %s", errb.String())
	}
}

// TestEngineDbusdSIGTERMLosesNothing runs the real binary on a file,
// stops it with SIGTERM mid-stream, restarts it, and checks that every
// line reached the output exactly once across the two runs.
func TestEngineDbusdSIGTERMLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildDbusd(t)
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	var b strings.Builder
	const n = 200000
	for i := 0; i < n; i++ {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("\n")
	}
	os.WriteFile(in, []byte(b.String()), 0o644)
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte(`
engine: {checkpoint_dir: `+filepath.Join(dir, "ckpt")+`, checkpoint_interval: 10ms}
inputs:
  - {name: in, class: StreamInput, source: file, path: `+in+`}
filters:
  - {name: slow, class: MockFilter, match: in}
outputs:
  - {name: out, class: StreamOutput, path: `+out+`, match: slow}
  - {name: lag, class: MockOutput, latency: 5ms, match: slow}
`), 0o644)
	cmd := exec.Command(bin, "-conf", conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stop it mid-stream: once some lines were written.
	testenv.Eventually(t, 20*time.Second, func() bool { return countLines(t, out) > 0 }, "dbusd wrote nothing")
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dbusd after SIGTERM: %v\n%s", err, stderr.String())
	}
	first := countLines(t, out)
	if first == n {
		t.Fatalf("SIGTERM did not stop the input: the first run wrote all %d lines\n%s", n, stderr.String())
	}
	cmd = exec.Command(bin, "-conf", conf)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("second run: %v\n%s", err, stderr.String())
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, []byte(b.String())) {
		t.Fatalf("output differs from input after SIGTERM + restart: %d vs %d bytes (first run %d lines)", len(got), b.Len(), first)
	}
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// buildDbusd builds the dbusd binary once per test process.
func buildDbusd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dbusd-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "dbusd")
		// -buildvcs=true: stamp the revision even where GOFLAGS turns it
		// off (this CI machine's does), as `make build` does.
		if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", buildBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// TestEngineDbusdVersionStamped: -version names the VCS revision the
// binary was built from (no bare "dev").
func TestEngineDbusdVersionStamped(t *testing.T) {
	bin := buildDbusd(t)
	if err := exec.Command("git", "rev-parse", "HEAD").Run(); err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The revision the binary names is a commit of this repository (HEAD
	// may have moved since the build: compare with git, not with HEAD).
	m := regexp.MustCompile(`[-+]([0-9a-f]{12})(?:[^0-9a-f]|$)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("-version = %q names no revision", out)
	}
	if err := exec.Command("git", "cat-file", "-e", m[1]+"^{commit}").Run(); err != nil {
		t.Fatalf("-version = %q: %s is not a commit of this repository", out, m[1])
	}
}

func TestEngineBuildVersion(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		v    string
		info *debug.BuildInfo
		want string
	}{
		{"v1.2.3", &debug.BuildInfo{Settings: settings("vcs.revision", "abcdef0123456789")}, "v1.2.3"},
		{"dev", nil, "dev"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", "abcdef0123456789", "vcs.modified", "false")}, "dev+abcdef012345"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: settings("vcs.revision", "abcdef0123456789", "vcs.modified", "true")}, "dev+abcdef012345-dirty"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205125949-abcdef012345+dirty"}, Settings: settings("vcs.revision", "abcdef0123456789", "vcs.modified", "true")}, "v0.0.0-20261205125949-abcdef012345+dirty"},
	}
	for _, c := range cases {
		if got := buildVersion(c.v, c.info, c.info != nil); got != c.want {
			t.Errorf("buildVersion(%q, %+v) = %q, want %q", c.v, c.info, got, c.want)
		}
	}
}

// TestEngineDbusdSecondSignalStopsHard: during a drain that cannot finish
// (an output that never acks, shutdown_timeout of an hour), a second
// SIGTERM stops hard within seconds and says what will be read again.
func TestEngineDbusdSecondSignalStopsHard(t *testing.T) {
	bin := buildDbusd(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte(`
engine: {checkpoint_dir: `+filepath.Join(dir, "ckpt")+`, shutdown_timeout: 1h}
inputs:
  - {name: gen, class: MockInput, payload: 16, rate: 1000}
outputs:
  - {name: stuck, class: MockOutput, latency: 1h, match: gen}
`), 0o644)
	cmd := exec.Command(bin, "-conf", conf)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	testenv.Eventually(t, 20*time.Second, func() bool { return strings.Contains(stderr.String(), "dbusd starting") }, "dbusd did not start:\n%s", stderr.String())
	cmd.Process.Signal(syscall.SIGTERM)
	testenv.Eventually(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "shutdown: stopping inputs") }, "no orderly shutdown:\n%s", stderr.String())
	select {
	case err := <-exited:
		t.Fatalf("dbusd exited before the second signal (%v):\n%s", err, stderr.String())
	case <-time.After(200 * time.Millisecond): // the drain cannot finish: the output never acks
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("a hard stop must exit non-zero:\n%s", stderr.String())
		}
	case <-time.After(testenv.Scaled(20 * time.Second)):
		cmd.Process.Kill()
		t.Fatalf("dbusd did not stop after a second SIGTERM:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "will be read again") {
		t.Fatalf("the hard stop does not say what will be read again:\n%s", stderr.String())
	}
}

func countLines(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// TestEngineReadmePluginReferenceIsCurrent keeps the README's plugin
// reference equal to what the specs say (make docs regenerates it).
func TestEngineReadmePluginReferenceIsCurrent(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- plugins:begin -->\n", "<!-- plugins:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README lacks the plugin reference markers")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-plugins"}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if got := s[i+len(begin) : j]; got != out.String() {
		t.Fatalf("README plugin reference is stale: run `make docs`")
	}
}

// TestEngineReadmeConfigExampleParses keeps the README's configuration
// example valid: it is parsed and built (offline) like a real config.
func TestEngineReadmeConfigExampleParses(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Configuration")
	if i < 0 {
		t.Fatal("README lacks the Configuration section")
	}
	start := strings.Index(s[i:], "```yaml\n")
	end := strings.Index(s[i+start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README's Configuration section has no yaml block")
	}
	example := s[i+start+8 : i+start+8+end]
	dir := t.TempDir()
	f := filepath.Join(dir, "readme.yaml")
	if err := os.WriteFile(f, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-t", "-offline", "-conf", f}, &out, &errb); code != 0 {
		t.Fatalf("README config example is invalid:\n%s\n%s", errb.String(), example)
	}
}

// TestEngineDbusdCheckRefusesUnwritableCheckpointDir: -t fails, naming the
// key, when checkpoint_dir cannot be created or written (tests run as
// root, so the unwritable cases are a path under a regular file and one
// under /proc, where even root cannot create files).
func TestEngineDbusdCheckRefusesUnwritableCheckpointDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := map[string]bool{
		filepath.Join(dir, "new", "ckpt"): true,
		dir:                               true,
		filepath.Join(file, "ckpt"):       false,
		"/proc/dbus-test-checkpoint/ckpt": false,
	}
	for ckpt, ok := range cases {
		conf := filepath.Join(dir, "c.yaml")
		os.WriteFile(conf, []byte(`
engine: {checkpoint_dir: `+ckpt+`}
inputs:
  - {name: gen, class: MockInput, count: 1}
outputs:
  - {name: out, class: MockOutput, match: gen}
`), 0o644)
		var out, errb bytes.Buffer
		code := run([]string{"-t", "-conf", conf}, &out, &errb)
		if ok && code != 0 {
			t.Errorf("%s: -t failed: %s", ckpt, errb.String())
		}
		if !ok && (code == 0 || !strings.Contains(errb.String(), "engine.checkpoint_dir")) {
			t.Errorf("%s: -t = %d, want a failure naming engine.checkpoint_dir:\n%s%s", ckpt, code, out.String(), errb.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
			t.Errorf("-t created %s", filepath.Join(dir, "new"))
		}
	}
}

// TestAPIDbusdRefusesExposedAdmin: an admin listener off loopback without
// a token is refused by dbusd -t and at start, saying what to set.
func TestAPIDbusdRefusesExposedAdmin(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "dbus.yaml")
	pipe := "inputs: [{name: gen, class: MockInput, rate: 10}]\noutputs: [{name: out, class: MockOutput, match: gen}]\n"
	for _, c := range []struct {
		section string
		args    []string
	}{
		{"admin: {listen: '0.0.0.0:8714'}\n", []string{"-t"}},
		{"", []string{"-t", "-admin", "0.0.0.0:0"}},
		{"", []string{"-admin", ":0", "-duration", "2s"}},
	} {
		if err := os.WriteFile(conf, []byte(pipe+c.section), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := run(append(c.args, "-conf", conf), &out, &errb); code == 0 {
			t.Fatalf("%v %q: exit 0", c.args, c.section)
		}
		if !strings.Contains(errb.String(), "not a loopback address") || !strings.Contains(errb.String(), "admin.token_file") {
			t.Fatalf("%v %q: %s", c.args, c.section, errb.String())
		}
	}
}

// TestEngineDbusdCheckRefusesUnwritablePluginPaths: -t also checks the
// paths plugins write (fields marked Writes: StreamOutput's file,
// Cardinality's state directory), naming file:line, plugin and key.
func TestEngineDbusdCheckRefusesUnwritablePluginPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	os.WriteFile(file, []byte("x"), 0o644)
	conf := filepath.Join(dir, "c.yaml")
	os.WriteFile(conf, []byte(`
inputs:
  - {name: gen, class: MockInput, count: 1}
outputs:
  - {name: ok, class: StreamOutput, path: `+filepath.Join(dir, "out.log")+`, match: gen}
  - {name: bad, class: StreamOutput, path: `+filepath.Join(file, "out.log")+`, match: gen}
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"-t", "-conf", conf}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "bad (StreamOutput): path:") ||
		strings.Contains(errb.String(), "ok (StreamOutput)") {
		t.Fatalf("-t = %d, want a failure naming bad's path only:\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "c.yaml:6") {
		t.Fatalf("the error does not name the line:\n%s", errb.String())
	}
}

// TestEngineEtcSamplesDeadLettersAreDurable: every dead_letter output a
// sample names keeps what it receives (a file or a broker), never a
// discarding test sink: a dead letter is data the pipeline accepted.
func TestEngineEtcSamplesDeadLettersAreDurable(t *testing.T) {
	files, _ := filepath.Glob("../../etc/*.yaml")
	discarding := map[string]bool{"MockOutput": true}
	seen := 0
	for _, f := range files {
		if filepath.Base(f) == "prometheus-alerts.yaml" {
			continue
		}
		cfg, err := engine.LoadFile(f, engine.Default)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		byName := map[string]*engine.PluginConfig{}
		for _, pc := range cfg.Plugins {
			byName[pc.Name] = pc
		}
		for _, pc := range cfg.Plugins {
			if pc.DeadLetter == "" {
				continue
			}
			seen++
			if d := byName[pc.DeadLetter]; d == nil || discarding[d.Class] {
				t.Errorf("%s: %s sends dead letters to %s, which discards them", filepath.Base(f), pc.Name, pc.DeadLetter)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no sample has a dead_letter output")
	}
}
