package admin

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// Status is the body of GET /api/v1/status.
type Status struct {
	Version       string        `json:"version"`
	GoVersion     string        `json:"go_version"`
	PID           int           `json:"pid"`
	StartedAt     time.Time     `json:"started_at"`
	UptimeSeconds float64       `json:"uptime_seconds"`
	Generation    int64         `json:"generation"`
	ConfigFile    string        `json:"config_file,omitempty"`
	Plugins       int           `json:"plugins"`
	InFlight      int           `json:"in_flight"`
	Reloading     bool          `json:"reloading"`
	LastReload    *ReloadResult `json:"last_reload,omitempty"`
	Tap           bool          `json:"tap"`
	Pprof         bool          `json:"pprof"`
	Watch         bool          `json:"watch"`
	// Cluster is a cluster member's state (GET /api/v1/cluster); absent
	// on a single node.
	Cluster any `json:"cluster,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := Status{
		Version: s.version, GoVersion: runtime.Version(), PID: os.Getpid(),
		Generation: s.b.Generation(), ConfigFile: s.path,
		Reloading: s.isReloading(), LastReload: s.last.Load(),
		Tap: s.cfg.Tap.Enabled, Pprof: s.cfg.Pprof, Watch: s.cfg.Watch && s.path != "",
	}
	// While a reload drains a component the supervisor's lock is held:
	// answer from the values last read so that status never hangs.
	if !st.Reloading {
		if up := s.b.Uptime(); up > 0 {
			s.supStart.CompareAndSwap(0, time.Now().Add(-up).UnixNano())
		}
		s.cachedInFlight.Store(int64(s.b.InFlight()))
		if cfg := s.b.Config(); cfg != nil {
			s.cachedPlugins.Store(int64(len(cfg.Plugins)))
		}
	}
	if s.member != nil {
		st.Cluster = s.member.Status()
	}
	st.InFlight = int(s.cachedInFlight.Load())
	st.Plugins = int(s.cachedPlugins.Load())
	if t0 := s.supStart.Load(); t0 != 0 {
		st.StartedAt = time.Unix(0, t0).UTC().Round(time.Millisecond)
		st.UptimeSeconds = time.Since(time.Unix(0, t0)).Seconds()
	}
	writeJSON(w, http.StatusOK, st)
}

// FieldView is a plugin config field in /api/v1/plugins.
type FieldView struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Doc      string   `json:"doc,omitempty"`
	Default  any      `json:"default,omitempty"`
	Required bool     `json:"required,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	Secret   bool     `json:"secret,omitempty"` // never shown (Secret or SecretKeys)
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
}

// SpecView is a registered plugin class in /api/v1/plugins.
type SpecView struct {
	Class       string      `json:"class"`
	Kind        string      `json:"kind"`
	Summary     string      `json:"summary,omitempty"`
	Distributed bool        `json:"distributed,omitempty"`
	Fields      []FieldView `json:"fields"`
	Instances   []string    `json:"instances,omitempty"` // configured plugins of this class
}

func specView(sp *engine.Spec, instances []string) SpecView {
	v := SpecView{Class: sp.Class, Kind: sp.Kind.String(), Summary: sp.Summary, Distributed: sp.Distributed,
		Fields: []FieldView{}, Instances: instances}
	for _, f := range sp.Fields {
		fv := FieldView{Name: f.Name, Type: f.Type.String(), Doc: f.Doc, Required: f.Required, Enum: f.Enum, Secret: f.IsSecret()}
		switch d := f.Default.(type) {
		case nil:
		case time.Duration:
			fv.Default = d.String()
		case fmt.Stringer:
			fv.Default = d.String()
		default:
			fv.Default = d
		}
		if f.HasRange {
			lo, hi := f.Min, f.Max
			if f.Type == engine.TypeDuration {
				lo, hi = lo/1e9, hi/1e9 // seconds
			}
			fv.Min, fv.Max = &lo, &hi
		}
		v.Fields = append(v.Fields, fv)
	}
	return v
}

func (s *Server) instances() map[string][]string {
	out := map[string][]string{}
	if cfg := s.b.Config(); cfg != nil {
		for _, pc := range cfg.Plugins {
			out[pc.Class] = append(out[pc.Class], pc.Name)
		}
	}
	return out
}

