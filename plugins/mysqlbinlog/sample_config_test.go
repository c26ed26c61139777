package mysqlbinlog_test

import (
	"os"
	"testing"

	"github.com/dbus-project/dbus/engine"
	_ "github.com/dbus-project/dbus/plugins/kafka"
	_ "github.com/dbus-project/dbus/plugins/mysqlbinlog"
	_ "github.com/dbus-project/dbus/plugins/stream"
)

func TestBinlogSampleConfigParses(t *testing.T) {
	data, _ := os.ReadFile("../../etc/binlog-to-kafka.yaml")
	// The sample config is valid against the real plugin specs.
	if _, err := engine.Parse("etc/binlog-to-kafka.yaml", data, engine.Default); err != nil {
		t.Fatal(err)
	}
}
