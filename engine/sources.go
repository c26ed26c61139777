package engine

import "sort"

// SourceBinder is an optional Output ability: an output that works with
// the inputs feeding it (a Kafka mirror reads the source cluster's topic
// configs and consumer groups through its KafkaInput's settings). The
// engine calls BindSources once, after every plugin is built and before
// Start, with each input upstream of the output (directly or through
// filters), by name. An error fails the engine's construction; it should
// say what is wrong with the pipeline.
type SourceBinder interface {
	BindSources(inputs map[string]Input) error
}

// bindSources calls BindSources on every output that has the ability.
// Errors carry the output's file:line.
func bindSources(g *graph, instances map[*node]any) error {
	for _, n := range g.nodes {
		if n.pc.Kind != KindOutput {
			continue
		}
		sb, ok := instances[n].(SourceBinder)
		if !ok {
			continue
		}
		ins := map[string]Input{}
		seen := map[*node]bool{}
		var walk func(*node)
		walk = func(m *node) {
			if seen[m] {
				return
			}
			seen[m] = true
			if m.pc.Kind == KindInput {
				if in, ok := instances[m].(Input); ok {
					ins[m.name()] = in
				}
				return
			}
			for _, u := range m.up {
				walk(u)
			}
		}
		walk(n)
		if err := sb.BindSources(ins); err != nil {
			names := make([]string, 0, len(ins))
			for k := range ins {
				names = append(names, k)
			}
			sort.Strings(names)
			return n.pc.Conf.Errorf("match", "fed by %v: %v", names, err)
		}
	}
	return nil
}
