package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

// sinks collects what test pipelines delivered: sink name -> resource ->
// sequence numbers acked.
var sinks = struct {
	mu sync.Mutex
	m  map[string]*sink
}{m: map[string]*sink{}}

type sink struct {
	mu    sync.Mutex
	seen  map[string]map[int64]int // resource -> seq -> times delivered
	times map[string][]time.Time   // resource -> when each record was written
}

// lastWrite returns when the last record of res was written (zero: never).
func (s *sink) lastWrite(res string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.times[res]
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[len(ts)-1]
}

// writesAfter counts the records of res written after t.
func (s *sink) writesAfter(res string, t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.times[res] {
		if w.After(t) {
			n++
		}
	}
	return n
}

func newSink(name string) *sink {
	s := &sink{seen: map[string]map[int64]int{}}
	sinks.mu.Lock()
	sinks.m[name] = s
	sinks.mu.Unlock()
	return s
}

// missing returns, per resource, the sequence numbers below upTo never
// delivered, and the highest sequence delivered.
func (s *sink) highest(res string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := int64(-1)
	for q := range s.seen[res] {
		h = max(h, q)
	}
	return h
}

func (s *sink) gaps(res string, upTo int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for q := int64(0); q < upTo; q++ {
		if s.seen[res][q] == 0 {
			out = append(out, q)
		}
	}
	return out
}

// testInput emits "<resource>:<seq>" at a rate, resuming from its
// checkpoint (offset = next seq).
type testInput struct {
	res  string
	rate int64
}

