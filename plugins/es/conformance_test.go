package es

import (
	"fmt"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
)

// TestESOutputConformance runs the engine's output conformance suite
// against the strict bulk server: every packet indexed once per orderly
// round (ids from the source position), the checkpoint at the last, and a
// restarted pipeline resumes after it.
func TestESOutputConformance(t *testing.T) {
	bs, srv := newBulkServer(t)
	reg := engine.NewRegistry()
	Register(reg)
	enginetest.TestOutput(t, enginetest.OutputCase{
		Registry: reg,
		Output:   fmt.Sprintf("class: ESOutput, urls: [%q], index: conformance, document: payload", srv.URL),
		Received: func(t testing.TB) map[int64]int {
			bs.mu.Lock()
			defer bs.mu.Unlock()
			got := map[int64]int{}
			for _, doc := range bs.docs["conformance"] {
				if seq, ok := doc["seq"].(float64); ok {
					got[int64(seq)]++
				}
			}
			// Each document was indexed once: a second attempt of the same
			// id would overwrite it unseen, so count indexing requests too.
			if bs.items != len(got) {
				t.Fatalf("%d documents indexed for %d distinct sequences: some were sent twice", bs.items, len(got))
			}
			return got
		},
	})
}
