package engine

import (
	"errors"
	"fmt"
	"strings"
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

// compile builds the DAG: edges from every match, then checks for
// dangling matches, cycles, unreachable outputs and inputs that feed
// nothing.
func compile(cfg *Config) (*graph, error) {
	g := &graph{byName: map[string]*node{}}
	for i, pc := range cfg.Plugins {
		n := &node{pc: pc, idx: i}
		g.nodes = append(g.nodes, n)
		g.byName[pc.Name] = n
	}
	var errs []error
	errf := func(pc *PluginConfig, format string, args ...any) {
		errs = append(errs, &ConfigError{File: cfg.File, Line: pc.Line, Msg: fmt.Sprintf(format, args...)})
	}
	for _, n := range g.nodes {
		if n.pc.Kind == KindInput {
			continue
		}
		seen := map[*node]bool{}
		for _, pat := range n.pc.Match {
			hit := 0
			for _, u := range g.nodes {
				if !matchName(pat, u.name()) {
					continue
				}
				if u == n {
					errf(n.pc, "%s: match %q selects the plugin itself (a cycle)", n.name(), pat)
					hit++
					continue
				}
				if u.pc.Kind == KindOutput {
					if pat == u.name() {
						errf(n.pc, "%s: match %q names an output; outputs feed nothing", n.name(), pat)
						hit++
					}
					continue
				}
				hit++
				if !seen[u] {
					seen[u] = true
					n.up = append(n.up, u)
					u.down = append(u.down, n)
				}
			}
			if hit == 0 {
				errf(n.pc, "%s: match %q selects no input or filter (dangling match)", n.name(), pat)
			}
		}
		if n.pc.DeadLetter != "" {
			n.dlq = g.byName[n.pc.DeadLetter]
		}
	}
	// Cycles among filters (inputs have no upstream, outputs no downstream).
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(g.nodes))
	var path []string
	var visit func(n *node) bool
	visit = func(n *node) bool {
		color[n.idx] = grey
		path = append(path, n.name())
		for _, d := range n.down {
			if color[d.idx] == grey {
				i := 0
				for j, name := range path {
					if name == d.name() {
						i = j
					}
				}
				errf(d.pc, "cycle in match graph: %s -> %s", strings.Join(path[i:], " -> "), d.name())
				return true
			}
			if color[d.idx] == white && visit(d) {
				return true
			}
		}
		path = path[:len(path)-1]
		color[n.idx] = black
		return false
	}
	for _, n := range g.nodes {
		if color[n.idx] == white && visit(n) {
			break
		}
	}
	// Dead-letter chains must be acyclic too.
	for _, n := range g.nodes {
		seen := map[*node]bool{n: true}
		for d := n.dlq; d != nil; d = d.dlq {
			if seen[d] {
				errf(n.pc, "%s: dead_letter chain loops back through %s", n.name(), d.name())
				break
			}
			seen[d] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Reachability: every output from an input (or as a dead-letter
	// target); every input and filter to an output.
	fromInput := map[*node]bool{}
	var fwd func(n *node)
	fwd = func(n *node) {
		if fromInput[n] {
			return
		}
		fromInput[n] = true
		for _, d := range n.down {
			fwd(d)
		}
		if n.dlq != nil {
			fwd(n.dlq)
		}
	}
	for _, n := range g.nodes {
		if n.pc.Kind == KindInput {
			fwd(n)
		}
	}
	toOutput := map[*node]bool{}
	var back func(n *node)
	back = func(n *node) {
		if toOutput[n] {
			return
		}
		toOutput[n] = true
		for _, u := range n.up {
			back(u)
		}
	}
	for _, n := range g.nodes {
		if n.pc.Kind == KindOutput {
			back(n)
		}
	}
	for _, n := range g.nodes {
		switch n.pc.Kind {
		case KindOutput:
			if !fromInput[n] {
				errf(n.pc, "output %q is unreachable: its match selects nothing fed by an input, and no plugin names it as dead_letter", n.name())
			}
		case KindFilter:
			if len(n.up) == 0 {
				errf(n.pc, "filter %q has no match: nothing feeds it", n.name())
			} else if !toOutput[n] {
				errf(n.pc, "%s %q feeds no output: add it to an output's match", n.pc.Kind, n.name())
			}
		default:
			if !toOutput[n] {
				errf(n.pc, "%s %q feeds no output: add it to an output's match", n.pc.Kind, n.name())
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return g, nil
}
