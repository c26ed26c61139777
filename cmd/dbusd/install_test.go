package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dbus-project/dbus/internal/testenv"
)

// needTool returns the path of a command the install test needs: a skip
// without it, a failure under CI (.ci/run installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.CI() {
			t.Fatalf("%s not found: CI must install it (see .ci/run)", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// unitValues returns the values of key in a systemd unit file.
func unitValues(unit, key string) []string {
	var vals []string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			vals = append(vals, strings.Fields(v)...)
		}
	}
	return vals
}

// writablePaths walks a sample config and returns the paths dbusd writes:
// checkpoint and state directories, schema history files, and the files
// of outputs (stdout "-" excluded).
func writablePaths(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []string
	var walk func(v any, inOutputs bool)
	walk = func(v any, inOutputs bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				s, isStr := val.(string)
				switch {
				case isStr && (k == "checkpoint_dir" || k == "state_dir" || k == "local_dir" || k == "schema_file" || k == "state_file"):
					out = append(out, s)
				case isStr && k == "path" && inOutputs && s != "-":
					out = append(out, s)
				default:
					walk(val, inOutputs || k == "outputs")
				}
			}
		case []any:
			for _, e := range x {
				walk(e, inOutputs)
			}
		}
	}
	walk(doc, false)
	return out
}

// TestEngineInstallLayout: `make install` into a staging root gives a unit
// that systemd-analyze verify accepts, a service user and state directory
// from the shipped sysusers.d/tmpfiles.d entries, and every sample writes
// only where the unit lets the service write (ProtectSystem=strict); the
// installed dbusd, run as the service user, validates the installed config
// with its checkpoint_dir inside the staged state directory.
func TestEngineInstallLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make install")
	}
	needTool(t, "make")
	analyze := needTool(t, "systemd-analyze")
	sysusers := needTool(t, "systemd-sysusers")
	tmpfiles := needTool(t, "systemd-tmpfiles")
	root := t.TempDir()
	os.Chmod(root, 0o755)
	for d := filepath.Dir(root); d != "/" && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the service user must reach the staged binary
	}
	cmd := exec.Command("make", "-C", "../..", "install", "DESTDIR="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	unitPath := filepath.Join(root, "lib/systemd/system/dbusd.service")
	unitB, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(unitB)
	// systemd-analyze verify checks the Exec paths on this machine: point
	// them into the staging root.
	staged := filepath.Join(t.TempDir(), "dbusd.service")
	os.WriteFile(staged, []byte(strings.ReplaceAll(unit, "/usr/local/bin/", root+"/usr/local/bin/")), 0o644)
	out, err := exec.Command(analyze, "verify", "--man=no", staged).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("Unknown")) || bytes.Contains(out, []byte("ignoring")) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The user the unit runs as is the one sysusers.d creates; the state
	// directory belongs to it.
	user := unitValues(unit, "User")
	if len(user) != 1 {
		t.Fatalf("unit User= %v", user)
	}
	if out, err := exec.Command(sysusers, "--root="+root).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	uid, gid := -1, -1
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == user[0] {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
		}
	}
	if uid <= 0 {
		t.Fatalf("sysusers.d did not create the unit's user %q:\n%s", user[0], passwd)
	}
	if out, err := exec.Command(tmpfiles, "--root="+root, "--create").CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	state := unitValues(unit, "WorkingDirectory")
	if len(state) != 1 {
		t.Fatalf("unit WorkingDirectory= %v", state)
	}
	st, err := os.Stat(filepath.Join(root, state[0]))
	if err != nil {
		t.Fatalf("tmpfiles.d did not create %s: %v", state[0], err)
	}
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != uid {
		t.Fatalf("%s is owned by uid %d, want the service user %d", state[0], sys.Uid, uid)
	}

	// Every sample writes only below the unit's writable paths (relative
	// paths resolve in WorkingDirectory).
	writable := append(unitValues(unit, "ReadWritePaths"), state[0])
	samples, _ := filepath.Glob("../../etc/*.yaml")
	for _, f := range samples {
		if filepath.Base(f) == "prometheus-alerts.yaml" {
			continue
		}
		for _, p := range writablePaths(t, f) {
			if !filepath.IsAbs(p) {
				p = filepath.Join(state[0], p)
			}
			ok := false
			for _, w := range writable {
				if p == w || strings.HasPrefix(p, strings.TrimSuffix(w, "/")+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s writes %s, outside the unit's writable paths %v", filepath.Base(f), p, writable)
			}
		}
	}

	// The installed binary validates the installed config as the service
	// user, with the state directory staged.
	conf, err := os.ReadFile(filepath.Join(root, "etc/dbus-pipeline/dbusd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stagedConf := filepath.Join(root, "etc/dbus-pipeline/staged.yaml")
	os.WriteFile(stagedConf, bytes.ReplaceAll(conf, []byte(state[0]), []byte(filepath.Join(root, state[0]))), 0o644)
	check := exec.Command(filepath.Join(root, "usr/local/bin/dbusd"), "-t", "-offline", "-conf", stagedConf)
	check.Dir = filepath.Join(root, state[0])
	check.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("installed dbusd -t as the service user: %v\n%s", err, out)
	}
}
