package kfaketest

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// serveEnv is the environment variable that turns a test binary into a
// kfake broker process (see StartProcess and MaybeServe).
const serveEnv = "DBUS_KFAKE_SERVE"

// ProcessSpec describes the cluster a broker process runs.
type ProcessSpec struct {
	Brokers    int      // brokers in the cluster (default 1)
	Partitions int32    // partitions of every topic (default 1)
	Topics     []string // topics created at start
	// Blackhole acknowledges produce requests without storing the records
	// (kfake.BlackholeProduce): sequence numbers and offsets still advance,
	// nothing can be consumed. For produce throughput benchmarks, where the
	// broker's in-memory log would otherwise dominate.
	Blackhole bool
	// TLSCert and TLSKey, PEM files, make the listeners speak TLS with
	// that certificate (kfake.TLS).
	TLSCert, TLSKey string
}

// MaybeServe turns the process into a broker when StartProcess started it:
// it runs the cluster of the spec in the environment, prints the listen
// addresses on one line, serves until standard input closes, and exits.
// Otherwise it returns at once. Call it first in the package's TestMain.
// With DBUS_KFAKE_CPUPROFILE=file in the environment the broker process
// writes a CPU profile there.
func MaybeServe() {
	raw := os.Getenv(serveEnv)
	if raw == "" {
		return
	}
	var s ProcessSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintf(os.Stderr, "kfaketest: bad %s: %v\n", serveEnv, err)
		os.Exit(2)
	}
	opts := clusterOpts(max(s.Brokers, 1), max(s.Partitions, 1), s.Topics)
	if s.Blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	if s.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kfaketest: TLS certificate: %v\n", err)
			os.Exit(2)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfaketest: start cluster: %v\n", err)
		os.Exit(2)
	}
	if f := os.Getenv("DBUS_KFAKE_CPUPROFILE"); f != "" {
		if w, err := os.Create(f); err == nil {
			_ = pprof.StartCPUProfile(w)
			defer pprof.StopCPUProfile()
		}
	}
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	pprof.StopCPUProfile()
	os.Exit(0)
}

// Process is a kfake cluster running in a child process: its goroutines,
// allocations and garbage collections stay out of the measured process,
// as a real broker's would.
type Process struct {
	Seeds []string
	cmd   *exec.Cmd
	stdin io.Closer
}

// SeedList returns the seeds as a YAML flow list: [a, b].
func (p *Process) SeedList() string { return "[" + strings.Join(p.Seeds, ", ") + "]" }

// Close stops the broker process and waits for it.
func (p *Process) Close() {
	if p.stdin == nil {
		return
	}
	_ = p.stdin.Close()
	p.stdin = nil
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// StartProcess re-executes the running test binary as a broker process
// with the spec. The package's TestMain must call MaybeServe first. The
// process is stopped at cleanup.
func StartProcess(tb testing.TB, s ProcessSpec) *Process {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("kfake process: %v", err)
	}
	raw, _ := json.Marshal(s)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("kfake process: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("kfake process: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("kfake process: start %s: %v", exe, err)
	}
	p := &Process{cmd: cmd, stdin: stdin}
	tb.Cleanup(p.Close)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if !ok || l == "" {
			p.Close()
			tb.Fatalf("kfake process exited before listening (is kfaketest.MaybeServe called in TestMain?)")
		}
		p.Seeds = strings.Split(l, ",")
	case <-time.After(30 * time.Second):
		p.Close()
		tb.Fatalf("kfake process did not listen within 30 s")
	}
	return p
}
