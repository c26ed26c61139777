package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClusterFailedResourcesNotCounted: resources that fail on their
// owner are shown as failed (dbc resources; before: "running") and the
// leader marks them failed in the assignment, so that they do not count
// toward the owner's share (the share arithmetic is table-tested in
// cluster/assign); the healthy ones split evenly.
func TestClusterFailedResourcesNotCounted(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	for i := 0; i < 2; i++ {
		// Invalid merged config: the member cannot build it.
		if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: fmt.Sprintf("bad-%d", i), Input: "src", Config: map[string]any{"rate": "fast"}}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitFor("a reports both failing", 10*time.Second, func() bool {
		rs, err := h.admin.Resources(h.cluster)
		if err != nil {
			return false
		}
		n := 0
		for _, r := range rs {
			if r.Failed != "" && r.Owner == "a" {
				n++
			}
		}
		return n == 2
	})
	// The leader takes them out of a's share (the assignment marks them).
	h.waitFor("the assignment marks both failed", 10*time.Second, func() bool {
		p, err := h.admin.existing(h.cluster)
		if err != nil {
			return false
		}
		asg, err := h.admin.assignment(p)
		if err != nil {
			return false
		}
		n := 0
		for _, r := range asg.State.Resources {
			if r.Failed {
				n++
			}
		}
		return n == 2
	})
	h.start(h.config("b"), Options{})
	h.addResources(4, "src")
	good := func() map[string]int {
		out := map[string]int{}
		for id, o := range h.runningBy() {
			if strings.HasPrefix(id, "res-") {
				out[o]++
			}
		}
		return out
	}
	h.waitFor("4 healthy resources 2/2", 15*time.Second, func() bool {
		c := good()
		return c["a"] == 2 && c["b"] == 2
	})
	// What dbc resources shows ("failed: <why>" from Failed; the
	// command lives in cmd/dbc).
	rs, err := h.admin.Resources(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if strings.HasPrefix(r.ID, "bad-") && r.Failed == "" {
			t.Errorf("a failing resource not marked failed: %+v", r)
		}
		if strings.HasPrefix(r.ID, "res-") && (r.Failed != "" || r.Owner == "") {
			t.Errorf("a healthy resource not running: %+v", r)
		}
	}
	_ = a
}
