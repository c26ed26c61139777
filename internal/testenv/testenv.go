package testenv

import (
	"os"
	"strings"
	"testing"
)

// Environment variables set by .ci/run (see .ci/mariadb.sh, .ci/zookeeper.sh).
const (
	EnvMySQLAddr     = "DBUS_TEST_MYSQL_ADDR"     // host:port of a MariaDB with ROW binlog
	EnvMySQLUser     = "DBUS_TEST_MYSQL_USER"     // admin user (default root)
	EnvMySQLPassword = "DBUS_TEST_MYSQL_PASSWORD" // its password
	EnvMySQLDataDir  = "DBUS_TEST_MYSQL_DATADIR"  // server data dir (restart tests)
	EnvZK            = "DBUS_TEST_ZK"             // comma-separated host:port of a ZooKeeper
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

// MySQL returns the address, user and password of the test MariaDB.
func MySQL(t testing.TB) (addr, user, password string) {
	t.Helper()
	addr = Require(t, EnvMySQLAddr, "MariaDB server")
	user = os.Getenv(EnvMySQLUser)
	if user == "" {
		user = "root"
	}
	return addr, user, os.Getenv(EnvMySQLPassword)
}

// ZooKeeper returns the test ZooKeeper servers.
func ZooKeeper(t testing.TB) []string {
	t.Helper()
	return strings.Split(Require(t, EnvZK, "ZooKeeper server"), ",")
}
