package logs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/decorate"
	"github.com/dbus-project/dbus/plugins/file"
	"github.com/dbus-project/dbus/plugins/mock"
	"github.com/dbus-project/dbus/plugins/parse"
)

const lines = 1_000_000

var (
	genOnce           sync.Once
	gzPath, plainPath string
	genErr            error
	geoPath           string
)

// generate writes the 1 M-line access log (JSON) as gzip and plain files.
func generate() {
	dir := filepath.Join(os.TempDir(), "dbus-bench-logs")
	os.MkdirAll(dir, 0o755)
	gzPath = filepath.Join(dir, "access-1m.json.gz")
	plainPath = filepath.Join(dir, "access-1m.json")
	geoPath = filepath.Join(dir, "geo.csv")
	os.WriteFile(geoPath, []byte("10.0.0.0,10.0.255.255,FR,Paris\n10.1.0.0,10.1.255.255,DE,Berlin\n"), 0o644)
	if fi, err := os.Stat(gzPath); err == nil && fi.Size() > 0 {
		if fi, err := os.Stat(plainPath); err == nil && fi.Size() > 0 {
			return
		}
	}
	pf, err := os.Create(plainPath)
	if err != nil {
		genErr = err
		return
	}
	gf, err := os.Create(gzPath)
	if err != nil {
		genErr = err
		return
	}
	zw, _ := gzip.NewWriterLevel(gf, gzip.BestSpeed)
	w := bufio.NewWriterSize(io.MultiWriter(pf, zw), 1<<20)
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	methods := []string{"GET", "POST", "PUT"}
	for i := 0; i < lines; i++ {
		ts := base.Add(time.Duration(i) * 10 * time.Millisecond).Format(time.RFC3339Nano)
		fmt.Fprintf(w, `{"ts":"%s","ip":"10.%d.%d.%d","method":"%s","path":"/api/v1/items/%d","status":%d,"bytes":%d,"ms":%d.%03d,"ua":"Mozilla/5.0 (X11; Linux x86_64)","user":"u%d"}`+"\n",
			ts, i%2, (i/256)%256, i%256, methods[i%3], i%1000, 200+(i%7)*50, 100+i%9000, i%900, i%1000, i%50000)
	}
	w.Flush()
	zw.Close()
	gf.Close()
	pf.Close()
}

func runPipeline(b *testing.B, yaml string) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	file.Register(reg)
	parse.Register(reg)
	decorate.Register(reg)
	cfg, err := engine.Parse("bench.yaml", []byte(yaml), reg)
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := slog.Default()
	slog.SetDefault(quiet)
	defer slog.SetDefault(prev)
	var total time.Duration
	var mallocs uint64
	for i := 0; i < b.N; i++ {
		e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
		if err != nil {
			b.Fatal(err)
		}
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		if err := e.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
		var out uint64
		for _, s := range e.Stats() {
			if s.Name == "out" {
				out = s.Out
			}
		}
		if out != lines {
			b.Fatalf("output acked %d lines, want %d", out, lines)
		}
	}
	n := float64(b.N) * lines
	b.ReportMetric(n/total.Seconds(), "lines/s")
	b.ReportMetric(float64(mallocs)/n, "allocs/line")
	b.ReportMetric(float64(total.Nanoseconds())/n, "ns/line")
}

func setup(b *testing.B) {
	genOnce.Do(generate)
	if genErr != nil {
		b.Fatal(genErr)
	}
	b.ResetTimer()
}

func BenchmarkLogsReplayGzipJSON(b *testing.B) {
	setup(b)
	runPipeline(b, fmt.Sprintf(`
inputs:
  - {name: in, class: FileInput, mode: historical, paths: [%q], progress: 0s}
filters:
  - {name: json, class: ParseFilter, format: json, time_field: ts, match: in}
  - name: deco
    class: DecorateFilter
    match: json
    geoip: {db: %q, field: ip}
    buckets: [{field: ms, bounds: [10, 100, 500]}]
    index: {prefix: "access-", period: day}
outputs:
  - {name: out, class: MockOutput, match: deco}
`, gzPath, geoPath))
}

func BenchmarkLogsReplayPlain(b *testing.B) {
	setup(b)
	runPipeline(b, fmt.Sprintf(`
inputs:
  - {name: in, class: FileInput, mode: historical, paths: [%q], progress: 0s}
outputs:
  - {name: out, class: MockOutput, match: in}
`, plainPath))
}

func BenchmarkLogsReplayGzipPlain(b *testing.B) {
	setup(b)
	runPipeline(b, fmt.Sprintf(`
inputs:
  - {name: in, class: FileInput, mode: historical, paths: [%q], progress: 0s}
outputs:
  - {name: out, class: MockOutput, match: in}
`, gzPath))
}
