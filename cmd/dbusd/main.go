package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dbus-project/dbus/cluster"
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
	_ "github.com/dbus-project/dbus/plugins/all"
)

//go:embed default.yaml
var defaultConfig []byte

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	conf      string
	check     bool
	dryrun    bool
	duration  time.Duration
	version   bool
	logLevel  string
	logFormat string
	report    time.Duration
	admin     string
	offline   bool
	plugins   bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("dbusd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.conf, "conf", "", "pipeline config `file` (default: the embedded dry-run pipeline)")
	fs.BoolVar(&o.check, "t", false, "validate the config and exit")
	fs.BoolVar(&o.offline, "offline", false, "with -t: validate without probing brokers or deployment files")
	fs.BoolVar(&o.dryrun, "dryrun", false, "replace outputs with acking sinks (or their dry-run mode) and report packets/s")
	fs.DurationVar(&o.duration, "duration", 0, "stop cleanly after this long (0: run until signalled)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVar(&o.plugins, "plugins", false, "print the plugin reference (Markdown, from the registered specs) and exit")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&o.report, "report", time.Second, "dry-run rate report interval")
	fs.StringVar(&o.admin, "admin", "", "admin API `address` (host:port), overriding admin.listen; enables the admin API")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return o, nil
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", o.logFormat)
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "dbusd:", err)
		return 2
	}
	if o.plugins {
		fmt.Fprint(stdout, engine.Default.Markdown())
		return 0
	}
	if o.version {
		fmt.Fprintf(stdout, "dbusd %s %s %s/%s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "dbusd:", err)
		return 2
	}
	reg := engine.Default
	var cfg *engine.Config
	if o.conf == "" {
		cfg, err = engine.Parse("<embedded default>", defaultConfig, reg)
		o.dryrun = o.dryrun || !o.check
	} else {
		cfg, err = engine.LoadFile(o.conf, reg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dbusd: config invalid:\n%s\n", indent(err.Error()))
		return 1
	}
	if o.check {
		// Build (construct every plugin) without running, so constructor
		// checks (bad templates, unknown compression...) are reported too.
		sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore(), Logger: log, Offline: o.offline})
		if err != nil {
			fmt.Fprintf(stderr, "dbusd: config invalid:\n%s\n", indent(err.Error()))
			return 1
		}
		sup.Close()
		if errs := engine.CheckWritablePaths(cfg); len(errs) > 0 {
			fmt.Fprintf(stderr, "dbusd: config invalid:\n%s\n", indent(errors.Join(errs...).Error()))
			return 1
		}
		ac, err := admin.ParseSection(cfg.File, cfg.Sections["admin"])
		if err == nil && o.admin != "" {
			if _, err = ac.WithListen(o.admin); err != nil {
				err = fmt.Errorf("-admin %s: %w", o.admin, err)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "dbusd: config invalid:\n%s\n", indent(err.Error()))
			return 1
		}
		if n := cfg.Sections["cluster"]; n != nil {
			cc, err := cluster.ParseConfig(cfg.File, n)
			if err == nil && !o.offline {
				// Every ${cred:NAME} must resolve on this member.
				err = cluster.CheckCredentialRefs(cfg.File, cfg.Raw, cc)
			}
			if err != nil {
				fmt.Fprintf(stderr, "dbusd: config invalid:\n%s\n", indent(err.Error()))
				return 1
			}
		}
		fmt.Fprintf(stdout, "%s: ok (%d plugins)\n", cfg.File, len(cfg.Plugins))
		return 0
	}
	if n := cfg.Sections["cluster"]; n != nil && !o.dryrun {
		// Cluster mode: ZooKeeper decides which resources this member runs.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if o.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.duration)
			defer cancel()
		}
		// SIGHUP re-reads the file and applies its pipeline (it used to
		// kill the member: systemctl reload left it dead).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}
		}()
		log.Info("dbusd starting in cluster mode", "version", Version, "config", cfg.File)
		// The member's admin API (-admin, admin.listen or cluster.admin)
		// serves its state, its resources' engines and /metrics.
		if err := cluster.RunMemberWith(ctx, cfg, reg, log, cluster.RunOptions{Reload: reload, AdminListen: o.admin, Version: Version}); err != nil {
			log.Error("cluster member stopped with an error", "err", err)
			return 1
		}
		return 0
	}
	opts := engine.Options{Registry: reg, Logger: log, DryRun: o.dryrun}
	if o.dryrun {
		opts.Store = engine.NewMemoryStore()
	}
	e, err := engine.NewSupervisor(cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "dbusd: cannot build pipeline:\n%s\n", indent(err.Error()))
		return 1
	}
	ctx, stop := signalContext(context.Background(), log, e.HardStop)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	srv, err := admin.Start(ctx, admin.Options{Supervisor: e, Registry: reg, ConfigPath: o.conf, Logger: log,
		Version: Version, Section: cfg.Sections["admin"], ListenOverride: o.admin})
	if err != nil {
		fmt.Fprintf(stderr, "dbusd: %v\n", err)
		return 1
	}
	defer srv.Close()
	if o.conf != "" {
		go reloadOnSIGHUP(ctx, e, srv, o.conf, reg, log)
	}
	var rep *reporter
	if o.dryrun {
		rep = newReporter(e, stderr)
		repCtx, stopRep := context.WithCancel(ctx)
		repDone := make(chan struct{})
		go func() {
			defer close(repDone)
			rep.loop(repCtx, o.report)
		}()
		// The reporter writes to stderr: it must be gone before run returns.
		defer func() { stopRep(); <-repDone }()
	}
	log.Info("dbusd starting", "version", Version, "config", cfg.File, "dryrun", o.dryrun, "plugins", len(cfg.Plugins))
	runErr := e.Run(ctx)
	if rep != nil {
		rep.summary(stdout)
	}
	if runErr != nil {
		log.Error("dbusd stopped with an error", "err", runErr)
		return 1
	}
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// reloadOnSIGHUP re-reads the config file on SIGHUP and applies it as a
// diff; a config that fails leaves the running pipeline untouched.
// With the admin API on, it reloads through it, so /api/v1/status reports
// the last reload whatever triggered it.
func reloadOnSIGHUP(ctx context.Context, sup *engine.Supervisor, srv *admin.Server, path string, reg *engine.Registry, log *slog.Logger) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if srv != nil {
				srv.ReloadFile("signal") // logs the result
				continue
			}
			cfg, err := engine.LoadFile(path, reg)
			if err != nil {
				log.Error("reload rejected: config invalid, pipeline unchanged", "config", path, "err", err)
				continue
			}
			gen, err := sup.Reload(cfg)
			if err != nil {
				log.Error("reload failed", "config", path, "generation", gen, "err", err)
				continue
			}
			log.Info("reloaded", "config", path, "generation", gen)
		}
	}
}

