package plan

// Role is a node's role in the DAG.
type Role uint8

// Roles.
const (
	Input Role = iota + 1
	Filter
	Output
)

// Node is what the plan needs to know of one node of the compiled DAG:
// its role, its edges (indexes into the slice given to Place) and what its
// plugin instance can do.
type Node struct {
	Role Role
	Up   []int // upstream nodes
	Down []int // downstream nodes (match edges only)
	// DeadLetter is the index of this node's dead-letter output, or -1.
	DeadLetter int
	Ticker     bool // a Ticker filter: needs a goroutine to be ticked
	Async      bool // an AsyncOutput
	Inline     bool // an InlineOutput whose Inline() is true
}

// Placement says where a node runs.
type Placement uint8

// Placements.
const (
	Own     Placement = iota // its own goroutine (behind a ring unless it is an input)
	Fused                    // a filter in its upstream's goroutine
	Inlined                  // an output in its upstream's goroutine
)

func (p Placement) String() string {
	switch p {
	case Fused:
		return "fused"
	case Inlined:
		return "inline"
	}
	return "own"
}

// Place returns the placement of every node, in the order of nodes.
func Place(nodes []Node, fuseOutputs bool) []Placement {
	out := make([]Placement, len(nodes))
	dlqTarget := make([]bool, len(nodes))
	for _, n := range nodes {
		if n.DeadLetter >= 0 {
			dlqTarget[n.DeadLetter] = true
		}
	}
	for i, n := range nodes {
		switch n.Role {
		case Filter:
			if len(n.Up) == 1 && !n.Ticker {
				out[i] = Fused
			}
		case Output:
			if fuseOutputs && n.Inline && !n.Async && !dlqTarget[i] && len(n.Up) == 1 && len(nodes[n.Up[0]].Down) == 1 {
				out[i] = Inlined
			}
		}
	}
	return out
}

// NeedsInbox reports whether a node of role r placed at p gets a ring in
// front of it.
func NeedsInbox(r Role, p Placement) bool {
	return r != Input && p == Own
}

// Components returns the connected parts of the DAG (match and dead-letter
// edges, either direction): each a list of node indexes in the order of
// nodes, the parts ordered by their first node. The supervisor runs each
// part as an engine of its own and reloads only the parts that changed.
func Components(nodes []Node) [][]int {
	parent := make([]int, len(nodes))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) { parent[find(a)] = find(b) }
	for i, n := range nodes {
		for _, d := range n.Down {
			union(i, d)
		}
		if n.DeadLetter >= 0 {
			union(i, n.DeadLetter)
		}
	}
	index := map[int]int{} // root -> position in out
	var out [][]int
	for i := range nodes {
		r := find(i)
		k, ok := index[r]
		if !ok {
			k = len(out)
			index[r] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}
