package engine

// The placement plan: which node runs in which goroutine. A pure step over
// the compiled DAG and what the instances can do, with table tests
// (plan_test.go); engine.New applies it. Keeping the decision in one place
// (it was split between compile and New) makes every rule visible:
//
//  1. An input runs in its own goroutine and has no inbox.
//  2. A filter with exactly one upstream is fused (operator chaining): it
//     runs in its upstream's goroutine, no ring. A filter with several
//     upstreams, or one that must be ticked (Ticker), gets its own
//     goroutine behind a ring.
//  3. An output is inline (runs in its single upstream's goroutine) when
//     output fusion is on (engine.fuse_outputs), it says its writes are
//     cheap (InlineOutput), it is synchronous, it is nobody's dead-letter
//     output, it has exactly one upstream, and that upstream feeds nothing
//     else. Otherwise it gets its own goroutine behind a ring.

// nodeCaps is what the plan needs to know of a plugin instance.
type nodeCaps struct {
	ticker bool // a Ticker filter: needs a goroutine to be ticked
	async  bool // an AsyncOutput
	inline bool // an InlineOutput whose Inline() is true
}

// placement says where a node runs.
type placement uint8

const (
	placeOwn    placement = iota // its own goroutine (behind a ring unless it is an input)
	placeFused                   // a filter in its upstream's goroutine
	placeInline                  // an output in its upstream's goroutine
)

func (p placement) String() string {
	switch p {
	case placeFused:
		return "fused"
	case placeInline:
		return "inline"
	}
	return "own"
}

// plan returns the placement of every node of g, indexed by node.idx.
func plan(g *graph, caps func(*node) nodeCaps, fuseOutputs bool) []placement {
	out := make([]placement, len(g.nodes))
	dlqTarget := map[*node]bool{}
	for _, n := range g.nodes {
		if n.dlq != nil {
			dlqTarget[n.dlq] = true
		}
	}
	for _, n := range g.nodes {
		c := caps(n)
		switch n.pc.Kind {
		case KindFilter:
			if len(n.up) == 1 && !c.ticker {
				out[n.idx] = placeFused
			}
		case KindOutput:
			if fuseOutputs && c.inline && !c.async && !dlqTarget[n] && len(n.up) == 1 && len(n.up[0].down) == 1 {
				out[n.idx] = placeInline
			}
		}
	}
	return out
}

// needsInbox reports whether a node with placement p gets a ring.
func needsInbox(n *node, p placement) bool {
	return n.pc.Kind != KindInput && p == placeOwn
}
