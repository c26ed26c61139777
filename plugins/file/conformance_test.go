package file_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/plugins/file"
)

func TestFileInputConformance(t *testing.T) {
	reg := engine.NewRegistry()
	file.Register(reg)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	enginetest.TestInput(t, enginetest.InputCase{
		Registry: reg,
		Input:    fmt.Sprintf("class: FileInput, paths: [%q], start: beginning, poll: 10ms, rescan: 20ms", filepath.Join(dir, "*.log")),
		Produce: func(t testing.TB, from, to int) {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for i := from; i < to; i++ {
				fmt.Fprintf(f, "event %d\n", i)
			}
		},
		ID: func(p []byte) (int, bool) {
			n, err := strconv.Atoi(string(bytes.TrimPrefix(p, []byte("event "))))
			return n, err == nil
		},
	})
}
