package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/metrics"
)

// Member is the admin backend of a cluster member (package cluster
// implements it): the member's state and one engine per resource it
// runs. With Options.Member set, the server mounts the member's
// engines under their resource names:
//
//	GET /api/v1/cluster                 Status(): member, epoch, leader, owned resources
//	GET /api/v1/resources               the resources whose engine runs now
//	    /api/v1/resources/{name}/...    that engine's API (status, dag, queues,
//	                                    checkpoints, plugins/{p}/query, inputs/{p}/pause...)
//
// and the top-level views (dag, queues, checkpoints, tap, pause, the live
// page) show the local pipeline's nodes as they are and every resource's
// nodes as "<resource>/<plugin>" (plugin names cannot contain '/').
// /metrics adds the dbus_cluster_* series from Stats and every resource
// engine's series with a resource label.
type Member interface {
	// Status is served at GET /api/v1/cluster and in /api/v1/status.
	Status() any
	// Resources returns the resources whose engine runs now, sorted.
	Resources() []string
	// Resource returns the view of a running resource's engine
	// (EngineBackend), false when it does not run here now.
	Resource(name string) (Backend, bool)
	// Config is the member's pipeline config (nil if unknown).
	Config() *engine.Config
	// Stats feeds the dbus_cluster_* metrics.
	Stats() metrics.ClusterStats
}

// EngineBackend is the admin view of one engine that no Supervisor
// wraps (a cluster member's resource): generation 1, started when Run
// was called (started), reloads refused (a resource's config changes
// with the cluster's: dbc config push).
func EngineBackend(e *engine.Engine, started time.Time) Backend {
	return &engineBackend{e: e, started: started}
}

type engineBackend struct {
	e       *engine.Engine
	started time.Time
}

var errUnknownNode = errors.New("no running plugin has that name")

var errResourceReload = errors.New("a cluster resource's pipeline cannot be reloaded on its own: push the cluster config (dbc config push) or reload the member (SIGHUP)")

func (b *engineBackend) Stats() []engine.NodeSnapshot              { return b.e.Stats() }
func (b *engineBackend) Generation() int64                         { return 1 }
func (b *engineBackend) Uptime() time.Duration                     { return time.Since(b.started) }
func (b *engineBackend) Graph() []engine.Edge                      { return b.e.Graph() }
func (b *engineBackend) Checkpoints() map[string]engine.Checkpoint { return b.e.Checkpoints() }
func (b *engineBackend) Pause(name string) error                   { return b.e.Pause(name) }
func (b *engineBackend) Resume(name string) error                  { return b.e.Resume(name) }
func (b *engineBackend) Reload(*engine.Config) (int64, error)      { return 1, errResourceReload }
func (b *engineBackend) Config() *engine.Config                    { return b.e.Config() }
func (b *engineBackend) InFlight() int                             { return b.e.InFlight() }
func (b *engineBackend) Query(name string, p map[string]string) (any, error) {
	return b.e.Query(name, p)
}
func (b *engineBackend) Tap(ctx context.Context, node string, opts engine.TapOptions) (<-chan engine.TapRecord, error) {
	return b.e.Tap(ctx, node, opts)
}
func (b *engineBackend) Command(ctx context.Context, name, cmd string, args []string) (any, error) {
	return b.e.Command(ctx, name, cmd, args)
}

// memberBackend is a member's top-level view: the local pipeline (nil
// when the member has none) plus every resource engine under the prefix
// "<resource>/".
type memberBackend struct {
	local   Backend
	m       Member
	started time.Time
}

type part struct {
	prefix string
	b      Backend
}

func (mb *memberBackend) parts() []part {
	var ps []part
	if mb.local != nil {
		ps = append(ps, part{"", mb.local})
	}
	for _, name := range mb.m.Resources() {
		if b, ok := mb.m.Resource(name); ok {
			ps = append(ps, part{name + "/", b})
		}
	}
	return ps
}

// route returns the backend owning node name and the name inside it.
func (mb *memberBackend) route(name string) (Backend, string, error) {
	if res, inner, ok := strings.Cut(name, "/"); ok {
		if b, ok := mb.m.Resource(res); ok {
			return b, inner, nil
		}
		return nil, "", fmt.Errorf("%w: resource %q does not run on this member", errUnknownNode, res)
	}
	if mb.local == nil {
		return nil, "", fmt.Errorf("%w: %q (this member has no local pipeline; name a resource's plugin as <resource>/<plugin>)", errUnknownNode, name)
	}
	return mb.local, name, nil
}

func (mb *memberBackend) Stats() []engine.NodeSnapshot {
	var out []engine.NodeSnapshot
	for _, p := range mb.parts() {
		for _, s := range p.b.Stats() {
			s.Name = p.prefix + s.Name
			out = append(out, s)
		}
	}
	return out
}

func (mb *memberBackend) Generation() int64 {
	if mb.local != nil {
		return mb.local.Generation()
	}
	return 1
}

func (mb *memberBackend) Uptime() time.Duration { return time.Since(mb.started) }

