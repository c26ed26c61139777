package dag

import (
	"strings"
	"testing"
)

// plugins builds plugins from "name:match1,match2>dlq" specs; the role is
// the name's first letter: i(nput), f(ilter), o(utput).
func plugins(t *testing.T, specs ...string) []Plugin {
	t.Helper()
	var ps []Plugin
	for _, s := range specs {
		var p Plugin
		s, p.DeadLetter, _ = strings.Cut(s, ">")
		name, match, _ := strings.Cut(s, ":")
		p.Name = name
		if match != "" {
			p.Match = strings.Split(match, ",")
		}
		switch name[0] {
		case 'i':
			p.Role = Input
		case 'f':
			p.Role = Filter
		case 'o':
			p.Role = Output
		default:
			t.Fatalf("plugin %q: name must start with i, f or o", name)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestEngineDAGCompile(t *testing.T) {
	cases := []struct {
		name  string
		specs []string
		edges string // "a->b ..." in plugin order, then "a=>dlq"
		probs []string
	}{
		{name: "chain", specs: []string{"i", "f:i", "o:f"}, edges: "i->f f->o"},
		{name: "glob fan-in, outputs skipped by a glob", specs: []string{"i1", "i2", "o1:i*", "o2:[fio]1"}, edges: "i1->o1 i1->o2 i2->o1"},
		{name: "dead letter", specs: []string{"i", "o:i>od", "od"}, edges: "i->o o=>od"},
		{name: "dangling match", specs: []string{"i", "o:i,nothere"}, probs: []string{`1:o: match "nothere" selects no input or filter (dangling match)`}},
		{name: "match names an output", specs: []string{"i", "o1:i", "o2:o1"}, probs: []string{`2:o2: match "o1" names an output; outputs feed nothing`}},
		{name: "self match", specs: []string{"i", "f:i,f", "o:f"}, probs: []string{`1:f: match "f" selects the plugin itself (a cycle)`}},
		{name: "cycle", specs: []string{"i", "f1:i,f2", "f2:f1", "o:f2"}, probs: []string{"1:cycle in match graph: f1 -> f2 -> f1"}},
		{name: "dead-letter loop", specs: []string{"i", "o1:i>o2", "o2:i>o1"}, probs: []string{"1:o1: dead_letter chain loops back through o1", "2:o2: dead_letter chain loops back through o2"}},
		{name: "unreachable output", specs: []string{"i", "f", "o1:i", "o2:f"}, probs: []string{`1:filter "f" has no match`, `3:output "o2" is unreachable`}},
		{name: "input feeding nothing", specs: []string{"i1", "i2", "o:i1"}, probs: []string{`1:input "i2" feeds no output`}},
		{name: "dead-letter target is reachable", specs: []string{"i", "f:i>od", "o:f", "od"}, edges: "i->f f->o f=>od"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := plugins(t, tc.specs...)
			g, probs := Compile(ps)
			var got []string
			for _, p := range probs {
				got = append(got, strings.Join([]string{string(rune('0' + p.Plugin)), p.Msg}, ":"))
			}
			if len(tc.probs) == 0 && len(probs) > 0 {
				t.Fatalf("problems: %v", got)
			}
			if len(got) != len(tc.probs) {
				t.Fatalf("problems %q, want %q", got, tc.probs)
			}
			for i, w := range tc.probs {
				if !strings.HasPrefix(got[i], w) {
					t.Fatalf("problem %d: %q, want %q...", i, got[i], w)
				}
			}
			if len(tc.probs) > 0 {
				if g != nil {
					t.Fatal("a graph with problems")
				}
				return
			}
			var edges []string
			for u := range ps {
				for _, d := range g.Down[u] {
					edges = append(edges, ps[u].Name+"->"+ps[d].Name)
				}
			}
			for i := range ps {
				if d := g.DeadLetter[i]; d >= 0 {
					edges = append(edges, ps[i].Name+"=>"+ps[d].Name)
				}
			}
			if s := strings.Join(edges, " "); s != tc.edges {
				t.Fatalf("edges %q, want %q", s, tc.edges)
			}
			for d := range ps {
				for _, u := range g.Up[d] {
					found := false
					for _, x := range g.Down[u] {
						found = found || x == d
					}
					if !found {
						t.Fatalf("up edge %s<-%s without its down edge", ps[d].Name, ps[u].Name)
					}
				}
			}
		})
	}
}
