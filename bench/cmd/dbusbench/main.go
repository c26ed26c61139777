package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dbus-project/dbus/bench"
	"github.com/dbus-project/dbus/engine"
	_ "github.com/dbus-project/dbus/plugins/all"
)

func main() {
	out := flag.String("out", "perf/REPORT.md", "report file")
	quick := flag.Bool("quick", false, "short runs (noisy; for CI smoke)")
	profile := flag.String("profile", "", "write cpu.prof and mem.prof of a dry run into this directory and exit")
	duration := flag.Duration("duration", 0, "measurement time per scenario (default 2s, 300ms with -quick)")
	skipGo := flag.Bool("skip-micro", false, "skip the go test micro-benchmarks")
	flag.Parse()
	d := 2 * time.Second
	if *quick {
		d = 300 * time.Millisecond
	}
	if *duration > 0 {
		d = *duration
	}
	if *profile != "" {
		if err := doProfile(*profile, d); err != nil {
			fmt.Fprintln(os.Stderr, "dbusbench:", err)
			os.Exit(1)
		}
		return
	}
	var rep bytes.Buffer
	w := io.MultiWriter(os.Stdout, &rep)
	fmt.Fprintf(w, "# dbus benchmark report\n\n- date: %s\n- cpu: %s\n- cores: %d\n- go: %s\n- per-scenario measurement: %s\n\n",
		time.Now().UTC().Format(time.RFC3339), cpuModel(), runtime.NumCPU(), runtime.Version(), d)
	fmt.Fprintln(w, "Ratios compare with baselines measured in this same run on this same machine (shared and noisy: read ratios, not absolutes).")
	fmt.Fprintln(w)
	if err := scenarios(w, d); err != nil {
		fmt.Fprintln(os.Stderr, "dbusbench:", err)
		os.Exit(1)
	}
	if !*skipGo {
		benchtime := "1s"
		if *quick {
			benchtime = "100ms"
		}
		micro(w, benchtime)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
		if err := os.WriteFile(*out, rep.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dbusbench: write report:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "report written to %s\n", *out)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if i := strings.Index(line, ":"); i >= 0 {
				return strings.TrimSpace(line[i+1:])
			}
		}
	}
	return runtime.GOARCH
}

type scenario struct {
	name    string
	shape   bench.Shape
	payload int
}

