package logs

import (
	"os"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/aggregate"
	"github.com/dbus-project/dbus/plugins/cardinality"
	"github.com/dbus-project/dbus/plugins/decorate"
	"github.com/dbus-project/dbus/plugins/es"
	"github.com/dbus-project/dbus/plugins/file"
	"github.com/dbus-project/dbus/plugins/mock"
	"github.com/dbus-project/dbus/plugins/parse"
	"github.com/dbus-project/dbus/plugins/stream"
	"github.com/dbus-project/dbus/plugins/window"
)

// TestLogsSamplesParse checks that the etc/ samples of the log pipelines
// are valid configs (as dbusd -t would).
func TestLogsSamplesParse(t *testing.T) {
	reg := engine.NewRegistry()
	for _, r := range []func(*engine.Registry){mock.Register, file.Register, parse.Register, decorate.Register, window.Register, cardinality.Register, aggregate.Register, es.Register, stream.Register} {
		r(reg)
	}
	for _, f := range []string{"../../etc/access-log-to-es.yaml", "../../etc/replay.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := engine.Parse(f, data, reg)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Constructors validate plugin-specific config (except files that
		// exist only in production: the GeoIP database, state dirs).
		for _, pc := range cfg.Plugins {
			if pc.Class == "DecorateFilter" || pc.Class == "Cardinality" {
				continue
			}
			if _, err := constructFor(pc); err != nil {
				t.Fatalf("%s: %s: %v", f, pc.Name, err)
			}
		}
	}
}

func constructFor(pc *engine.PluginConfig) (any, error) {
	switch {
	case pc.Spec.NewInput != nil:
		return pc.Spec.NewInput(pc.Conf)
	case pc.Spec.NewFilter != nil:
		return pc.Spec.NewFilter(pc.Conf)
	}
	return pc.Spec.NewOutput(pc.Conf)
}
