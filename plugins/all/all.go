package all

import (
	_ "github.com/dbus-project/dbus/plugins/aggregate"
	_ "github.com/dbus-project/dbus/plugins/cardinality"
	_ "github.com/dbus-project/dbus/plugins/decorate"
	_ "github.com/dbus-project/dbus/plugins/es"
	_ "github.com/dbus-project/dbus/plugins/file"
	_ "github.com/dbus-project/dbus/plugins/funnel"
	_ "github.com/dbus-project/dbus/plugins/kafka"
	_ "github.com/dbus-project/dbus/plugins/mock"
	_ "github.com/dbus-project/dbus/plugins/mysqlbinlog"
	_ "github.com/dbus-project/dbus/plugins/parse"
	_ "github.com/dbus-project/dbus/plugins/stream"
	_ "github.com/dbus-project/dbus/plugins/window"
)
