package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
)

// EngineRunner runs each resource in its own engine.Engine built from a
// one-input pipeline config: the resource's input (its config merged with
// the resource's config, credential references resolved locally) plus the
// filters and outputs reachable from it. Starting a resource is New+Run
// with the resource's ZooKeeper-backed Store; stopping it cancels Run's
// context, which drains and commits. Resources are isolated from each
// other and the engine needs no run-time reconfiguration.
type EngineRunner struct {
	cfg   *engine.Config
	reg   *engine.Registry
	creds *Credentials
	log   *slog.Logger
	live  *liveEngines // engines running now, shared with WithConfig's runners (admin API)
}

// NewEngineRunner returns a runner for the pipeline cfg (parsed with reg).
func NewEngineRunner(cfg *engine.Config, reg *engine.Registry, creds *Credentials, log *slog.Logger) *EngineRunner {
	if creds == nil {
		creds = &Credentials{vals: map[string]string{}}
	}
	if log == nil {
		log = slog.Default()
	}
	return &EngineRunner{cfg: cfg, reg: reg, creds: creds, log: log, live: &liveEngines{}}
}

// DistributedInputs returns the names of the config's distributed inputs.
func (r *EngineRunner) DistributedInputs() []string {
	var out []string
	for _, pc := range r.cfg.Plugins {
		if pc.Kind == engine.KindInput && pc.Spec.Distributed {
			out = append(out, pc.Name)
		}
	}
	return out
}

// Check implements Runner: the resource's input must be a distributed
// input of the config, and the merged config must be valid.
func (r *EngineRunner) Check(spec ResourceSpec) error {
	_, err := r.Config(spec)
	return err
}

// Run implements Runner.
func (r *EngineRunner) Run(ctx context.Context, spec ResourceSpec, store engine.CheckpointStore) error {
	cfg, err := r.Config(spec)
	if err != nil {
		return err
	}
	opts := engine.Options{Registry: r.reg, Store: store, Logger: r.log.With("resource", spec.ID)}
	if l, ok := store.(interface{ LeaseValid() bool }); ok {
		// The data path stops writing once the member's lease ran out.
		opts.Lease = l.LeaseValid
	}
	e, err := engine.New(cfg, opts)
	if err != nil {
		return fmt.Errorf("resource %s: %w", spec.ID, err)
	}
	r.live.add(spec.ID, e)
	defer r.live.remove(spec.ID, e)
	return e.Run(ctx)
}

// Config returns the one-input pipeline config of spec.
func (r *EngineRunner) Config(spec ResourceSpec) (*engine.Config, error) {
	_, cfg, err := r.effective(spec)
	return cfg, err
}

// effective returns the one-input pipeline config of spec, as YAML and
// parsed.
func (r *EngineRunner) effective(spec ResourceSpec) ([]byte, *engine.Config, error) {
	var pc *engine.PluginConfig
	for _, p := range r.cfg.Plugins {
		if p.Kind == engine.KindInput && p.Name == spec.Input {
			pc = p
		}
	}
	if pc == nil {
		return nil, nil, fmt.Errorf("resource %s: input %q is not in this member's config %s (distributed inputs here: %s)",
			spec.ID, spec.Input, r.cfg.File, listOrNone(r.DistributedInputs()))
	}
	if !pc.Spec.Distributed {
		return nil, nil, fmt.Errorf("resource %s: input %q (class %s) does not accept cluster resources: %s is not a distributed plugin",
			spec.ID, spec.Input, pc.Class, pc.Class)
	}
	for k := range spec.Config {
		switch k {
		case "name", "class", "match", "disabled":
			return nil, nil, fmt.Errorf("resource %s: config key %q is reserved and cannot be set by a resource", spec.ID, k)
		}
	}
	for _, f := range pc.Spec.Fields {
		if _, ok := spec.Config[f.Name]; f.PerResource && !ok {
			return nil, nil, fmt.Errorf("resource %s: input %q (class %s): set %s in the resource's config (dbc resources add -config '{\"%s\": ...}'): every resource needs its own value",
				spec.ID, spec.Input, pc.Class, f.Name, f.Name)
		}
	}
	merged, err := r.creds.expandAny(map[string]any(spec.Config))
	if err != nil {
		return nil, nil, fmt.Errorf("resource %s: %w", spec.ID, err)
	}
	raw, err := r.buildYAML(map[string]map[string]any{spec.Input: merged.(map[string]any)})
	if err != nil {
		return nil, nil, fmt.Errorf("resource %s: %w", spec.ID, err)
	}
	cfg, err := engine.Parse(fmt.Sprintf("%s [resource %s]", r.cfg.File, spec.ID), raw, r.reg)
	if err != nil {
		return nil, nil, fmt.Errorf("resource %s: config of input %q with the resource's settings is invalid: %w", spec.ID, spec.Input, err)
	}
	return raw, cfg, nil
}

