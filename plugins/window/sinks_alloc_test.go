package window

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/valyala/bytebufferpool"
)

// TestWindowAlarmAlertBodyAllocsZero: an alert's webhook/stdout body is
// encoded into a pooled buffer without allocating (json.Marshal, the code
// before, allocated one body per alert), and is what json.Marshal writes.
func TestWindowAlarmAlertBodyAllocsZero(t *testing.T) {
	a := &Alert{Rule: "spike", Severity: "critical", Group: "shop/<eu>", Metric: "p99", Value: 12.5, Threshold: 10,
		Change: 0.25, Count: 7, WindowStart: "2026-12-05T10:00:00Z", WindowEnd: "2026-12-05T10:01:00Z"}
	want, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	if err := alertLine(buf, a); err != nil {
		t.Fatal(err)
	}
	if err := alertLine(buf, &Alert{Value: math.NaN()}); err == nil {
		t.Fatal("a NaN value encoded without error")
	}
	if err := alertLine(buf, a); err != nil {
		t.Fatal(err)
	}
	if string(buf.B) != string(want)+"\n" {
		t.Fatalf("alert line %q, want %q", buf.B, want)
	}
	if testenv.Race() {
		t.Log("race detector on: sync.Pool drops items, allocation counts are not meaningful")
		return
	}
	if n := testing.AllocsPerRun(500, func() { alertLine(buf, a) }); n != 0 {
		t.Fatalf("alert body: %v allocs, want 0", n)
	}
	if old := testing.AllocsPerRun(500, func() { json.Marshal(a) }); old < 1 {
		t.Fatalf("baseline json.Marshal allocated %v: the comparison is void", old)
	}
}