func (in *testInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	next := int64(0)
	if cp, ok := s.Resume(); ok {
		next = cp.Offset
	}
	t := time.NewTicker(time.Second / time.Duration(in.rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = append(p.Payload[:0], in.res...)
		p.Payload = append(p.Payload, ':')
		p.Payload = strconv.AppendInt(p.Payload, next, 10)
		p.Pos.Offset = next + 1
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
		if err := ic.Flush(ctx); err != nil {
			return nil
		}
		next++
	}
}

type testOutput struct{ s *sink }

func (o *testOutput) Write(ctx context.Context, batch []*pack.Packet) error {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	for _, p := range batch {
		str := string(p.Payload)
		i := strings.LastIndexByte(str, ':')
		seq, _ := strconv.ParseInt(str[i+1:], 10, 64)
		m := o.s.seen[str[:i]]
		if m == nil {
			m = map[int64]int{}
			o.s.seen[str[:i]] = m
		}
		m[seq]++
		if o.s.times == nil {
			o.s.times = map[string][]time.Time{}
		}
		o.s.times[str[:i]] = append(o.s.times[str[:i]], time.Now())
	}
	return nil
}

func testRegistry() *engine.Registry {
	reg := engine.NewRegistry()
	mock.Register(reg)
	reg.MustRegister(engine.Spec{Class: "ClusterTestInput", Kind: engine.KindInput, Distributed: true,
		Fields: []engine.Field{
			{Name: "resource", Type: engine.TypeString, Default: "none"},
			{Name: "rate", Type: engine.TypeInt, Default: int64(200)},
		},
		NewInput: func(c *engine.Conf) (engine.Input, error) {
			return &testInput{res: c.String("resource"), rate: c.Int("rate")}, nil
		}})
	reg.MustRegister(engine.Spec{Class: "ClusterTestLocal", Kind: engine.KindInput,
		NewInput: func(c *engine.Conf) (engine.Input, error) { return &testInput{res: "local", rate: 10}, nil }})
	reg.MustRegister(engine.Spec{Class: "ClusterTestSink", Kind: engine.KindOutput,
		Fields: []engine.Field{{Name: "sink", Type: engine.TypeString, Required: true}},
		NewOutput: func(c *engine.Conf) (engine.Output, error) {
			sinks.mu.Lock()
			defer sinks.mu.Unlock()
			s := sinks.m[c.String("sink")]
			if s == nil {
				return nil, fmt.Errorf("no sink %q", c.String("sink"))
			}
			return &testOutput{s: s}, nil
		}})
	return reg
}

func pipelineYAML(sinkName string) string {
	return fmt.Sprintf(`engine:
  checkpoint_interval: 50ms
  shutdown_timeout: 5s
  pool: 256
  batch: 16
inputs:
  - name: src
    class: ClusterTestInput
  - name: gen
    class: MockInput
    rate: 100
outputs:
  - name: out
    class: ClusterTestSink
    match: src
    sink: %s
  - name: null
    class: MockOutput
    match: gen
`, sinkName)
}

type harness struct {
	t       *testing.T
	zk      []string
	cluster string
	reg     *engine.Registry
	pcfg    *engine.Config
	sink    *sink
	admin   *Admin
	log     *slog.Logger
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	servers := testenv.ZooKeeper(t)
	name := fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1e9, strings.ReplaceAll(strings.ToLower(t.Name()[11:]), "/", "-"))
	if len(name) > 60 {
		name = name[:60]
	}
	h := &harness{t: t, zk: servers, cluster: name, reg: testRegistry()}
	h.sink = newSink(name)
	var err error
	h.pcfg, err = engine.Parse("test.yaml", []byte(pipelineYAML(name)), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	lvl := slog.LevelWarn
	if os.Getenv("DBUS_TEST_VERBOSE") != "" {
		lvl = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	h.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
	h.admin, err = Dial(context.Background(), servers, AdminOptions{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.admin.Registry = h.reg
	t.Cleanup(h.admin.Close)
	if err := h.admin.CreateCluster(name); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) config(member string) *Config {
	c := &Config{Name: h.cluster, Member: member, ZooKeeper: h.zk, SessionTimeout: 2 * time.Second,
		ReleaseTimeout: 2 * time.Second, ConnectTimeout: 3 * time.Second, LocalDir: h.t.TempDir()}
	if err := c.fill(); err != nil {
		h.t.Fatal(err)
	}
	return c
}

type running struct {
	m      *Member
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

func (h *harness) start(cfg *Config, opts Options) *running {
	h.t.Helper()
	if opts.Runner == nil {
		opts.Runner = NewEngineRunner(h.pcfg, h.reg, nil, h.log)
	}
	opts.Logger = h.log
	opts.RetryBackoff = 300 * time.Millisecond
	m, err := Join(context.Background(), cfg, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	h.t.Cleanup(func() { r.stop() })
	return r
}

func (h *harness) addResources(n int, input string) []string {
	h.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("res-%02d", i)
		spec := ResourceSpec{ID: id, Input: input, Config: map[string]any{"resource": id}}
		if input == "gen" {
			spec.Config = map[string]any{"payload": 64 + i}
		}
		if err := h.admin.AddResource(h.cluster, spec); err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// owners returns resource -> member as listed by running members (what
// actually runs), and the members' running lists.
func (h *harness) runningBy() map[string]string {
	ms, err := h.admin.Members(h.cluster)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		for _, id := range m.Running {
			out[id] = m.Name
		}
	}
	return out
}

func (h *harness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	testenv.Eventually(h.t, d, cond, "waiting for %s", what)
}

// advance waits until every resource in ids delivered n sequences past
// what it had when called: they run, and their checkpoints follow.
func (h *harness) advance(ids []string, n int64, d time.Duration) {
	h.t.Helper()
	from := map[string]int64{}
	for _, id := range ids {
		from[id] = h.sink.highest(id)
	}
	h.waitFor(fmt.Sprintf("every resource to deliver %d more", n), d, func() bool {
		for _, id := range ids {
			if h.sink.highest(id) < from[id]+n {
				return false
			}
		}
		return true
	})
}

func countBy(m map[string]string) map[string]int {
	out := map[string]int{}
	for _, v := range m {
		out[v]++
	}
	return out
}
