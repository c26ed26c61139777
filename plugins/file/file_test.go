package file

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/mock"
)

func testRegistry(t testing.TB, rec *mock.Recorder) *engine.Registry {
	t.Helper()
	reg := engine.NewRegistry()
	mock.Register(reg)
	Register(reg)
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	return reg
}

// running is an engine running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, reg *engine.Registry, yaml string, store engine.CheckpointStore) *running {
	t.Helper()
	cfg, err := engine.Parse("test.yaml", []byte(yaml), reg)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("engine: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("engine did not stop")
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, cond, "waiting for %s", what)
}

// noMore checks that rec gets nothing beyond n lines for a while: a line
// delivered twice would arrive after the last expected one.
func noMore(t testing.TB, rec *mock.Recorder, n int) {
	t.Helper()
	testenv.Never(t, 50*time.Millisecond, func() bool { return rec.Len() > n }, "more than the %d lines expected", n)
}

// probeOpen appends probe lines to f until one is delivered: the input
// has the file open and has read to its end (lines written before it
// opened a file at its end are skipped, so one probe is not enough).
// It returns how many were written.
func probeOpen(t testing.TB, f *os.File, rec *mock.Recorder) int {
	t.Helper()
	n := 0
	waitFor(t, "the input to read the file to its end", func() bool {
		if _, err := fmt.Fprintf(f, "probe-%06d\n", n); err != nil {
			t.Fatal(err)
		}
		n++
		return rec.Len() > 0
	})
	return n
}

// withoutProbes returns payloads without probeOpen's lines, and how many
// of those there were.
func withoutProbes(payloads [][]byte) ([][]byte, int) {
	var out [][]byte
	for _, p := range payloads {
		if !bytes.HasPrefix(p, []byte("probe-")) {
			out = append(out, p)
		}
	}
	return out, len(payloads) - len(out)
}

func writeLines(t testing.TB, f *os.File, tag string, from, to int) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%06d\n", tag, i)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// countLines asserts that payloads hold exactly want[tag] lines "tag-i"
// for i in [0, want[tag]) once each, and nothing else.
func countLines(t *testing.T, payloads [][]byte, want map[string]int) {
	t.Helper()
	seen := map[string]int{}
	for _, p := range payloads {
		seen[string(p)]++
	}
	total := 0
	for tag, n := range want {
		for i := 0; i < n; i++ {
			l := fmt.Sprintf("%s-%06d", tag, i)
			if c := seen[l]; c != 1 {
				t.Fatalf("line %q delivered %d times", l, c)
			}
		}
		total += n
	}
	if len(payloads) != total {
		t.Fatalf("delivered %d lines, want %d", len(payloads), total)
	}
}

func tailYAML(glob string) string {
	return fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: logs, class: FileInput, paths: [%q], start: beginning, poll: 10ms, rescan: 20ms}
outputs:
  - {name: out, class: Rec, match: [logs]}
