package admin_test

import (
	"regexp"
	"testing"

	"github.com/dbus-project/dbus/engine"
	_ "github.com/dbus-project/dbus/plugins/all"
)

// TestAPIPathAndCommandFieldsMarked walks every registered spec: a field
// whose name says it holds a local path or a command is marked Path or
// Command, so that a config posted to the admin API cannot use it beyond
// what the config file allows (policy.go). Listed exceptions are not
// local paths.
func TestAPIPathAndCommandFieldsMarked(t *testing.T) {
	notLocal := map[string]string{
		"MysqlbinlogInput.start_file": "a binlog file name on the server",
	}
	looksPath := regexp.MustCompile(`(^|_)(path|paths|file|files|dir|db)$`)
	looksCommand := regexp.MustCompile(`(^|_)(command|cmd|exec)$`)
	n := 0
	for _, sp := range engine.Default.Specs() {
		for _, f := range sp.Fields {
			key := sp.Class + "." + f.Name
			if _, ok := notLocal[key]; ok || f.Type == engine.TypeAny {
				continue
			}
			if looksPath.MatchString(f.Name) && !f.Path {
				t.Errorf("%s looks like a path but is not marked Path (or list it in notLocal with the reason)", key)
			}
			if looksCommand.MatchString(f.Name) && !f.Command {
				t.Errorf("%s looks like a command but is not marked Command", key)
			}
			if f.Path || f.Command {
				n++
			}
		}
	}
	if n < 6 {
		t.Fatalf("only %d marked fields: the walk found no specs?", n)
	}
}