func (s *Server) handlePlugins(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := ""
	for k, v := range q {
		if k != "kind" || len(v) != 1 {
			writeError(w, http.StatusBadRequest, "unknown or repeated query parameter %q (only kind=input|filter|output)", k)
			return
		}
		kind = v[0]
		if kind != "input" && kind != "filter" && kind != "output" {
			writeError(w, http.StatusBadRequest, "kind %q: want input, filter or output", kind)
			return
		}
	}
	inst := s.instances()
	out := []SpecView{}
	for _, sp := range s.reg.Specs() {
		if kind != "" && sp.Kind.String() != kind {
			continue
		}
		out = append(out, specView(sp, inst[sp.Class]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": out})
}

func (s *Server) handlePlugin(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	sp, ok := s.reg.Lookup(class)
	if !ok {
		writeError(w, http.StatusNotFound, "no plugin class %q (GET /api/v1/plugins lists them)", class)
		return
	}
	writeJSON(w, http.StatusOK, specView(sp, s.instances()[sp.Class]))
}

// NodeView is one node of /api/v1/dag: its counters plus rates over the
// last second or so and derived values.
type NodeView struct {
	engine.NodeSnapshot
	Column               int     `json:"column"` // longest distance from an input (layout)
	InRate               float64 `json:"in_rate"`
	OutRate              float64 `json:"out_rate"`
	BytesRate            float64 `json:"bytes_rate"`
	DropRate             float64 `json:"drop_rate"`
	DropTotal            uint64  `json:"drop_total"`
	WriteLatencySeconds  float64 `json:"write_latency_seconds,omitempty"` // mean per write
	CheckpointAgeSeconds float64 `json:"checkpoint_age_seconds,omitempty"`
}

// DAG is the body of GET /api/v1/dag.
type DAG struct {
	Generation        int64         `json:"generation"`
	UptimeSeconds     float64       `json:"uptime_seconds"`
	RateWindowSeconds float64       `json:"rate_window_seconds"`
	Nodes             []NodeView    `json:"nodes"`
	Edges             []engine.Edge `json:"edges"`
}

func (s *Server) dag() DAG {
	now := time.Now()
	stats := s.b.Stats()
	edges := s.b.Graph()
	if edges == nil {
		edges = []engine.Edge{}
	}
	rates, window := s.rates.observe(now, stats)
	cols := columns(stats, edges)
	d := DAG{Generation: s.b.Generation(), UptimeSeconds: s.b.Uptime().Seconds(), RateWindowSeconds: window,
		Nodes: make([]NodeView, 0, len(stats)), Edges: edges}
	for _, st := range stats {
		v := NodeView{NodeSnapshot: st, Column: cols[st.Name], DropTotal: st.DropTotal()}
		rt := rates[st.Name]
		v.InRate, v.OutRate, v.BytesRate, v.DropRate = rt.in, rt.out, rt.bytes, rt.drops
		if st.Batches > 0 {
			v.WriteLatencySeconds = float64(st.WriteNanos) / float64(st.Batches) / 1e9
		}
		if st.CkptUnixNano > 0 {
			v.CheckpointAgeSeconds = max(now.Sub(time.Unix(0, st.CkptUnixNano)).Seconds(), 0)
		}
		d.Nodes = append(d.Nodes, v)
	}
	return d
}

// columns assigns each node its longest match-edge distance from an
// input (dead-letter edges put the target one column right).
func columns(stats []engine.NodeSnapshot, edges []engine.Edge) map[string]int {
	col := map[string]int{}
	for _, st := range stats {
		col[st.Name] = 0
	}
	// Relax at most len(nodes) times: the DAG is acyclic.
	for range len(stats) {
		changed := false
		for _, e := range edges {
			if c := col[e.From] + 1; c > col[e.To] {
				col[e.To] = c
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return col
}

func (s *Server) handleDAG(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.dag())
}

// QueueView is one node of /api/v1/queues.
type QueueView struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	QueueLen int     `json:"queue_len"`
	QueueCap int     `json:"queue_cap"`
	Fill     float64 `json:"fill"`
	PoolFree int     `json:"pool_free,omitempty"`
	PoolCap  int     `json:"pool_cap,omitempty"`
	InFlight int     `json:"in_flight,omitempty"`
	Paused   bool    `json:"paused,omitempty"`
	Held     uint64  `json:"held,omitempty"`
}

func (s *Server) handleQueues(w http.ResponseWriter, r *http.Request) {
	out := []QueueView{}
	for _, st := range s.b.Stats() {
		q := QueueView{Name: st.Name, Kind: st.Kind, QueueLen: st.QueueLen, QueueCap: st.QueueCap,
			PoolFree: st.PoolFree, PoolCap: st.PoolCap, InFlight: st.InFlight, Paused: st.Paused, Held: st.Held}
		if st.QueueCap > 0 {
			q.Fill = float64(st.QueueLen) / float64(st.QueueCap)
		}
		out = append(out, q)
	}
	writeJSON(w, http.StatusOK, map[string]any{"in_flight": s.b.InFlight(), "nodes": out})
}

// InputCheckpoint is an input's checkpoint state in /api/v1/checkpoints.
type InputCheckpoint struct {
	Name        string     `json:"name"`
	Offset      int64      `json:"offset"`
	CommittedAt *time.Time `json:"committed_at,omitempty"`
	AgeSeconds  float64    `json:"age_seconds"`
	InFlight    int        `json:"in_flight"`
}

func (s *Server) handleCheckpoints(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	inputs := []InputCheckpoint{}
	for _, st := range s.b.Stats() {
		if st.Kind != engine.KindInput.String() {
			continue
		}
		ic := InputCheckpoint{Name: st.Name, Offset: st.CkptOffset, InFlight: st.InFlight, AgeSeconds: s.b.Uptime().Seconds()}
		if st.CkptUnixNano > 0 {
			t := time.Unix(0, st.CkptUnixNano).UTC()
			ic.CommittedAt = &t
			ic.AgeSeconds = max(now.Sub(t).Seconds(), 0)
		}
		inputs = append(inputs, ic)
	}
	streams := s.b.Checkpoints()
	keys := make([]string, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type streamCP struct {
		Stream string `json:"stream"`
		engine.Checkpoint
	}
	list := make([]streamCP, 0, len(keys))
	for _, k := range keys {
		list = append(list, streamCP{Stream: k, Checkpoint: streams[k]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"inputs": inputs, "streams": list})
}

// nodeKind returns the kind of the running node name, or "".
func (s *Server) nodeKind(name string) string {
	for _, st := range s.b.Stats() {
		if st.Name == name {
			return st.Kind
		}
	}
	return ""
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request, pause bool) {
	name := r.PathValue("name")
	verb := "pause"
	if !pause {
		verb = "resume"
	}
	if err := checkEmptyQuery(r); err != nil {
		writeError(w, http.StatusBadRequest, "%s %s: %v", verb, name, err)
		return
	}
	// Checked first: while a reload drains, reading the pipeline waits for it.
	if s.isReloading() {
		writeError(w, http.StatusConflict, "cannot %s %q: a reload is in progress and plugins may be stopping; retry when it completes", verb, name)
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusConflict, "cannot %s %q: dbusd is shutting down", verb, name)
		return
	}
	switch kind := s.nodeKind(name); kind {
	case "":
		writeError(w, http.StatusNotFound, "cannot %s %q: no running plugin has that name", verb, name)
		return
	case engine.KindInput.String():
	default:
		writeError(w, http.StatusBadRequest, "cannot %s %q: it is a %s; only inputs can be paused", verb, name, kind)
		return
	}
	var err error
	if pause {
		err = s.b.Pause(name)
	} else {
		err = s.b.Resume(name)
	}
	if err != nil {
		// It existed a moment ago: it is being stopped or replaced.
		writeError(w, http.StatusConflict, "cannot %s %q: %v", verb, name, err)
		return
	}
	s.log.Info("input "+verb+"d via API", "input", name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "paused": pause, "generation": s.b.Generation()})
}

// isReloading covers reloads from any trigger: the server's own, and
// (when the supervisor reports it) SIGHUP reloads applied directly.
func (s *Server) isReloading() bool {
	if s.reloading.Load() {
		return true
	}
	r, ok := s.b.(interface{ Reloading() bool })
	return ok && r.Reloading()
}

func checkEmptyQuery(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return fmt.Errorf("unexpected query %q", r.URL.RawQuery)
	}
	return nil
}
