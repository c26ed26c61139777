package admin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin/ui"
	"github.com/dbus-project/dbus/engine/metrics"
	"gopkg.in/yaml.v3"
)

// Options configure Start.
type Options struct {
	// Supervisor is the running pipeline (required).
	Supervisor *engine.Supervisor
	// Registry resolves plugin classes for /plugins and reloads; nil means
	// engine.Default.
	Registry *engine.Registry
	// ConfigPath is the config file: reloads without a body and the
	// watcher re-read it. Empty disables both.
	ConfigPath string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Version is reported by /api/v1/status and dbus_build_info.
	Version string
	// Section is the config's admin: block (cfg.Sections["admin"]); nil
	// means defaults.
	Section *yaml.Node
	// ListenOverride replaces admin.listen (dbusd -admin ADDR).
	ListenOverride string
	// Cluster, when set, feeds the dbus_cluster_* metrics.
	Cluster func() metrics.ClusterStats
	// Member, when set, makes this a cluster member's admin API
	// (member.go): Supervisor is then its local pipeline and may be nil.
	Member Member
}

// Backend is what the server needs from a pipeline;
// *engine.Supervisor implements it, EngineBackend wraps one engine
// (tests substitute fakes).
type Backend interface {
	metrics.Source
	Graph() []engine.Edge
	Checkpoints() map[string]engine.Checkpoint
	Pause(name string) error
	Resume(name string) error
	Reload(cfg *engine.Config) (int64, error)
	Config() *engine.Config
	InFlight() int
	Tap(ctx context.Context, node string, opts engine.TapOptions) (<-chan engine.TapRecord, error)
	Query(name string, params map[string]string) (any, error)
}

type backend = Backend

// Server is a running admin listener. Close stops it.
type Server struct {
	cfg       Config
	b         backend
	member    Member          // nil outside a cluster member
	resources resourceServers // a member's per-resource APIs
	reg       *engine.Registry
	log       *slog.Logger
	version   string
	path      string // config file, "" when none
	// startCfg is the config the daemon started with: without a config
	// file, what a posted config is checked against (policy.go).
	startCfg *engine.Config
	started  time.Time

	ctx    context.Context // ends at Close: stops taps and the watcher
	cancel context.CancelFunc
	mux    *http.ServeMux
	srv    *http.Server
	ln     net.Listener
	lim    *limitListener // bounds open connections (max_connections)
	cop    *http.CrossOriginProtection
	tls    bool           // the listener speaks HTTPS
	wg     sync.WaitGroup // serve loop and watcher
	once   sync.Once
	stopAf func() bool

	rates     rateTracker
	hist      *history     // the live page's charts: one sample per historyEvery
	reloads   reloadLog    // the last reload attempts
	reloading atomic.Bool  // an API, file or watcher reload runs
	taps      atomic.Int32 // active tap streams
	tapsTotal atomic.Int64 // tap streams started since Start
	last      atomic.Pointer[ReloadResult]

	// Values /status serves while a reload holds the supervisor's lock.
	supStart       atomic.Int64 // unix nanos the supervisor started, 0 until known
	cachedInFlight atomic.Int64
	cachedPlugins  atomic.Int64

	fileMu   sync.Mutex // guards fileHash
	fileHash string     // hash of the config file content last applied or rejected
}

// ReloadResult describes the last reload attempt.
type ReloadResult struct {
	Generation         int64     `json:"generation"`
	PreviousGeneration int64     `json:"previous_generation"`
	Source             string    `json:"source"` // api, file, watch, signal
	File               string    `json:"file,omitempty"`
	At                 time.Time `json:"at"`
	Applied            bool      `json:"applied"`
	Error              string    `json:"error,omitempty"`
	Warnings           []string  `json:"warnings,omitempty"`
	Repaused           []string  `json:"repaused,omitempty"`
}