`, glob)
}

func TestFileLineReaderOffsetsAndCuts(t *testing.T) {
	data := "a\r\nbb\n" + strings.Repeat("x", 40) + "\nlast"
	lr := newLineReader(16)
	lr.reset(strings.NewReader(data), 100)
	type got struct {
		line       string
		start, end int64
		cut        bool
	}
	var gs []got
	for {
		line, start, cut, err := lr.next()
		if err != nil {
			break
		}
		gs = append(gs, got{string(line), start, lr.off, cut})
	}
	line, start := lr.pending()
	gs = append(gs, got{string(line), start, lr.off, false})
	want := []got{
		{"a", 100, 103, false},
		{"bb", 103, 106, false},
		{strings.Repeat("x", 16), 106, 122, true},
		{"last", 147, 151, false},
	}
	if fmt.Sprint(gs) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", gs, want)
	}
}

func TestFileTailRotationCountsEveryLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a", 0, 2000)
	rec := mock.NewRecorder()
	r := start(t, testRegistry(t, rec), tailYAML(filepath.Join(dir, "*.log")), engine.NewMemoryStore())
	waitFor(t, "first 2000 lines", func() bool { return rec.Len() >= 2000 })
	// The writer appends a little more (the last line unterminated), then
	// the file is rotated and a new one created.
	writeLines(t, f, "a", 2000, 2100)
	if _, err := f.WriteString("a-002100"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(path, filepath.Join(dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	f2, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, f2, "b", 0, 3000)
	waitFor(t, "rotated lines", func() bool { return rec.Len() >= 2101+3000 })
	// A second rotation by removal, then the path reappears.
	writeLines(t, f2, "b", 3000, 3100)
	f2.Close()
	os.Remove(path)
	waitFor(t, "lines before removal", func() bool { return rec.Len() >= 2101+3100 })
	f3, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, f3, "c", 0, 500)
	f3.Close()
	waitFor(t, "lines of the recreated file", func() bool { return rec.Len() >= 2101+3100+500 })
	noMore(t, rec, 2101+3100+500)
	r.stop(t)
	countLines(t, rec.Payloads(), map[string]int{"a": 2101, "b": 3100, "c": 500})
}

func TestFileTailTruncationCountsEveryLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a", 0, 1000)
	rec := mock.NewRecorder()
	r := start(t, testRegistry(t, rec), tailYAML(path), engine.NewMemoryStore())
	waitFor(t, "first lines", func() bool { return rec.Len() >= 1000 })
	// copytruncate: the file is cut to 0 and the writer goes on at 0.
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "b", 0, 300)
	f.Close()
	waitFor(t, "lines after truncation", func() bool { return rec.Len() >= 1300 })
	noMore(t, rec, 1300)
	r.stop(t)
	countLines(t, rec.Payloads(), map[string]int{"a": 1000, "b": 300})
	for i, a := range rec.Attrs() {
		if i == 1000 && (a["offset"] != "0" || a["file"] != path) {
			t.Fatalf("first line after truncation has attributes %v", a)
		}
	}
}

func TestFileRestartResumesExactly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, f, "a", 0, 5000)
	store := engine.NewMemoryStore()
	rec := mock.NewRecorder()
	yaml := tailYAML(path)
	r := start(t, testRegistry(t, rec), yaml, store)
	waitFor(t, "first run", func() bool { return rec.Len() >= 5000 })
	r.stop(t)
	cp, ok, _ := store.Load("logs/" + path)
	if !ok || cp.Offset != 5000*9 {
		t.Fatalf("checkpoint after first run = %+v %v, want offset %d", cp, ok, 5000*9)
	}

	// While stopped: more lines, then a rotation and more lines.
	writeLines(t, f, "a", 5000, 7000)
	f.Close()
	os.Rename(path, filepath.Join(dir, "app.log.1"))
	f2, _ := os.Create(path)
	writeLines(t, f2, "b", 0, 1000)
	f2.Close()

	rec2 := mock.NewRecorder()
	r = start(t, testRegistry(t, rec2), yaml, store)
	waitFor(t, "second run", func() bool { return rec2.Len() >= 3000 })
	noMore(t, rec2, 3000)
	r.stop(t)
	all := append(rec.Payloads(), rec2.Payloads()...)
	countLines(t, all, map[string]int{"a": 7000, "b": 1000})

	// Third run with nothing new: nothing delivered again. A probe line
	// appended to the file shows the input has read it to its end (lines
	// read again, from either file, would have come before it).
	rec3 := mock.NewRecorder()
	r = start(t, testRegistry(t, rec3), yaml, store)
	f3, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()
	probeOpen(t, f3, rec3)
	r.stop(t)
	if again, probes := withoutProbes(rec3.Payloads()); len(again) != 0 || probes == 0 {
		t.Fatalf("third run delivered %d lines again (%d probes)", len(again), probes)
	}
}

func TestFileStartAtEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f, _ := os.Create(path)
	writeLines(t, f, "old", 0, 100)
	rec := mock.NewRecorder()
	yaml := strings.Replace(tailYAML(path), "start: beginning", "start: end", 1)
	r := start(t, testRegistry(t, rec), yaml, engine.NewMemoryStore())
	probeOpen(t, f, rec)
	writeLines(t, f, "new", 0, 10)
	f.Close()
	waitFor(t, "new lines", func() bool {
		got, _ := withoutProbes(rec.Payloads())
		return len(got) >= 10
	})
	n := rec.Len()
	noMore(t, rec, n)
	r.stop(t)
	got, _ := withoutProbes(rec.Payloads())
	countLines(t, got, map[string]int{"new": 10})
}

// writeArchive writes lines tag-from..tag-to-1 to path, compressed by kind.
func writeArchive(t testing.TB, path, kind, tag string, from, to int, unterminated bool) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s-%06d", tag, i)
		if i < to-1 || !unterminated {
			b.WriteByte('\n')
		}
	}
	data := b.Bytes()
	var out bytes.Buffer
	switch kind {
	case "gzip":
		zw := gzip.NewWriter(&out)
		zw.Write(data)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&out)
		zw.Write(data)
		zw.Close()
	default:
		out.Write(data)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runToEnd(t testing.TB, reg *engine.Registry, yaml string, store engine.CheckpointStore) {
	t.Helper()
	r := start(t, reg, yaml, store)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("engine: %v", err)
		}
	case <-time.After(60 * time.Second):
		r.cancel()
		t.Fatal("historical replay did not finish by itself")
	}
	r.cancel()
}

func TestFileHistoricalReplayCountsEveryLine(t *testing.T) {
	dir := t.TempDir()
	writeArchive(t, filepath.Join(dir, "app.log.3.gz"), "gzip", "a", 0, 30000, false)
	writeArchive(t, filepath.Join(dir, "app.log.2.zst"), "zstd", "b", 0, 20000, true)
	writeArchive(t, filepath.Join(dir, "app.log.1"), "none", "c", 0, 10000, false)
	yaml := fmt.Sprintf(`
