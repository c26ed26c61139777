package engine

import (
	"fmt"
	"strings"
	"testing"
)

// testGraph builds a graph from "a->b" edges; the kind of a node is its
// first letter: i(nput), f(ilter), o(utput). dlq lists "x=>y": y is x's
// dead-letter output.
func testGraph(t *testing.T, edges []string, dlq ...string) *graph {
	t.Helper()
	g := &graph{byName: map[string]*node{}}
	get := func(name string) *node {
		if n, ok := g.byName[name]; ok {
			return n
		}
		kinds := map[byte]Kind{'i': KindInput, 'f': KindFilter, 'o': KindOutput}
		k, ok := kinds[name[0]]
		if !ok {
			t.Fatalf("node %q: name must start with i, f or o", name)
		}
		n := &node{pc: &PluginConfig{Name: name, Kind: k}, idx: len(g.nodes)}
		g.nodes = append(g.nodes, n)
		g.byName[name] = n
		return n
	}
	for _, e := range edges {
		a, b, ok := strings.Cut(e, "->")
		if !ok {
			t.Fatalf("edge %q", e)
		}
		from, to := get(a), get(b)
		from.down = append(from.down, to)
		to.up = append(to.up, from)
	}
	for _, d := range dlq {
		a, b, _ := strings.Cut(d, "=>")
		get(a).dlq = get(b)
	}
	return g
}

func TestEnginePlanPlacement(t *testing.T) {
	cases := []struct {
		name   string
		edges  []string
		dlq    []string
		caps   map[string]nodeCaps
		noFuse bool
		want   string // "node:placement ..." for every node, in creation order
	}{
		{name: "chain fuses the filter, inline sink",
			edges: []string{"i->f", "f->o"}, caps: map[string]nodeCaps{"o": {inline: true}},
			want: "i:own f:fused o:inline"},
		{name: "a sink that is not cheap gets a ring",
			edges: []string{"i->f", "f->o"},
			want:  "i:own f:fused o:own"},
		{name: "async outputs never run inline",
			edges: []string{"i->o"}, caps: map[string]nodeCaps{"o": {inline: true, async: true}},
			want: "i:own o:own"},
		{name: "fuse_outputs off",
			edges: []string{"i->o"}, caps: map[string]nodeCaps{"o": {inline: true}}, noFuse: true,
			want: "i:own o:own"},
		{name: "fan-out: no output inline (the upstream feeds others)",
			edges: []string{"i->o1", "i->o2"}, caps: map[string]nodeCaps{"o1": {inline: true}, "o2": {inline: true}},
			want: "i:own o1:own o2:own"},
		{name: "fan-in: the filter with two upstreams gets its own goroutine",
			edges: []string{"i1->f", "i2->f", "f->o"}, caps: map[string]nodeCaps{"o": {inline: true}},
			want: "i1:own f:own i2:own o:inline"},
		{name: "a ticking filter is never fused",
			edges: []string{"i->f", "f->o"}, caps: map[string]nodeCaps{"f": {ticker: true}},
			want: "i:own f:own o:own"},
		{name: "fan-in at the output",
			edges: []string{"i1->o", "i2->o"}, caps: map[string]nodeCaps{"o": {inline: true}},
			want: "i1:own o:own i2:own"},
		{name: "a dead-letter target is never inline",
			edges: []string{"i->f", "f->od"}, dlq: []string{"f=>od"}, caps: map[string]nodeCaps{"od": {inline: true}},
			want: "i:own f:fused od:own"},
		{name: "filter chain fuses every link",
			edges: []string{"i->f1", "f1->f2", "f2->f3", "f3->o"}, caps: map[string]nodeCaps{"o": {inline: true}},
			want: "i:own f1:fused f2:fused f3:fused o:inline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := testGraph(t, tc.edges, tc.dlq...)
			places := plan(g, func(n *node) nodeCaps { return tc.caps[n.name()] }, !tc.noFuse)
			var got []string
			for _, n := range g.nodes {
				got = append(got, fmt.Sprintf("%s:%s", n.name(), places[n.idx]))
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("plan = %s\nwant   %s", s, tc.want)
			}
			for _, n := range g.nodes {
				p := places[n.idx]
				if inbox := needsInbox(n, p); inbox != (n.pc.Kind != KindInput && p == placeOwn) {
					t.Fatalf("%s: needsInbox = %v for %s", n.name(), inbox, p)
				}
			}
		})
	}
}
