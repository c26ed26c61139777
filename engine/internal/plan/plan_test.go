package plan

import (
	"fmt"
	"strings"
	"testing"
)

// testNodes builds nodes from "a->b" edges; the role of a node is its
// first letter: i(nput), f(ilter), o(utput). dlq lists "x=>y": y is x's
// dead-letter output. caps sets Ticker/Async/Inline by name.
func testNodes(t *testing.T, edges, dlq []string, caps map[string]Node) ([]string, []Node) {
	t.Helper()
	var names []string
	var nodes []Node
	idx := map[string]int{}
	get := func(name string) int {
		if i, ok := idx[name]; ok {
			return i
		}
		roles := map[byte]Role{'i': Input, 'f': Filter, 'o': Output}
		r, ok := roles[name[0]]
		if !ok {
			t.Fatalf("node %q: name must start with i, f or o", name)
		}
		c := caps[name]
		idx[name] = len(nodes)
		names = append(names, name)
		nodes = append(nodes, Node{Role: r, DeadLetter: -1, Ticker: c.Ticker, Async: c.Async, Inline: c.Inline})
		return idx[name]
	}
	for _, e := range edges {
		a, b, ok := strings.Cut(e, "->")
		if !ok {
			t.Fatalf("edge %q", e)
		}
		from, to := get(a), get(b)
		nodes[from].Down = append(nodes[from].Down, to)
		nodes[to].Up = append(nodes[to].Up, from)
	}
	for _, d := range dlq {
		a, b, _ := strings.Cut(d, "=>")
		nodes[get(a)].DeadLetter = get(b)
	}
	return names, nodes
}

func TestEnginePlanPlacement(t *testing.T) {
	cases := []struct {
		name   string
		edges  []string
		dlq    []string
		caps   map[string]Node
		noFuse bool
		want   string // "node:placement ..." for every node, in creation order
	}{
		{name: "chain fuses the filter, inline sink",
			edges: []string{"i->f", "f->o"}, caps: map[string]Node{"o": {Inline: true}},
			want: "i:own f:fused o:inline"},
		{name: "a sink that is not cheap gets a ring",
			edges: []string{"i->f", "f->o"},
			want:  "i:own f:fused o:own"},
		{name: "async outputs never run inline",
			edges: []string{"i->o"}, caps: map[string]Node{"o": {Inline: true, Async: true}},
			want: "i:own o:own"},
		{name: "fuse_outputs off",
			edges: []string{"i->o"}, caps: map[string]Node{"o": {Inline: true}}, noFuse: true,
			want: "i:own o:own"},
		{name: "fan-out: no output inline (the upstream feeds others)",
			edges: []string{"i->o1", "i->o2"}, caps: map[string]Node{"o1": {Inline: true}, "o2": {Inline: true}},
			want: "i:own o1:own o2:own"},
		{name: "fan-in: the filter with two upstreams gets its own goroutine",
			edges: []string{"i1->f", "i2->f", "f->o"}, caps: map[string]Node{"o": {Inline: true}},
			want: "i1:own f:own i2:own o:inline"},
		{name: "a ticking filter is never fused",
			edges: []string{"i->f", "f->o"}, caps: map[string]Node{"f": {Ticker: true}},
			want: "i:own f:own o:own"},
		{name: "fan-in at the output",
			edges: []string{"i1->o", "i2->o"}, caps: map[string]Node{"o": {Inline: true}},
			want: "i1:own o:own i2:own"},
		{name: "a dead-letter target is never inline",
			edges: []string{"i->f", "f->od"}, dlq: []string{"f=>od"}, caps: map[string]Node{"od": {Inline: true}},
			want: "i:own f:fused od:own"},
		{name: "filter chain fuses every link",
			edges: []string{"i->f1", "f1->f2", "f2->f3", "f3->o"}, caps: map[string]Node{"o": {Inline: true}},
			want: "i:own f1:fused f2:fused f3:fused o:inline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			names, nodes := testNodes(t, tc.edges, tc.dlq, tc.caps)
			places := Place(nodes, !tc.noFuse)
			var got []string
			for i, name := range names {
				got = append(got, fmt.Sprintf("%s:%s", name, places[i]))
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("plan = %s\nwant   %s", s, tc.want)
			}
			for i, n := range nodes {
				p := places[i]
				if inbox := NeedsInbox(n.Role, p); inbox != (n.Role != Input && p == Own) {
					t.Fatalf("%s: NeedsInbox = %v for %s", names[i], inbox, p)
				}
			}
		})
	}
}

func TestEnginePlanComponents(t *testing.T) {
	cases := []struct {
		name  string
		edges []string
		dlq   []string
		want  string // components as "a,b|c", in node creation order
	}{
		{name: "one chain", edges: []string{"i->f", "f->o"}, want: "i,f,o"},
		{name: "two pipelines", edges: []string{"i1->o1", "i2->o2"}, want: "i1,o1|i2,o2"},
		{name: "fan-in joins", edges: []string{"i1->o", "i2->o"}, want: "i1,o,i2"},
		{name: "a dead-letter edge between outputs joins", edges: []string{"i1->o1", "i2->o2"}, dlq: []string{"o2=>o1"}, want: "i1,o1,i2,o2"},
		{name: "dead-letter joins two pipelines", edges: []string{"i1->o1", "i2->f", "f->o2"}, dlq: []string{"f=>o1"}, want: "i1,o1,i2,f,o2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			names, nodes := testNodes(t, tc.edges, tc.dlq, nil)
			var parts []string
			for _, c := range Components(nodes) {
				var ns []string
				for _, i := range c {
					ns = append(ns, names[i])
				}
				parts = append(parts, strings.Join(ns, ","))
			}
			if got := strings.Join(parts, "|"); got != tc.want {
				t.Fatalf("components %s, want %s", got, tc.want)
			}
		})
	}
}
