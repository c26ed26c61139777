package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
)

// ConfigurableRunner is a Runner whose pipeline config can be replaced by
// a config pushed to the cluster (dbc config push). EngineRunner is one.
type ConfigurableRunner interface {
	Runner
	// WithConfig validates the pushed config data (named file in errors)
	// and returns a runner for it; the receiver is left unchanged.
	WithConfig(file string, data []byte) (Runner, error)
	// Fingerprint identifies spec's effective config: on reload, a
	// running resource is restarted iff its fingerprint changed.
	Fingerprint(spec ResourceSpec) (string, error)
	// Validate checks that spec can run with this runner's config
	// (every plugin's constructor accepts its settings).
	Validate(spec ResourceSpec) error
}

// syncConfig applies the newest pushed cluster config once: the config
// znode (watched) holds the newest version's number. A version that
// fails validation is logged and published in the member znode
// (ConfigError), and the member keeps running what it runs.
func (m *Member) syncConfig() error {
	data, _, err := m.w.get(m.p.config())
	if err != nil {
		return fmt.Errorf("read %s: %w", m.p.config(), err)
	}
	var cv ConfigVersion
	if len(data) > 0 {
		if err := json.Unmarshal(data, &cv); err != nil {
			if m.configSeen != -1 {
				m.log.Error("config znode holds invalid JSON: pushed configs ignored until the next push", "znode", m.p.config(), "err", err)
				m.configSeen = -1
			}
			return nil
		}
	}
	if cv.Version <= m.configSeen {
		return nil
	}
	raw, _, err := m.s.conn.Get(m.p.configVersion(cv.Version))
	if err != nil {
		if errors.Is(err, zk.ErrNoNode) {
			m.log.Error("pushed config version missing", "version", cv.Version, "znode", m.p.configVersion(cv.Version))
			m.configSeen = cv.Version
			return nil
		}
		return fmt.Errorf("read cluster config v%d: %w", cv.Version, err)
	}
	inputs, err := m.resourceInputs()
	if err != nil {
		return err
	}
	m.configSeen = cv.Version
	if m.applyConfig(cv.Version, raw, inputs) || m.configV != 0 {
		return nil
	}
	// A member that never applied a pushed config (it just joined) falls
	// back to the newest version it accepts, which is what the members
	// that rejected the newest one run.
	for v := cv.Version - 1; v >= 1; v-- {
		raw, _, err := m.s.conn.Get(m.p.configVersion(v))
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return fmt.Errorf("read cluster config v%d: %w", v, err)
		}
		errNewest := m.configErr
		if m.applyConfig(v, raw, inputs) {
			m.configErr = errNewest
			m.publish()
			return nil
		}
		m.configErr = errNewest
	}
	m.publish()
	return nil
}

// resourceInputs returns one registered resource per input name in use.
func (m *Member) resourceInputs() (map[string]ResourceSpec, error) {
	ids, _, err := m.s.conn.Children(m.p.resources())
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	sort.Strings(ids)
	out := map[string]ResourceSpec{}
	for _, id := range ids {
		var spec ResourceSpec
		if _, err := m.s.getJSON(m.p.resource(id), &spec); err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return nil, fmt.Errorf("read resource %s: %w", id, err)
		}
		spec.ID = id
		if _, ok := out[spec.Input]; !ok {
			out[spec.Input] = spec
		}
	}
	return out, nil
}

// applyConfig validates config version v and, when valid, switches the
// member to it: resources started from now on use it, and every running
// resource whose effective config changed is stopped (the next sync
// starts it again with the new config, from its checkpoint, at the same
// epoch). Resources whose effective config did not change keep running.
// It reports whether v was applied.
func (m *Member) applyConfig(v int, data []byte, inputs map[string]ResourceSpec) (applied bool) {
	defer m.publish()
	name := fmt.Sprintf("cluster %s config v%d", m.cfg.Name, v)
	reject := func(err error) {
		m.configErr = fmt.Sprintf("v%d rejected: %v", v, err)
		m.log.Error("pushed cluster config rejected: running resources untouched", "version", v, "running_version", m.configV, "err", err)
	}
	cr, ok := m.runner.(ConfigurableRunner)
	if !ok {
		reject(fmt.Errorf("this member's runner (%T) cannot change its config", m.runner))
		return false
	}
	next, err := cr.WithConfig(name, data)
	if err != nil {
		reject(err)
		return false
	}
	nc, ok := next.(ConfigurableRunner)
	if !ok {
		reject(fmt.Errorf("runner %T returned by WithConfig cannot change its config again", next))
		return false
	}
	// Every registered resource must find its input (so that every member
	// judges a config alike), every running resource must be able to run
	// with the new config, and the ones whose pipeline changes must build.
	var errs []error
	for _, in := range sortedKeys(inputs) {
		if err := nc.Check(inputs[in]); err != nil {
			errs = append(errs, err)
		}
	}
	var restart []*slot
	unchanged := 0
	for _, id := range sortedKeys(m.slots) {
		sl := m.slots[id]
		select {
		case <-sl.running:
		default:
			restart = append(restart, sl) // still starting with the old runner
			continue
		}
		fp, err := nc.Fingerprint(sl.spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if fp == sl.fp {
			unchanged++
			continue
		}
		if err := nc.Validate(sl.spec); err != nil {
			errs = append(errs, err)
			continue
		}
		restart = append(restart, sl)
	}
	if len(errs) > 0 {
		reject(errors.Join(errs...))
		return false
	}
	if m.opts.OnConfig != nil {
		if err := m.opts.OnConfig(next); err != nil {
			reject(err)
			return false
		}
	}
	m.runner, m.configV, m.configErr = next, v, ""
	for _, sl := range restart {
		m.stopSlot(sl, fmt.Sprintf("cluster config v%d changed its pipeline", v))
	}
	m.log.Info("pushed cluster config applied", "version", v, "restarted", len(restart), "unchanged", unchanged)
	return true
}