// WithConfig implements ConfigurableRunner: a runner for the pipeline
// config data (a pushed cluster config named file), which must parse
// with the runner's registry, keep at least one distributed input, and
// whose local (non-distributed) pipeline, if any, must build. A cluster
// section in data is ignored: each member keeps its own.
func (r *EngineRunner) WithConfig(file string, data []byte) (Runner, error) {
	cfg, err := engine.Parse(file, data, r.reg)
	if err != nil {
		return nil, err
	}
	next := &EngineRunner{cfg: cfg, reg: r.reg, creds: r.creds, log: r.log, live: r.live}
	if len(next.DistributedInputs()) == 0 {
		return nil, fmt.Errorf("%s: no distributed input (an input whose plugin accepts resources): a cluster config needs one", file)
	}
	local, err := next.LocalConfig()
	if err != nil {
		return nil, err
	}
	if local != nil {
		if err := buildCheck(local); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// Fingerprint implements ConfigurableRunner: a hash of spec's effective
// pipeline config (credentials resolved, so only the hash is kept).
func (r *EngineRunner) Fingerprint(spec ResourceSpec) (string, error) {
	raw, _, err := r.effective(spec)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// Validate implements ConfigurableRunner: spec's pipeline parses and
// every plugin's constructor accepts its config.
func (r *EngineRunner) Validate(spec ResourceSpec) error {
	_, cfg, err := r.effective(spec)
	if err != nil {
		return err
	}
	if err := buildCheck(cfg); err != nil {
		return fmt.Errorf("resource %s: %w", spec.ID, err)
	}
	return nil
}

// buildCheck runs the constructor of every plugin of cfg (as engine.New
// does, so that checks made only by constructors are caught) and closes
// what it built; nothing is started.
func buildCheck(cfg *engine.Config) error {
	var errs []error
	for _, pc := range cfg.Plugins {
		var inst any
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("constructor panicked: %v", p)
				}
			}()
			switch pc.Kind {
			case engine.KindInput:
				inst, err = pc.Spec.NewInput(pc.Conf)
			case engine.KindFilter:
				inst, err = pc.Spec.NewFilter(pc.Conf)
			case engine.KindOutput:
				inst, err = pc.Spec.NewOutput(pc.Conf)
			}
		}()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s (%s): %w", cfg.File, pc.Line, pc.Name, pc.Class, err))
			continue
		}
		if c, ok := inst.(engine.Closer); ok {
			c.Close(context.Background())
		}
	}
	return errors.Join(errs...)
}

// PipelineConfig returns the runner's whole pipeline config.
func (r *EngineRunner) PipelineConfig() *engine.Config { return r.cfg }

// LocalConfig returns the pipeline of the config's non-distributed
// inputs (they run on every member), or nil when there are none.
func (r *EngineRunner) LocalConfig() (*engine.Config, error) {
	keep := map[string]map[string]any{}
	for _, pc := range r.cfg.Plugins {
		if pc.Kind == engine.KindInput && !pc.Spec.Distributed {
			keep[pc.Name] = nil
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	raw, err := r.buildYAML(keep)
	if err != nil {
		return nil, err
	}
	return engine.Parse(r.cfg.File+" [local inputs]", raw, r.reg)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// buildYAML derives a config from the original file: only the inputs in
// keep (with their overrides merged), the filters and outputs reachable
// from them (and their dead-letter outputs), match lists pruned of
// patterns that select nothing kept, and only the engine block besides.
func (r *EngineRunner) buildYAML(keep map[string]map[string]any) ([]byte, error) {
	// Reachability on the parsed config.
	kept := map[string]bool{}
	for name := range keep {
		kept[name] = true
	}
	for changed := true; changed; {
		changed = false
		for _, pc := range r.cfg.Plugins {
			if pc.Kind == engine.KindInput || kept[pc.Name] {
				continue
			}
			for _, pat := range pc.Match {
				for up := range kept {
					if matches(pat, up) {
						kept[pc.Name] = true
						changed = true
					}
				}
			}
		}
		for _, pc := range r.cfg.Plugins {
			if kept[pc.Name] && pc.DeadLetter != "" && !kept[pc.DeadLetter] {
				kept[pc.DeadLetter] = true
				changed = true
			}
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(r.cfg.Raw, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("cannot re-read config %s: %v", r.cfg.File, err)
	}
	root := doc.Content[0]
	out := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "engine":
			out.Content = append(out.Content, k, v)
		case "inputs", "filters", "outputs":
			seq := &yaml.Node{Kind: yaml.SequenceNode}
			for _, item := range v.Content {
				name := mapGet(item, "name")
				if name == nil || !kept[name.Value] {
					continue
				}
				if k.Value == "inputs" {
					if err := mergeInto(item, keep[name.Value]); err != nil {
						return nil, err
					}
				} else {
					pruneMatch(item, kept)
				}
				seq.Content = append(seq.Content, item)
			}
			if len(seq.Content) > 0 {
				out.Content = append(out.Content, k, seq)
			}
		}
	}
	return yaml.Marshal(out)
}

func matches(pat, name string) bool {
	if pat == name {
		return true
	}
	ok, err := path.Match(pat, name)
	return err == nil && ok
}

func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mergeInto sets every key of over in the mapping node m.
func mergeInto(m *yaml.Node, over map[string]any) error {
	keys := make([]string, 0, len(over))
	for k := range over {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v yaml.Node
		if err := v.Encode(integral(over[k])); err != nil {
			return fmt.Errorf("resource config key %q: %v", k, err)
		}
		if old := mapGet(m, k); old != nil {
			*old = v
			continue
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &v)
	}
	return nil
}

// integral turns whole float64 values (JSON numbers of a resource
// config) into int64, recursively: YAML would write 1162267 as
// 1.162267e+06, which an int field refuses.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = integral(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = integral(e)
		}
		return out
	}
	return v
}

// pruneMatch drops match patterns that select nothing kept.
func pruneMatch(m *yaml.Node, kept map[string]bool) {
	mv := mapGet(m, "match")
	if mv == nil {
		return
	}
	hit := func(pat string) bool {
		for name := range kept {
			if matches(pat, name) {
				return true
			}
		}
		return false
	}
	switch mv.Kind {
	case yaml.ScalarNode:
		if !hit(mv.Value) {
			*mv = yaml.Node{Kind: yaml.SequenceNode}
		}
	case yaml.SequenceNode:
		var keep []*yaml.Node
		for _, e := range mv.Content {
			if hit(e.Value) {
				keep = append(keep, e)
			}
		}
		mv.Content = keep
	}
}