func scenarios(w io.Writer, d time.Duration) error {
	reg := engine.Default
	list := []scenario{
		{"1 input -> 1 output", bench.Shape{Inputs: 1, Outputs: 1}, 128},
		{"input -> filter -> output", bench.Shape{Inputs: 1, Filter: true, Outputs: 1}, 128},
		{"input -> filter -> output", bench.Shape{Inputs: 1, Filter: true, Outputs: 1}, 1024},
		{"input -> filter -> ring -> output", bench.Shape{Inputs: 1, Filter: true, Outputs: 1, Ring: true}, 128},
		{"fan-out to 3 outputs", bench.Shape{Inputs: 1, Filter: true, Outputs: 3}, 128},
		{"4 inputs -> 1 output", bench.Shape{Inputs: 4, Outputs: 1}, 128},
		{"4 inputs -> 1 output", bench.Shape{Inputs: 4, Outputs: 1}, 1024},
	}
	warm := d / 5
	fmt.Fprintln(w, "## End-to-end dry run (MockInput -> [MockFilter] -> MockOutput, acks and watermark on)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | payload | GOMAXPROCS | dbus packets/s | ns/packet | CPU ns/packet | allocs/packet | channel baseline packets/s | dbus / channel | single-goroutine floor packets/s | dbus / floor |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, sc := range list {
		procs := []int{2}
		if sc.shape == (bench.Shape{Inputs: 1, Filter: true, Outputs: 1}) && sc.payload == 128 {
			procs = []int{1, 2}
		}
		for _, p := range procs {
			fmt.Fprintf(os.Stderr, "scenario: %s, %d B, GOMAXPROCS=%d ...\n", sc.name, sc.payload, p)
			prev := runtime.GOMAXPROCS(p)
			r, err := bench.RunDBus(bench.Config(sc.shape, sc.payload), reg, warm, d, nil)
			if err != nil {
				return err
			}
			ch := float64(bench.ChannelPipeline(sc.shape, sc.payload, d)) / d.Seconds()
			fl := float64(bench.Floor(sc.shape, sc.payload, d)) / d.Seconds()
			runtime.GOMAXPROCS(prev)
			fmt.Fprintf(w, "| %s | %d B | %d | %s | %.1f | %.1f | %.4f | %s | %.1fx | %s | %.2f |\n", sc.name, sc.payload, p,
				human(r.PacketsPerSec), 1e9/r.PacketsPerSec, r.CPUNanosPerPacket, r.AllocsPerPacket, human(ch), r.PacketsPerSec/ch, human(fl), r.PacketsPerSec/fl)
		}
	}
	fmt.Fprintln(w)
	// Stability: 5 runs of the headline scenario per GOMAXPROCS, each
	// paired with a channel-baseline run right after it: on a shared
	// machine the median of paired ratios is the steadier comparison.
	fmt.Fprintln(w, "## Stability (input -> filter -> output, 128 B, 5 runs each, each paired with a channel-baseline run)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| GOMAXPROCS | dbus runs (M packets/s) | median | spread (max-min)/median | channel runs (M packets/s) | dbus / channel per pair | median dbus / channel |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	headShape := bench.Shape{Inputs: 1, Filter: true, Outputs: 1}
	headline := bench.Config(headShape, 128)
	median := func(v []float64) float64 {
		sorted := append([]float64(nil), v...)
		sort.Float64s(sorted)
		return sorted[len(sorted)/2]
	}
	list1 := func(v []float64, scale float64, format string) string {
		var parts []string
		for _, x := range v {
			parts = append(parts, fmt.Sprintf(format, x/scale))
		}
		return strings.Join(parts, ", ")
	}
	for _, p := range []int{1, 2} {
		fmt.Fprintf(os.Stderr, "stability: GOMAXPROCS=%d, 5 paired runs ...\n", p)
		prev := runtime.GOMAXPROCS(p)
		var rates, chans, ratios []float64
		for i := 0; i < 5; i++ {
			r, err := bench.RunDBus(headline, reg, warm, d, nil)
			if err != nil {
				return err
			}
			ch := float64(bench.ChannelPipeline(headShape, 128, d)) / d.Seconds()
			rates, chans, ratios = append(rates, r.PacketsPerSec), append(chans, ch), append(ratios, r.PacketsPerSec/ch)
		}
		runtime.GOMAXPROCS(prev)
		med := median(rates)
		lo, hi := slices.Min(rates), slices.Max(rates)
		fmt.Fprintf(w, "| %d | %s | %s | %.0f %% | %s | %s | %.1fx |\n", p, list1(rates, 1e6, "%.1f"), human(med), 100*(hi-lo)/med,
			list1(chans, 1e6, "%.2f"), list1(ratios, 1, "%.1fx"), median(ratios))
	}
	fmt.Fprintln(w)
	// Idle CPU: a pipeline whose source has nothing to read.
	cpu, err := idleCPU(d)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "## Idle")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "An idle pipeline (StreamInput on a silent pipe -> MockOutput) used %.1f ms of CPU in %s (%.2f %% of one core).\n\n",
		cpu.Seconds()*1000, d, 100*cpu.Seconds()/d.Seconds())
	if fn := metricsOverhead; fn != nil {
		if err := fn(w, headline, reg, warm, d); err != nil {
			return err
		}
	}
	return nil
}

// metricsOverhead is set when the metrics package is linked in
// (metrics_bench.go).
var metricsOverhead func(w io.Writer, conf string, reg *engine.Registry, warm, d time.Duration) error