func (mb *memberBackend) Graph() []engine.Edge {
	var out []engine.Edge
	for _, p := range mb.parts() {
		for _, e := range p.b.Graph() {
			e.From, e.To = p.prefix+e.From, p.prefix+e.To
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

func (mb *memberBackend) Checkpoints() map[string]engine.Checkpoint {
	out := map[string]engine.Checkpoint{}
	for _, p := range mb.parts() {
		for k, c := range p.b.Checkpoints() {
			out[p.prefix+k] = c
		}
	}
	return out
}

func (mb *memberBackend) Pause(name string) error {
	b, inner, err := mb.route(name)
	if err != nil {
		return err
	}
	return b.Pause(inner)
}

func (mb *memberBackend) Resume(name string) error {
	b, inner, err := mb.route(name)
	if err != nil {
		return err
	}
	return b.Resume(inner)
}

var errMemberReload = errors.New("a cluster member's pipeline is not reloaded through the API: push the cluster config (dbc config push) or send the member SIGHUP")

func (mb *memberBackend) Reload(*engine.Config) (int64, error) {
	return mb.Generation(), errMemberReload
}

func (mb *memberBackend) Config() *engine.Config {
	if c := mb.m.Config(); c != nil {
		return c
	}
	if mb.local != nil {
		return mb.local.Config()
	}
	return nil
}

func (mb *memberBackend) InFlight() int {
	n := 0
	for _, p := range mb.parts() {
		n += p.b.InFlight()
	}
	return n
}

func (mb *memberBackend) Tap(ctx context.Context, node string, opts engine.TapOptions) (<-chan engine.TapRecord, error) {
	b, inner, err := mb.route(node)
	if err != nil {
		return nil, err
	}
	return b.Tap(ctx, inner, opts)
}

func (mb *memberBackend) Query(name string, params map[string]string) (any, error) {
	b, inner, err := mb.route(name)
	if err != nil {
		return nil, err
	}
	return b.Query(inner, params)
}

func (mb *memberBackend) Command(ctx context.Context, name, cmd string, args []string) (any, error) {
	b, inner, err := mb.route(name)
	if err != nil {
		return nil, err
	}
	c, ok := b.(commander)
	if !ok {
		return nil, fmt.Errorf("%w: %s", engine.ErrNoCommands, name)
	}
	return c.Command(ctx, inner, cmd, args)
}

// metricsSource is what the member's base collector reads: the local
// pipeline's series without a resource label (an empty pipeline when
// there is none).
func (mb *memberBackend) metricsSource() metrics.Source {
	if mb.local != nil {
		return mb.local
	}
	return emptySource{mb.started}
}

type emptySource struct{ started time.Time }

func (emptySource) Stats() []engine.NodeSnapshot { return nil }
func (emptySource) Generation() int64            { return 1 }
func (e emptySource) Uptime() time.Duration      { return time.Since(e.started) }

func (mb *memberBackend) resourceSources() []metrics.Resource {
	var out []metrics.Resource
	for _, name := range mb.m.Resources() {
		if b, ok := mb.m.Resource(name); ok {
			out = append(out, metrics.Resource{Name: name, Source: b})
		}
	}
	return out
}

// resourceServers keeps one sub-server (the single-engine API) per
// running resource engine; a restarted resource gets a new one.
type resourceServers struct {
	mu   sync.Mutex
	subs map[string]*resourceServer
}

type resourceServer struct {
	b Backend
	s *Server
}

func (rs *resourceServers) get(parent *Server, name string, b Backend) *Server {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.subs == nil {
		rs.subs = map[string]*resourceServer{}
	}
	if cur, ok := rs.subs[name]; ok && cur.b == b {
		return cur.s
	} else if ok {
		cur.s.cancel() // ends its taps
	}
	// Drop servers of engines that stopped (their taps end with them).
	for n, cur := range rs.subs {
		if _, ok := parent.member.Resource(n); !ok {
			cur.s.cancel()
			delete(rs.subs, n)
		}
	}
	cfg := parent.cfg
	cfg.Metrics, cfg.UI, cfg.Pprof, cfg.Watch = false, false, false, false
	sub := newServer(cfg, b, Options{Registry: parent.reg, Logger: parent.log.With("resource", name), Version: parent.version})
	rs.subs[name] = &resourceServer{b: b, s: sub}
	return sub
}

func (rs *resourceServers) closeAll() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for n, cur := range rs.subs {
		cur.s.cancel()
		delete(rs.subs, n)
	}
}

// handleCluster serves GET /api/v1/cluster.
func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.member.Status())
}

// handleResources serves GET /api/v1/resources.
func (s *Server) handleResources(w http.ResponseWriter, r *http.Request) {
	names := s.member.Resources()
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": names})
}

// handleResource serves /api/v1/resources/{name}/{rest...}: the
// resource engine's own API at /api/v1/{rest...}.
func (s *Server) handleResource(w http.ResponseWriter, r *http.Request) {
	name, rest := r.PathValue("name"), r.PathValue("rest")
	b, ok := s.member.Resource(name)
	if !ok {
		writeError(w, http.StatusNotFound, "resource %q does not run on this member (running here: %s)", name, strings.Join(s.member.Resources(), ", "))
		return
	}
	sub := s.resources.get(s, name, b)
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/api/v1/" + rest
	r2.URL.RawPath = ""
	sub.mux.ServeHTTP(w, r2)
}
