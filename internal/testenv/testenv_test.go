package testenv

import (
	"sync/atomic"
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