// Start decodes opts.Section, listens, and serves the admin API until ctx
// ends or Close is called. It returns (nil, nil) when the config has no
// admin: section and no ListenOverride is given: the admin API is off.
// Close on a nil *Server is a no-op.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Supervisor == nil && opts.Member == nil {
		return nil, errors.New("admin: Options.Supervisor is nil")
	}
	if opts.Section == nil && opts.ListenOverride == "" {
		return nil, nil
	}
	file := opts.ConfigPath
	if file == "" {
		file = "<config>"
	}
	cfg, err := ParseSection(file, opts.Section)
	if err != nil {
		return nil, err
	}
	if opts.ListenOverride != "" {
		if cfg, err = cfg.WithListen(opts.ListenOverride); err != nil {
			return nil, fmt.Errorf("-admin %s: %w", opts.ListenOverride, err)
		}
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := newServer(cfg, rootBackend(opts), opts)
	raw, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("admin: cannot listen on %s: %w", cfg.Listen, err)
	}
	// Bound the connections on the raw socket (a TLS handshake holds one too).
	s.lim = newLimitListener(raw, cfg.MaxConnections)
	s.ln = s.lim
	if tc != nil {
		s.ln = tls.NewListener(s.lim, tc)
		s.tls = true
	}
	ln := s.ln
	s.srv = &http.Server{
		Handler:           trackRequest(s.mux),
		ConnState:         connState,
		ConnContext:       connContext,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		// ReadTimeout covers the body: a client trickling it is cut off.
		// Tap streams and reloads extend their deadlines per request.
		ReadTimeout:    cfg.ReadTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		BaseContext:    func(net.Listener) context.Context { return s.ctx },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampleHistory(historyEvery)
	}()
	if cfg.Watch {
		if s.path == "" {
			s.log.Warn("admin.watch is set but there is no config file to watch")
		} else {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.watch(cfg.WatchInterval)
			}()
		}
	}
	s.stopAf = context.AfterFunc(ctx, func() { s.Close() })
	s.log.Info("admin API listening", "addr", ln.Addr().String(), "https", s.tls, "client_certs", cfg.ClientCAFile != "",
		"auth", cfg.Token != "", "max_connections", cfg.MaxConnections, "pprof", cfg.Pprof,
		"tap", cfg.Tap.Enabled, "watch", cfg.Watch && s.path != "")
	return s, nil
}

// rootBackend is the backend of the top-level API: the supervisor, or
// for a cluster member its engines mounted by resource (member.go).
func rootBackend(opts Options) Backend {
	if opts.Member == nil {
		return opts.Supervisor
	}
	mb := &memberBackend{m: opts.Member, started: time.Now()}
	if opts.Supervisor != nil {
		mb.local = opts.Supervisor
	}
	return mb
}

