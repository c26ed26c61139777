// Package dag compiles a pipeline's plugins into its DAG: edges from every
// match (names or globs), dead-letter links, and the checks that make a
// pipeline runnable (no dangling match, no cycle among filters or along
// dead-letter chains, every output reachable from an input, every input
// and filter feeding an output). It is a pure function of names, roles,
// matches and dead-letter names, with table tests; the engine turns its
// problems into config errors located at the plugin's line. It sits under
// engine/internal so that plugins cannot depend on it.
package dag

import (
	"fmt"
	"path"
	"strings"
)

// Role is a plugin's role in the DAG.
type Role uint8

// Roles.
const (
	Input Role = iota + 1
	Filter
	Output
)

func (r Role) String() string {
	switch r {
	case Input:
		return "input"
	case Filter:
		return "filter"
	case Output:
		return "output"
	}
	return "unknown"
}

// Plugin is one configured plugin as the DAG sees it.
type Plugin struct {
	Name       string
	Role       Role
	Match      []string // names or globs of upstream plugins (filters, outputs)
	DeadLetter string   // name of the dead-letter output, or ""
}

// Graph is a compiled DAG over the plugins given to Compile, by index.
type Graph struct {
	Up, Down   [][]int // match edges, in the order they were found
	DeadLetter []int   // dead-letter output of each plugin, or -1
}

// Problem is one reason the plugins do not form a runnable DAG, located at
// the plugin Plugin (an index).
type Problem struct {
	Plugin int
	Msg    string
}

// Match reports whether a match pattern selects name (exact or glob).
func Match(pattern, name string) bool {
	if pattern == name {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// Compile builds the DAG of ps: edges from every match, then checks for
// dangling matches, cycles, unreachable outputs and inputs that feed
// nothing. Names are unique (the parser checked). With problems, the
// graph is nil; problems of the edges are reported before those of
// reachability, which are checked only on a graph without the former.
func Compile(ps []Plugin) (*Graph, []Problem) {
	n := len(ps)
	g := &Graph{Up: make([][]int, n), Down: make([][]int, n), DeadLetter: make([]int, n)}
	byName := make(map[string]int, n)
	for i, p := range ps {
		byName[p.Name] = i
		g.DeadLetter[i] = -1
	}
	var probs []Problem
	errf := func(i int, format string, args ...any) {
		probs = append(probs, Problem{Plugin: i, Msg: fmt.Sprintf(format, args...)})
	}
	for i, p := range ps {
		if p.Role == Input {
			continue
		}
		seen := map[int]bool{}
		for _, pat := range p.Match {
			hit := 0
			for u, up := range ps {
				if !Match(pat, up.Name) {
					continue
				}
				if u == i {
					errf(i, "%s: match %q selects the plugin itself (a cycle)", p.Name, pat)
					hit++
					continue
				}
				if up.Role == Output {
					if pat == up.Name {
						errf(i, "%s: match %q names an output; outputs feed nothing", p.Name, pat)
						hit++
					}
					continue
				}
				hit++
				if !seen[u] {
					seen[u] = true
					g.Up[i] = append(g.Up[i], u)
					g.Down[u] = append(g.Down[u], i)
				}
			}
			if hit == 0 {
				errf(i, "%s: match %q selects no input or filter (dangling match)", p.Name, pat)
			}
		}
		if p.DeadLetter != "" {
			if d, ok := byName[p.DeadLetter]; ok {
				g.DeadLetter[i] = d
			}
		}
	}
	// Cycles among filters (inputs have no upstream, outputs no downstream).
	const (
		white = iota
		grey
		black
	)
	color := make([]int, n)
	var stack []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, i)
		for _, d := range g.Down[i] {
			if color[d] == grey {
				at := 0
				for j, s := range stack {
					if s == d {
						at = j
					}
				}
				names := make([]string, 0, len(stack)-at+1)
				for _, s := range stack[at:] {
					names = append(names, ps[s].Name)
				}
				errf(d, "cycle in match graph: %s -> %s", strings.Join(names, " -> "), ps[d].Name)
				return true
			}
			if color[d] == white && visit(d) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range ps {
		if color[i] == white && visit(i) {
			break
		}
	}
	// Dead-letter chains must be acyclic too.
	for i := range ps {
		seen := map[int]bool{i: true}
		for d := g.DeadLetter[i]; d >= 0; d = g.DeadLetter[d] {
			if seen[d] {
				errf(i, "%s: dead_letter chain loops back through %s", ps[i].Name, ps[d].Name)
				break
			}
			seen[d] = true
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	// Reachability: every output from an input (or as a dead-letter
	// target); every input and filter to an output.
	fromInput := make([]bool, n)
	var fwd func(i int)
	fwd = func(i int) {
		if fromInput[i] {
			return
		}
		fromInput[i] = true
		for _, d := range g.Down[i] {
			fwd(d)
		}
		if d := g.DeadLetter[i]; d >= 0 {
			fwd(d)
		}
	}
	for i, p := range ps {
		if p.Role == Input {
			fwd(i)
		}
	}
	toOutput := make([]bool, n)
	var back func(i int)
	back = func(i int) {
		if toOutput[i] {
			return
		}
		toOutput[i] = true
		for _, u := range g.Up[i] {
			back(u)
		}
	}
	for i, p := range ps {
		if p.Role == Output {
			back(i)
		}
	}
	for i, p := range ps {
		switch p.Role {
		case Output:
			if !fromInput[i] {
				errf(i, "output %q is unreachable: its match selects nothing fed by an input, and no plugin names it as dead_letter", p.Name)
			}
		case Filter:
			if len(g.Up[i]) == 0 {
				errf(i, "filter %q has no match: nothing feeds it", p.Name)
			} else if !toOutput[i] {
				errf(i, "%s %q feeds no output: add it to an output's match", p.Role, p.Name)
			}
		default:
			if !toOutput[i] {
				errf(i, "%s %q feeds no output: add it to an output's match", p.Role, p.Name)
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return g, nil
}