func idleCPU(d time.Duration) (time.Duration, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer pw.Close()
	defer pr.Close()
	conf := "inputs:\n  - {name: idle, class: StreamInput, source: command, command: \"sleep 3600\"}\noutputs:\n  - {name: out, class: MockOutput, match: idle}\n"
	cfg, err := engine.Parse("idle.yaml", []byte(conf), engine.Default)
	if err != nil {
		return 0, err
	}
	sup, err := engine.NewSupervisor(cfg, engine.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	time.Sleep(d)
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cancel()
	<-done
	used := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
	return used, nil
}

var (
	benchLine  = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)
	resultLine = regexp.MustCompile(`^\s+\d+\s+[\d.]+ \S+`)
)

// micro runs the Go micro-benchmarks and the plugin benchmarks and prints
// their rows. Plugin benchmarks run a fixed number of iterations (each is
// a whole scenario with its own baseline in the same run).
func micro(w io.Writer, benchtime string) {
	type pkg struct{ dir, benchtime, cpu string }
	pkgs := []pkg{{"./ring/", benchtime, "1,2"}, {"./pack/", benchtime, "1,2"}, {"./engine/", benchtime, "1,2"}}
	for _, p := range []pkg{{"./bench/kafka/", "2x", "2"}, {"./bench/binlog/", "5x", "2"}, {"./bench/logs/", "1x", "2"}, {"./cluster/assign/", "20x", "2"}} {
		if _, err := os.Stat(p.dir); err == nil {
			pkgs = append(pkgs, p)
		}
	}
	fmt.Fprintln(w, "## Micro-benchmarks and plugin benchmarks (go test -bench, -benchmem)")
	fmt.Fprintln(w)
	for _, p := range pkgs {
		fmt.Fprintf(os.Stderr, "running benchmarks in %s ...\n", p.dir)
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", p.benchtime, "-cpu", p.cpu, p.dir)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		fmt.Fprintf(w, "### %s\n\n```\n", p.dir)
		sc := bufio.NewScanner(&out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		pending := "" // a benchmark name whose results a log line interrupted
		for sc.Scan() {
			line := sc.Text()
			switch {
			case benchLine.MatchString(line) || strings.Contains(line, "FAIL"):
				fmt.Fprintln(w, line)
				pending = ""
			case strings.HasPrefix(line, "Benchmark"):
				pending = strings.Fields(line)[0]
			case pending != "" && resultLine.MatchString(line):
				fmt.Fprintln(w, pending+" "+strings.TrimSpace(line))
				pending = ""
			}
		}
		if err != nil {
			fmt.Fprintf(w, "(benchmarks failed: %v)\n", err)
		}
		fmt.Fprintln(w, "```")
		fmt.Fprintln(w)
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func doProfile(dir string, d time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cpuPath, memPath := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	f, err := os.Create(cpuPath)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	runtime.MemProfileRate = 64 << 10
	r, err := bench.RunDBus(bench.Config(bench.Shape{Inputs: 1, Filter: true, Outputs: 1}, 128), engine.Default, 200*time.Millisecond, d, nil)
	pprof.StopCPUProfile()
	f.Close()
	if err != nil {
		return err
	}
	mf, err := os.Create(memPath)
	if err != nil {
		return err
	}
	pprof.Lookup("allocs").WriteTo(mf, 0)
	mf.Close()
	fmt.Printf("dry run: %s packets/s, %.1f CPU ns/packet, %.4f allocs/packet\n", human(r.PacketsPerSec), r.CPUNanosPerPacket, r.AllocsPerPacket)
	fmt.Printf("profiles: %s %s\nopen with: go tool pprof -http=:8081 %s   (or: go tool pprof -top %s)\n", cpuPath, memPath, cpuPath, cpuPath)
	return nil
}