inputs:
  - name: old
    class: FileInput
    mode: historical
    paths: [%q, %q, %q]
outputs:
  - {name: out, class: Rec, match: [old]}
`, filepath.Join(dir, "*.gz"), filepath.Join(dir, "*.zst"), filepath.Join(dir, "app.log.1"))
	store := engine.NewMemoryStore()
	rec := mock.NewRecorder()
	runToEnd(t, testRegistry(t, rec), yaml, store)
	pl := rec.Payloads()
	countLines(t, pl, map[string]int{"a": 30000, "b": 20000, "c": 10000})
	// In order: the files in the order given, each file's lines in order.
	if string(pl[0]) != "a-000000" || string(pl[30000]) != "b-000000" || string(pl[50000]) != "c-000000" {
		t.Fatalf("files not replayed in order: %q %q %q", pl[0], pl[30000], pl[50000])
	}
	for _, f := range []string{"app.log.3.gz", "app.log.2.zst", "app.log.1"} {
		cp, ok, _ := store.Load("old/" + filepath.Join(dir, f))
		if !ok || cp.Token != eofToken {
			t.Fatalf("checkpoint of %s = %+v %v, want token eof", f, cp, ok)
		}
	}
	// A second replay skips finished files.
	rec2 := mock.NewRecorder()
	runToEnd(t, testRegistry(t, rec2), yaml, store)
	if rec2.Len() != 0 {
		t.Fatalf("second replay delivered %d lines", rec2.Len())
	}
}

func TestFileHistoricalResumesInsideCompressedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log.gz")
	writeArchive(t, path, "gzip", "a", 0, 10000, false)
	store := engine.NewMemoryStore()
	// As if a previous replay was stopped after line 4000 (9 bytes/line).
	store.Save(map[string]engine.Checkpoint{"old/" + path: {Offset: 4000 * 9}})
	rec := mock.NewRecorder()
	runToEnd(t, testRegistry(t, rec), fmt.Sprintf(`
inputs:
  - {name: old, class: FileInput, mode: historical, paths: [%q]}
outputs:
  - {name: out, class: Rec, match: [old]}
