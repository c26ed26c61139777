package cluster

import (
	"fmt"
	"strings"

	"github.com/dbus-project/dbus/engine"
)

// unusedInputWarnings returns one warning per distributed input of cfg
// that no registered resource of the cluster uses (used: input name ->
// a resource). Such an input reads nothing in cluster mode: a
// distributed input runs only as resources (a MysqlbinlogInput once ran
// on every member, each row read N times; now it runs nowhere until a
// resource names it). It is a warning, not an error: `dbc resources add`
// declares one while the members run, and they start it without a
// restart.
func unusedInputWarnings(cfg *engine.Config, cluster string, used map[string]ResourceSpec) []string {
	var out []string
	for _, pc := range cfg.Plugins {
		if pc.Kind != engine.KindInput || !pc.Spec.Distributed {
			continue
		}
		if _, ok := used[pc.Name]; ok {
			continue
		}
		var per []string
		for _, f := range pc.Spec.Fields {
			if f.PerResource {
				per = append(per, fmt.Sprintf(`"%s": ...`, f.Name))
			}
		}
		example := "{...}"
		if len(per) > 0 {
			example = "{" + strings.Join(per, ", ") + ", ...}"
		}
		out = append(out, fmt.Sprintf("%s: input %q (class %s) runs only as cluster resources and cluster %s declares none for it: it reads nothing until one is added: dbc resources add -cluster %s -id ID -input %s -config '%s'",
			cfg.File, pc.Name, pc.Class, cluster, cluster, pc.Name, example))
	}
	return out
}

// warnUnusedInputs logs unusedInputWarnings for the resources registered
// now (once, at start).
func (m *Member) warnUnusedInputs(cfg *engine.Config) {
	used, err := m.resourceInputs()
	if err != nil {
		m.log.Warn("cannot list the cluster's resources to check the distributed inputs", "err", err)
		return
	}
	for _, w := range unusedInputWarnings(cfg, m.cfg.Name, used) {
		m.log.Warn(w)
	}
}
