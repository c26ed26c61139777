package testenv

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestEnvEventuallyWaitsForCondition(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(30 * time.Millisecond)
		n.Store(1)
	}()
	Eventually(t, 5*time.Second, func() bool { return n.Load() == 1 }, "flag never set")
}

func TestEnvWaitForGivesUp(t *testing.T) {
	start := time.Now()
	if WaitFor(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("WaitFor reported a condition that never held")
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("WaitFor gave up before its deadline")
	}
}

func TestEnvScale(t *testing.T) {
	t.Setenv("DBUS_TEST_TIMEOUT_SCALE", "2.5")
	if got := Scaled(time.Second); got != 2500*time.Millisecond {
		t.Fatalf("Scaled = %v", got)
	}
}

// TestEngineTestMySQLLock: MySQL holds the test server shared and
// MySQLExclusive exclusively, as another process sees it (a second open
// file description of the lock file), and both are released when the
// test ends.
func TestEngineTestMySQLLock(t *testing.T) {
	addr := fmt.Sprintf("lock-test-%d:1", os.Getpid())
	t.Setenv(EnvMySQLAddr, addr)
	other, err := os.OpenFile(mysqlLockFile(addr), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(other.Name())
	defer other.Close()
	try := func(how int) bool {
		if err := syscall.Flock(int(other.Fd()), how|syscall.LOCK_NB); err != nil {
			return false
		}
		syscall.Flock(int(other.Fd()), syscall.LOCK_UN)
		return true
	}
	t.Run("shared", func(t *testing.T) {
		MySQL(t)
		MySQL(t) // a second hold in the same test
		if !try(syscall.LOCK_SH) || try(syscall.LOCK_EX) {
			t.Fatal("a shared hold must admit other shared holds and keep out an exclusive one")
		}
		t.Run("exclusive inside", func(t *testing.T) {
			MySQLExclusive(t)
			if try(syscall.LOCK_SH) {
				t.Fatal("an exclusive hold admitted a shared one")
			}
		})
		if !try(syscall.LOCK_SH) || try(syscall.LOCK_EX) {
			t.Fatal("after the exclusive hold ended the shared one must be back")
		}
	})
	if !try(syscall.LOCK_EX) {
		t.Fatal("the lock is still held after the tests ended")
	}
}