// statser is what the reporter reads.
type statser interface{ Stats() []engine.NodeSnapshot }

// reporter prints per-plugin rates during a dry run and a JSON summary.
type reporter struct {
	e       statser
	w       io.Writer
	start   time.Time
	mallocs uint64
	last    map[string]uint64
	lastT   time.Time
}

func newReporter(e statser, w io.Writer) *reporter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &reporter{e: e, w: w, start: time.Now(), mallocs: ms.Mallocs, last: map[string]uint64{}, lastT: time.Now()}
}

func (r *reporter) loop(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(r.lastT).Seconds()
			r.lastT = now
			var parts []string
			for _, s := range r.e.Stats() {
				v := s.Out
				rate := float64(v-r.last[s.Name]) / dt
				r.last[s.Name] = v
				parts = append(parts, fmt.Sprintf("%s=%s/s", s.Name, human(rate)))
			}
			fmt.Fprintf(r.w, "dryrun %6.1fs  %s\n", now.Sub(r.start).Seconds(), strings.Join(parts, "  "))
		}
	}
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// Summary is the JSON line a dry run prints on exit.
type Summary struct {
	Packets         uint64            `json:"packets"`
	Seconds         float64           `json:"seconds"`
	PacketsPerSec   float64           `json:"packets_per_sec"`
	AllocsPerPacket float64           `json:"allocs_per_packet"`
	GOMAXPROCS      int               `json:"gomaxprocs"`
	Plugins         map[string]uint64 `json:"plugins"`
	Drops           uint64            `json:"drops"`
}

func (r *reporter) summary(w io.Writer) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	secs := time.Since(r.start).Seconds()
	s := Summary{Seconds: secs, GOMAXPROCS: runtime.GOMAXPROCS(0), Plugins: map[string]uint64{}}
	stats := r.e.Stats()
	sort.Slice(stats, func(i, j int) bool { return stats[i].Name < stats[j].Name })
	for _, st := range stats {
		s.Plugins[st.Name] = st.Out
		s.Drops += st.DropTotal()
		if st.Kind == "output" {
			s.Packets += st.Out
		}
	}
	if secs > 0 {
		s.PacketsPerSec = float64(s.Packets) / secs
	}
	if s.Packets > 0 {
		s.AllocsPerPacket = float64(ms.Mallocs-r.mallocs) / float64(s.Packets)
	}
	b, _ := json.Marshal(s)
	fmt.Fprintln(w, string(b))
}
