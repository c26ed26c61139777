package stream_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/plugins/stream"
)

func TestStreamOutputConformance(t *testing.T) {
	reg := engine.NewRegistry()
	stream.Register(reg)
	path := filepath.Join(t.TempDir(), "out.txt")
	enginetest.TestOutput(t, enginetest.OutputCase{
		Registry: reg,
		Output:   fmt.Sprintf("class: StreamOutput, path: %s", path),
		Received: func(t testing.TB) map[int64]int {
			b, _ := os.ReadFile(path)
			got := map[int64]int{}
			for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
				if seq, ok := enginetest.ParseSeq(line); ok {
					got[seq]++
				}
			}
			return got
		},
	})
}

func TestStreamInputConformance(t *testing.T) {
	reg := engine.NewRegistry()
	stream.Register(reg)
	path := filepath.Join(t.TempDir(), "in.txt")
	enginetest.TestInput(t, enginetest.InputCase{
		Registry: reg,
		Input:    fmt.Sprintf("class: StreamInput, source: file, path: %s", path),
		Finite:   true,
		Produce: func(t testing.TB, from, to int) {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for i := from; i < to; i++ {
				fmt.Fprintf(f, "record %d\n", i)
			}
		},
		ID: func(p []byte) (int, bool) {
			n, err := strconv.Atoi(string(bytes.TrimPrefix(p, []byte("record "))))
			return n, err == nil
		},
	})
}