// newServer builds the handler without listening.
func newServer(cfg Config, b backend, opts Options) *Server {
	if opts.Registry == nil {
		opts.Registry = engine.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	s := &Server{cfg: cfg, b: b, reg: opts.Registry, log: opts.Logger.With("component", "admin"),
		version: opts.Version, path: opts.ConfigPath, started: time.Now(), member: opts.Member,
		hist: newHistory(int(historyKeep / historyEvery)), reloads: reloadLog{max: reloadLogSize}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.startCfg = b.Config()
	s.cop = http.NewCrossOriginProtection()
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	if s.path != "" {
		if h, err := hashFile(s.path); err == nil {
			s.fileHash = h
		}
	}
	s.routes(opts)
	return s
}

// Addr returns the listening address (host:port).
func (s *Server) Addr() string {
	if s == nil || s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Handler returns the server's HTTP handler (auth included).
func (s *Server) Handler() http.Handler { return s.mux }

// Settings returns the decoded admin settings (token redacted).
func (s *Server) Settings() Config {
	c := s.cfg
	if c.Token != "" {
		c.Token = "<redacted>"
	}
	return c
}

// TapsStarted is the number of tap streams started since Start.
func (s *Server) TapsStarted() int64 { return s.tapsTotal.Load() }

// Close stops the listener, ends tap streams and the watcher, and waits
// for them. Safe to call more than once and on a nil Server.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	var err error
	s.once.Do(func() {
		if s.stopAf != nil {
			s.stopAf()
		}
		s.cancel()
		s.resources.closeAll()
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if e := s.srv.Shutdown(ctx); e != nil {
				err = e
				s.srv.Close()
			}
		}
		s.wg.Wait()
	})
	return err
}

func (s *Server) routes(opts Options) {
	m := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, s.guard(routeAPI, h)) }
	api("/api/v1/status", s.get(s.handleStatus))
	api("/api/v1/plugins", s.get(s.handlePlugins))
	api("/api/v1/plugins/{class}", s.get(s.handlePlugin))
	api("/api/v1/plugins/{name}/query", s.get(s.handleQuery))
	api("/api/v1/plugins/{name}/command/{cmd}", s.post(s.handleCommand))
	api("/api/v1/dag", s.get(s.handleDAG))
	api("/api/v1/queues", s.get(s.handleQueues))
	api("/api/v1/checkpoints", s.get(s.handleCheckpoints))
	api("/api/v1/config", s.get(s.handleConfig))
	api("/api/v1/inputs/{name}/pause", s.post(func(w http.ResponseWriter, r *http.Request) { s.handlePause(w, r, true) }))
	api("/api/v1/inputs/{name}/resume", s.post(func(w http.ResponseWriter, r *http.Request) { s.handlePause(w, r, false) }))
	api("/api/v1/reload", s.post(s.handleReload))
	api("/api/v1/reloads", s.get(s.handleReloads))
	api("/api/v1/history", s.get(s.handleHistory))
	api("/api/v1/tap/{node}", method(s.handleTap, http.MethodGet))
	if s.member != nil {
		api("/api/v1/cluster", s.get(s.handleCluster))
		api("/api/v1/resources", s.get(s.handleResources))
		m.Handle("/api/v1/resources/{name}/{rest...}", s.guard(routeAPI, s.handleResource))
	}
	m.Handle("/api/", s.guard(routeAPI, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API endpoint %s (see /api/v1/ endpoints: status, plugins, plugins/{name}/query, plugins/{name}/command/{cmd}, dag, queues, checkpoints, config, history, inputs/{name}/pause|resume, reload, reloads, tap/{node})", r.URL.Path)
	}))
	if s.cfg.Metrics {
		if mb, ok := s.b.(*memberBackend); ok {
			// The local pipeline's series as on a single node, every
			// resource engine's with a resource label.
			c := metrics.NewCollector(mb.metricsSource(), metrics.Options{Version: s.version, Cluster: mb.m.Stats})
			g := metrics.ResourceGatherer(metrics.NewRegistry(c), mb.resourceSources)
			m.Handle("/metrics", s.guard(routeMetrics, metrics.GathererHandler(g).ServeHTTP))
		} else {
			c := metrics.NewCollector(s.b, metrics.Options{Version: s.version, Cluster: opts.Cluster})
			m.Handle("/metrics", s.guard(routeMetrics, metrics.Handler(metrics.NewRegistry(c)).ServeHTTP))
		}
	}
	if s.cfg.Pprof {
		m.Handle("/debug/pprof/", s.guard(routeAPI, pprof.Index))
		m.Handle("/debug/pprof/cmdline", s.guard(routeAPI, pprof.Cmdline))
		m.Handle("/debug/pprof/profile", s.guard(routeAPI, pprof.Profile))
		m.Handle("/debug/pprof/symbol", s.guard(routeAPI, pprof.Symbol))
		m.Handle("/debug/pprof/trace", s.guard(routeAPI, pprof.Trace))
	} else {
		m.HandleFunc("/debug/pprof/", s.guard(routeStatic, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "pprof is off: set admin.pprof: true to enable it")
		}))
	}
	if s.cfg.UI {
		m.Handle("/ui/", s.guard(routeStatic, http.StripPrefix("/ui/", ui.Handler()).ServeHTTP))
	}
	m.HandleFunc("/{$}", s.guard(routeStatic, func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.UI {
			http.Redirect(w, r, "/ui/", http.StatusFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"api": "/api/v1/status"})
	}))
	m.HandleFunc("/", s.guard(routeStatic, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found: %s", r.URL.Path)
	}))
	s.mux = m
}

func (s *Server) get(h http.HandlerFunc) http.HandlerFunc {
	return method(h, http.MethodGet, http.MethodHead)
}
func (s *Server) post(h http.HandlerFunc) http.HandlerFunc { return method(h, http.MethodPost) }

func method(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s (use %s)", r.Method, r.URL.Path, strings.Join(allowed, " or "))
	}
}

// ErrorBody is the JSON body of every 4xx and 5xx answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, ErrorBody{Error: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: "cannot encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
