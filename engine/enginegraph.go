package engine

import "sort"

// Graph returns the engine's edges (match and dead_letter), sorted by
// From then To: what Supervisor.Graph returns for one engine. An admin
// view of a single engine (a cluster member's resource) serves it.
func (e *Engine) Graph() []Edge {
	out := e.appendEdges(nil)
	sortEdges(out)
	return out
}

// appendEdges appends the engine's match and dead_letter edges to out.
func (e *Engine) appendEdges(out []Edge) []Edge {
	for _, n := range e.g.nodes {
		for _, d := range n.down {
			out = append(out, Edge{From: n.name(), To: d.name(), Kind: "match"})
		}
		if n.dlq != nil {
			out = append(out, Edge{From: n.name(), To: n.dlq.name(), Kind: "dead_letter"})
		}
	}
	return out
}

func sortEdges(out []Edge) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
}
