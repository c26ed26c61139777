package testenv

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables set by .ci/run (see .ci/mariadb.sh, .ci/zookeeper.sh).
const (
	EnvMySQLAddr     = "DBUS_TEST_MYSQL_ADDR"     // host:port of a MariaDB with ROW binlog
	EnvMySQLUser     = "DBUS_TEST_MYSQL_USER"     // admin user (default root)
	EnvMySQLPassword = "DBUS_TEST_MYSQL_PASSWORD" // its password
	EnvMySQLDataDir  = "DBUS_TEST_MYSQL_DATADIR"  // server data dir (restart tests)
	EnvZK            = "DBUS_TEST_ZK"             // comma-separated host:port of a ZooKeeper
	// A second MariaDB (ROW binlog, users root/dbus as above) that requires
	// TLS (require_secure_transport=ON) with the server certificate of
	// EnvTLSDir, and that directory: .ci/certs.sh output (ca.pem,
	// server.pem/.key for localhost and 127.0.0.1, client.pem/.key,
	// expired.*, wronghost.*, other-ca.pem).
	EnvMySQLTLSAddr = "DBUS_TEST_MYSQL_TLS_ADDR"
	EnvTLSDir       = "DBUS_TEST_TLS_DIR"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Require returns the value of env, skipping the test when it is unset, or
// failing it under CI.
func Require(t testing.TB, env, what string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		if CI() {
			t.Fatalf("%s is not set: CI must provide %s (see .ci/run)", env, what)
		}
		t.Skipf("%s not set: no %s for this integration test (run .ci/run or set it)", env, what)
	}
	return v
}

// MySQL returns the address, user and password of the test MariaDB, and
// holds the server (shared) for the rest of the test: a test changing it
// (MySQLExclusive) waits until the test ends (mysqllock.go).
func MySQL(t testing.TB) (addr, user, password string) {
	t.Helper()
	addr, user, password = mysqlEnv(t)
	holdMySQL(t, addr, false)
	return addr, user, password
}

func mysqlEnv(t testing.TB) (addr, user, password string) {
	t.Helper()
	addr = Require(t, EnvMySQLAddr, "MariaDB server")
	user = os.Getenv(EnvMySQLUser)
	if user == "" {
		user = "root"
	}
	return addr, user, os.Getenv(EnvMySQLPassword)
}

// MySQLTLS returns the address of the test MariaDB that requires TLS, its
// admin user and password, and the directory of the test certificates.
func MySQLTLS(t testing.TB) (addr, user, password, certDir string) {
	t.Helper()
	addr = Require(t, EnvMySQLTLSAddr, "MariaDB server requiring TLS")
	certDir = Require(t, EnvTLSDir, "test certificates (.ci/certs.sh)")
	user = os.Getenv(EnvMySQLUser)
	if user == "" {
		user = "root"
	}
	return addr, user, os.Getenv(EnvMySQLPassword), certDir
}

// ZooKeeper returns the test ZooKeeper servers.
func ZooKeeper(t testing.TB) []string {
	t.Helper()
	return strings.Split(Require(t, EnvZK, "ZooKeeper server"), ",")
}

// Eventually polls cond every tick until it returns true, failing the
// test with the message (fmt-style) when within passes first. Tests wait
// for a condition with it instead of sleeping a fixed "let it settle"
// time: a sleep is too short on a loaded 2-core CI and too long
// everywhere else. within is scaled by Scale().
func Eventually(t testing.TB, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !WaitFor(within, cond) {
		t.Fatalf("not within %v: "+format, append([]any{Scaled(within)}, args...)...)
	}
}

// WaitFor polls cond until it returns true (true) or within, scaled by
// Scale(), passes (false). For tests that do something other than fail.
func WaitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(Scaled(within))
	tick := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(tick)
		if tick < 20*time.Millisecond {
			tick *= 2
		}
	}
}

// Never checks that cond stays false for the whole of d (not scaled: it
// is a minimum observation time), polling; it fails the test the first
// time cond is true.
func Never(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("happened within %v: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Scale is the factor by which test deadlines are stretched: the
// DBUS_TEST_TIMEOUT_SCALE environment variable (default 1, or 3 when the
// race detector is on, which slows the code under test 5-20x).
func Scale() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("DBUS_TEST_TIMEOUT_SCALE"), 64); err == nil && v > 0 {
		return v
	}
	if raceEnabled {
		return 3
	}
	return 1
}

// Scaled returns d stretched by Scale().
func Scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * Scale()) }

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers:
// the output of a process or command a test polls while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Race reports whether the race detector is on. Allocation counts of code
// that uses sync.Pool (bytebufferpool, encoding/json) are not meaningful
// then: the race detector makes sync.Pool drop items at random.
func Race() bool { return raceEnabled }
