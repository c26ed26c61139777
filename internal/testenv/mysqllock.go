package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The test MariaDB is shared by every package's tests, and `go test ./...`
// runs packages in parallel processes. A test that changes the server's
// global settings (binlog_format, binlog_row_metadata) or restarts it
// would break tests of other packages running at that moment (rows logged
// as statements stop their inputs; a restart drops their connections). So
// every test that uses the server holds a shared lock on a file named for
// its address for the rest of the test (MySQL takes it), and a test that
// changes the server holds it exclusively (MySQLExclusive): it waits for
// the others' tests to end, and theirs wait for it.
var mysqlHold struct {
	sync.Mutex
	f      *os.File
	shared int // holds of this process's tests
	excl   int
}

func mysqlLockFile(addr string) string {
	return filepath.Join(os.TempDir(), "dbus-test-mysql-"+strings.NewReplacer(":", "_", "/", "_").Replace(addr)+".lock")
}

// holdMySQL takes the lock for the rest of t (shared, or exclusive).
func holdMySQL(t testing.TB, addr string, exclusive bool) {
	t.Helper()
	h := &mysqlHold
	h.Lock()
	defer h.Unlock()
	if h.f == nil {
		f, err := os.OpenFile(mysqlLockFile(addr), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("test MariaDB lock: %v", err)
		}
		h.f = f
	}
	how := 0
	switch {
	case exclusive && h.excl == 0:
		how = syscall.LOCK_EX // converts a shared hold (not atomically: no deadlock)
	case !exclusive && h.excl == 0 && h.shared == 0:
		how = syscall.LOCK_SH
	}
	if how != 0 {
		if err := syscall.Flock(int(h.f.Fd()), how); err != nil {
			t.Fatalf("test MariaDB lock: %v", err)
		}
	}
	if exclusive {
		h.excl++
	} else {
		h.shared++
	}
	t.Cleanup(func() {
		h.Lock()
		defer h.Unlock()
		if exclusive {
			h.excl--
		} else {
			h.shared--
		}
		switch {
		case h.excl > 0:
		case h.shared > 0:
			if exclusive {
				syscall.Flock(int(h.f.Fd()), syscall.LOCK_SH)
			}
		default:
			syscall.Flock(int(h.f.Fd()), syscall.LOCK_UN)
		}
	})
}

// MySQLExclusive is MySQL for a test that changes the server's global
// settings or restarts it: no test of another package uses the server
// until it ends.
func MySQLExclusive(t testing.TB) (addr, user, password string) {
	t.Helper()
	addr, user, password = mysqlEnv(t)
	holdMySQL(t, addr, true)
	return addr, user, password
}
