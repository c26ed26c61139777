package engine

import (
	"errors"

	"github.com/dbus-project/dbus/engine/internal/dag"
)

// node is one plugin in the compiled DAG.
type node struct {
	pc   *PluginConfig
	idx  int
	up   []*node
	down []*node
	// dlq is the dead-letter output of a filter or output, or nil.
	dlq *node
	// fused: a filter running in its upstream's goroutine (operator
	// chaining); inline: an output running in its single upstream's
	// goroutine. Both set by New from plan (plan.go).
	fused  bool
	inline bool
}

func (n *node) name() string { return n.pc.Name }

// graph is the static DAG compiled from the config.
type graph struct {
	nodes  []*node
	byName map[string]*node
}

// compileCheck validates the DAG of cfg.
func compileCheck(cfg *Config) error {
	_, err := compile(cfg)
	return err
}

var dagRoles = map[Kind]dag.Role{KindInput: dag.Input, KindFilter: dag.Filter, KindOutput: dag.Output}

// compile builds the DAG of cfg (engine/internal/dag: edges from every
// match, checks for dangling matches, cycles, unreachable outputs and
// inputs that feed nothing), each problem located at its plugin's line.
func compile(cfg *Config) (*graph, error) {
	ps := make([]dag.Plugin, len(cfg.Plugins))
	for i, pc := range cfg.Plugins {
		ps[i] = dag.Plugin{Name: pc.Name, Role: dagRoles[pc.Kind], Match: pc.Match, DeadLetter: pc.DeadLetter}
	}
	dg, probs := dag.Compile(ps)
	if len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = &ConfigError{File: cfg.File, Line: cfg.Plugins[p.Plugin].Line, Msg: p.Msg}
		}
		return nil, errors.Join(errs...)
	}
	g := &graph{byName: map[string]*node{}}
	for i, pc := range cfg.Plugins {
		n := &node{pc: pc, idx: i}
		g.nodes = append(g.nodes, n)
		g.byName[pc.Name] = n
	}
	for i, n := range g.nodes {
		for _, u := range dg.Up[i] {
			n.up = append(n.up, g.nodes[u])
		}
		for _, d := range dg.Down[i] {
			n.down = append(n.down, g.nodes[d])
		}
		if d := dg.DeadLetter[i]; d >= 0 {
			n.dlq = g.nodes[d]
		}
	}
	return g, nil
}
