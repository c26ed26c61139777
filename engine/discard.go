package engine

import (
	"context"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// discardOutput acks everything at once: dry runs put it in place of
// outputs that cannot dry-run themselves.
type discardOutput struct{}

func (discardOutput) Write(context.Context, []*pack.Packet) error { return nil }

// Inline implements InlineOutput: discarding costs nothing.
func (discardOutput) Inline() bool { return true }

// nowNano is the wall clock in Unix nanoseconds (times shown to people).
func nowNano() int64 { return time.Now().UnixNano() }

// monoEpoch anchors monoNano.
var monoEpoch = time.Now()

// monoNano is a monotonic clock in nanoseconds since process start, for
// latencies on the hot path: one clock read where time.Now takes two.
func monoNano() int64 { return int64(time.Since(monoEpoch)) }