`, path), store)
	pl := rec.Payloads()
	if len(pl) != 6000 || string(pl[0]) != "a-004000" || string(pl[5999]) != "a-009999" {
		t.Fatalf("resumed replay delivered %d lines, first %q", len(pl), pl[0])
	}
}

func TestFileConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{}, "paths"},
		{map[string]any{"paths": []string{"[x"}}, "bad glob"},
		{map[string]any{"paths": []string{"/x"}, "compression": "gzip"}, "historical"},
		{map[string]any{"paths": []string{"/x"}, "rotated": "*"}, "starting with {name}"},
		{map[string]any{"paths": []string{"/x"}, "rotated": "{name}/../*"}, "bad pattern"},
	} {
		c, err := engine.NewConf(reg, "in", "FileInput", tc.vals)
		if err == nil {
			_, err = newInput(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
}

// TestFileTailRotatedTwiceWhileStopped: a file rotated twice while dbusd
// was stopped is read whole and in order on restart: the rest of the
// checkpointed file, the file rotated after it, then the current file.
// Before, the checkpointed file was found by identity and then the new
// file read, and the middle file was skipped without a log line. Both
// naming schemes: new names per rotation (app.log.1, then app.log.2) and
// logrotate's shifting numbers (app.log.1 -> app.log.2, app.log ->
// app.log.1).
func TestFileTailRotatedTwiceWhileStopped(t *testing.T) {
	for _, scheme := range []string{"new-names", "logrotate"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			writeLines(t, f, "a", 0, 3000)
			store := engine.NewMemoryStore()
			rec := mock.NewRecorder()
			yaml := tailYAML(path)
			r := start(t, testRegistry(t, rec), yaml, store)
			waitFor(t, "first run", func() bool { return rec.Len() >= 3000 })
			r.stop(t)

			// While stopped: more lines, rotate, a second file, rotate
			// again, a third file. A compressed older rotation lies
			// around too (not read, and older anyway).
			writeLines(t, f, "a", 3000, 4000)
			f.Close()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			// Rotations are minutes apart in life; here the writes share a
			// file system clock tick (ext4: about 4 ms), so each file's
			// last write is stamped explicitly, a second apart.
			stamp := func(name string, ago time.Duration) {
				t.Helper()
				must(os.Chtimes(name, time.Now().Add(-ago), time.Now().Add(-ago)))
			}
			stamp(path, 3*time.Second)
			must(os.WriteFile(filepath.Join(dir, "app.log.9.gz"), []byte("x"), 0o644))
			must(os.Chtimes(filepath.Join(dir, "app.log.9.gz"), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)))
			must(os.Rename(path, filepath.Join(dir, "app.log.1")))
			f2, err := os.Create(path)
			must(err)
			writeLines(t, f2, "b", 0, 2000)
			f2.Close()
			stamp(path, 2*time.Second)
			if scheme == "new-names" {
				must(os.Rename(path, filepath.Join(dir, "app.log.2")))
			} else {
				must(os.Rename(filepath.Join(dir, "app.log.1"), filepath.Join(dir, "app.log.2")))
				must(os.Rename(path, filepath.Join(dir, "app.log.1")))
			}
			f3, err := os.Create(path)
			must(err)
			writeLines(t, f3, "c", 0, 1000)
			f3.Close()

			rec2 := mock.NewRecorder()
			r = start(t, testRegistry(t, rec2), yaml, store)
			testenv.Eventually(t, 20*time.Second, func() bool { return rec2.Len() >= 4000 }, "lines after the restart")
			r.stop(t)
			got := rec2.Payloads()
			all := append(rec.Payloads(), got...)
			countLines(t, all, map[string]int{"a": 4000, "b": 2000, "c": 1000})
			// In rotation order: a's rest, then b, then c.
			var tags []byte
			for _, p := range got {
				if len(tags) == 0 || tags[len(tags)-1] != p[0] {
					tags = append(tags, p[0])
				}
			}
			if string(tags) != "abc" {
				t.Fatalf("files read in order %q, want abc", tags)
			}
		})
	}
}
