package engine

import "github.com/dbus-project/dbus/engine/internal/plan"

// The placement plan (which node runs in which goroutine) is the pure step
// in engine/internal/plan, with its table tests there; this file only
// describes the compiled graph and the instances to it.

// nodeCaps is what the plan needs to know of a plugin instance.
type nodeCaps struct {
	ticker bool // a Ticker filter: needs a goroutine to be ticked
	async  bool // an AsyncOutput
	inline bool // an InlineOutput whose Inline() is true
}

var planRoles = map[Kind]plan.Role{KindInput: plan.Input, KindFilter: plan.Filter, KindOutput: plan.Output}

// describe returns g's nodes as the plan sees them, indexed by node.idx;
// caps, when not nil, tells what each instance can do.
func describe(g *graph, caps func(*node) nodeCaps) []plan.Node {
	nodes := make([]plan.Node, len(g.nodes))
	for _, n := range g.nodes {
		var c nodeCaps
		if caps != nil {
			c = caps(n)
		}
		pn := plan.Node{Role: planRoles[n.pc.Kind], DeadLetter: -1, Ticker: c.ticker, Async: c.async, Inline: c.inline}
		for _, u := range n.up {
			pn.Up = append(pn.Up, u.idx)
		}
		for _, d := range n.down {
			pn.Down = append(pn.Down, d.idx)
		}
		if n.dlq != nil {
			pn.DeadLetter = n.dlq.idx
		}
		nodes[n.idx] = pn
	}
	return nodes
}

// placeNodes returns the placement of every node of g, indexed by node.idx.
func placeNodes(g *graph, caps func(*node) nodeCaps, fuseOutputs bool) []plan.Placement {
	return plan.Place(describe(g, caps), fuseOutputs)
}
