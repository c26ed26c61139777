package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// TestClusterFencingRemoveReAdd: a resource removed and added again under
// the same id must not reset its fencing token. The checkpoint store of
// the first incarnation (what a frozen owner still holds) is fenced after
// the re-add: owners/<id> is kept as a tombstone, so its znode version is
// never reused (DESIGN.md invariant 11). Before the fix the owner record
// was deleted and created again at version 0, and the stale write landed
// (the checkpoint going 1610 -> 988).
func TestClusterFencingRemoveReAdd(t *testing.T) {
	h := newHarness(t)
	a := h.start(h.config("a"), Options{})
	h.addResources(1, "src")
	const id = "res-00"
	h.waitFor("res-00 on a", 10*time.Second, func() bool { return h.runningBy()[id] == "a" })
	a.m.mu.Lock()
	stale := a.m.stores[id]
	a.m.mu.Unlock()
	h.waitFor("a first checkpoint", 10*time.Second, func() bool { return stale.Stats().Saved > 0 })
	if err := h.admin.RemoveResource(h.cluster, id, false); err != nil {
		t.Fatal(err)
	}
	h.waitFor("res-00 stopped", 10*time.Second, func() bool { return len(a.m.Running()) == 0 })
	if err := h.admin.AddResource(h.cluster, ResourceSpec{ID: id, Input: "src", Config: map[string]any{"resource": id}}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("res-00 on a again", 10*time.Second, func() bool {
		a.m.mu.Lock()
		defer a.m.mu.Unlock()
		return h.runningBy()[id] == "a" && a.m.stores[id] != stale && a.m.stores[id].Stats().Saved > 0
	})
	cps, err := h.admin.Checkpoints(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	before := cps[id]
	err = stale.Save(map[string]engine.Checkpoint{"src/": {Offset: 1}})
	if !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("a checkpoint write of the removed incarnation was not fenced after the re-add: err %v", err)
	}
	cps, err = h.admin.Checkpoints(h.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if got := cps[id]; got.Epoch != before.Epoch || got.Checkpoints["src/"].Offset < before.Checkpoints["src/"].Offset {
		t.Fatalf("checkpoint of %s went from epoch %d offset %d to epoch %d offset %d", id,
			before.Epoch, before.Checkpoints["src/"].Offset, got.Epoch, got.Checkpoints["src/"].Offset)
	}
}
