package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/go-zookeeper/zk"
)

// Store is the engine.CheckpointStore of one resource held at one epoch.
//
// Checkpoints live in the znode checkpoints/<resource> (one JSON record
// for every stream of the resource). Every Save is a ZooKeeper multi:
// check(owners/<resource>, version read when the resource was started)
// + write(checkpoints/<resource>). The leader rewrites owners/<resource>
// whenever it grants the resource, so once the resource was granted again
// the check fails and Save returns engine.ErrFenced: an old owner never
// advances the checkpoint. Each successful save is mirrored to a local
// file; Load falls back to it when ZooKeeper cannot be reached.
//
// Safe for concurrent use.
type Store struct {
	s            *session
	p            paths
	id           string
	member       string
	epoch        uint64
	ownerVersion int32
	sid          int64             // session the resource was started on (its lease)
	local        *engine.FileStore // nil: no local copy
	log          *slog.Logger

	mu sync.Mutex
	// Guarded by mu.
	loaded bool
	cps    map[string]engine.Checkpoint

	saved  atomic.Int64 // successful saves
	fenced atomic.Int64 // saves refused by fencing
	failed atomic.Int64 // saves failed for other reasons (ZooKeeper unreachable)
}

func newStore(s *session, p paths, id, member string, epoch uint64, ownerVersion int32, local *engine.FileStore, log *slog.Logger) *Store {
	_, sid, _ := s.status()
	return &Store{s: s, p: p, id: id, member: member, epoch: epoch, ownerVersion: ownerVersion, sid: sid, local: local, log: log}
}

// LeaseValid reports whether the member's ZooKeeper lease for the session
// this resource was started on has not run out (engine.Options.Lease):
// while it holds, the session cannot have expired and the resource cannot
// have been granted to another member after a session loss. Called per
// output batch: atomic loads and a monotonic clock read, no allocation.
func (st *Store) LeaseValid() bool { return st.s.leaseValid(st.sid) }

// Load implements engine.CheckpointStore.
func (st *Store) Load(key string) (engine.Checkpoint, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded {
		if err := st.loadLocked(); err != nil {
			if !isConnErr(err) || st.local == nil {
				return engine.Checkpoint{}, false, err
			}
			st.log.Warn("ZooKeeper unreachable: reading the local copy of the checkpoint", "resource", st.id, "err", err)
			return st.local.Load(key)
		}
	}
	cp, ok := st.cps[key]
	return cp, ok, nil
}

func (st *Store) loadLocked() error {
	var rec CheckpointRecord
	_, err := st.s.getJSON(st.p.checkpoint(st.id), &rec)
	switch {
	case errors.Is(err, zk.ErrNoNode):
	case err != nil:
		return fmt.Errorf("load checkpoint of resource %s from %s: %w", st.id, st.p.checkpoint(st.id), err)
	}
	st.cps = rec.Checkpoints
	if st.cps == nil {
		st.cps = map[string]engine.Checkpoint{}
	}
	st.loaded = true
	return nil
}

// Save implements engine.CheckpointStore.
func (st *Store) Save(cps map[string]engine.Checkpoint) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	// Fail fast while the session is not connected: a request would wait
	// for the reconnection, and a member in doubt must stop promptly.
	if state, _, _ := st.s.status(); state != zk.StateHasSession {
		st.failed.Add(1)
		return fmt.Errorf("checkpoint of resource %s not saved: ZooKeeper session is %s (the data is read again after restart, never lost)", st.id, state)
	}
	if !st.loaded {
		if err := st.loadLocked(); err != nil {
			st.failed.Add(1)
			return err
		}
	}
	next := maps.Clone(st.cps)
	maps.Copy(next, cps)
	data := mustJSON(CheckpointRecord{Member: st.member, Epoch: st.epoch, Time: time.Now().UTC(), Checkpoints: next})
	check := &zk.CheckVersionRequest{Path: st.p.owner(st.id), Version: st.ownerVersion}
	resps, err := st.s.conn.Multi(check, &zk.SetDataRequest{Path: st.p.checkpoint(st.id), Data: data, Version: -1})
	i, err := multiErr(resps, err)
	if i == 1 && errors.Is(err, zk.ErrNoNode) {
		resps, err = st.s.conn.Multi(check, &zk.CreateRequest{Path: st.p.checkpoint(st.id), Data: data, Acl: st.s.acl})
		i, err = multiErr(resps, err)
	}
	if err != nil {
		if i == 0 && (errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode)) {
			st.fenced.Add(1)
			st.s.fencedTotal.Add(1)
			return fmt.Errorf("%w: resource %s was granted again since %s started it at epoch %d (%s changed)",
				engine.ErrFenced, st.id, st.member, st.epoch, st.p.owner(st.id))
		}
		st.failed.Add(1)
		return fmt.Errorf("save checkpoint of resource %s to %s: %w", st.id, st.p.checkpoint(st.id), err)
	}
	st.cps = next
	st.saved.Add(1)
	if st.local != nil {
		if err := st.local.Save(cps); err != nil {
			st.log.Warn("local checkpoint copy not written", "resource", st.id, "err", err)
		}
	}
	return nil
}

// Close implements engine.CheckpointStore.
func (st *Store) Close() error { return nil }

// StoreStats counts the outcomes of Save.
type StoreStats struct {
	Saved, Fenced, Failed int64
}

// Stats returns the store's counters.
func (st *Store) Stats() StoreStats {
	return StoreStats{Saved: st.saved.Load(), Fenced: st.fenced.Load(), Failed: st.failed.Load()}
}

// decodeCheckpointRecord parses a checkpoints/<id> znode.
func decodeCheckpointRecord(data []byte) (CheckpointRecord, error) {
	var rec CheckpointRecord
	if len(data) == 0 {
		return rec, nil
	}
	err := json.Unmarshal(data, &rec)
	return rec, err
}
