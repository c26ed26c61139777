// Package all links every built-in plugin into a binary: import it for
// its side effect of registering them into engine.Default.
package all

import (
	_ "github.com/dbus-project/dbus/plugins/mock"
	_ "github.com/dbus-project/dbus/plugins/stream"
)
