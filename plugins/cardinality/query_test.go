package cardinality

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

func TestCardinalityQuery(t *testing.T) {
	f := newTestFilter(t, map[string]any{"field": "user", "key_by": []string{"app"}, "periods": []string{"day", "month"}, "keep": 10})
	var _ engine.Queryable = f
	tc := &fakeTC{}
	day1 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	p := &pack.Packet{}
	add := func(day int, app string, from, to int) {
		for i := from; i < to; i++ {
			p.Attrs.Reset()
			p.Ts = day1.Add(time.Duration(day) * 24 * time.Hour).UnixNano()
			p.Attrs.SetString("app", app)
			p.Attrs.SetInt("user", int64(i))
			f.Process(tc, p)
		}
	}
	add(0, "web", 0, 1000)   // May 1: 0..999
	add(1, "web", 500, 2000) // May 2: 500..1999
	add(2, "web", 0, 100)    // May 3: nothing new
	add(1, "api", 0, 10)
	query := func(params map[string]string) *QueryResult {
		t.Helper()
		v, err := f.Query(params)
		if err != nil {
			t.Fatalf("query %v: %v", params, err)
		}
		return v.(*QueryResult)
	}
	near := func(got uint64, want int) bool { return math.Abs(float64(got)-float64(want)) <= 0.01*float64(want) }

	all := query(nil)
	if len(all.Counts) != 6 || all.Filter != "dau" { // web: 3 days + May; api: 1 day + May
		t.Fatalf("all counts %+v", all.Counts)
	}
	r := query(map[string]string{"key": "web", "period": "day", "at": "2024-05-02"})
	if len(r.Counts) != 1 || r.Counts[0].Bucket != "2024-05-02T00:00:00Z" || !near(r.Counts[0].Count, 1500) {
		t.Fatalf("web May 2: %+v", r.Counts)
	}
	r = query(map[string]string{"period": "month", "at": "2024-05-31T23:00:00Z"})
	if len(r.Counts) != 2 || r.Counts[0].Key != "api" || r.Counts[0].Count != 10 || !near(r.Counts[1].Count, 2000) {
		t.Fatalf("month counts %+v", r.Counts)
	}
	// Merged range: May 1 and 2 of web (not May 3) is 2000 users.
	r = query(map[string]string{"key": "web", "period": "day", "from": "2024-05-01", "to": "2024-05-03"})
	if len(r.Merged) != 1 || r.Merged[0].Buckets != 2 || !near(r.Merged[0].Count, 2000) || r.Counts != nil {
		t.Fatalf("merged %+v", r.Merged)
	}
	// Open-ended range, every key of a period: May 2 and 3 of web, 500..1999 and 0..99.
	r = query(map[string]string{"period": "day", "from": "2024-05-02"})
	if len(r.Merged) != 2 || r.Merged[0].Key != "api" || r.Merged[1].Buckets != 2 || !near(r.Merged[1].Count, 1600) {
		t.Fatalf("open range %+v", r.Merged)
	}
	if r := query(map[string]string{"key": "nope"}); len(r.Counts) != 0 {
		t.Fatalf("unknown key: %+v", r.Counts)
	}
	b, _ := json.Marshal(query(map[string]string{"key": "api", "period": "day"}))
	if !strings.Contains(string(b), `"counts":[{"key":"api","period":"day","bucket":"2024-05-02T00:00:00Z","count":10}]`) {
		t.Fatalf("json %s", b)
	}
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"bogus": "1"}, `unknown parameter "bogus"`},
		{map[string]string{"period": "hour"}, "not counted"},
		{map[string]string{"at": "yesterday"}, "bad time"},
		{map[string]string{"to": "2024-05-01"}, "to needs from"},
		{map[string]string{"from": "2024-05-02", "to": "2024-05-01"}, "after from"},
		{map[string]string{"from": "2024-05-02", "at": "2024-05-01"}, "either at or from"},
	} {
		if _, err := f.Query(tc.params); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.params, err, tc.want)
		}
	}
}

// Query runs while Process adds ids (go test -race).
func TestCardinalityQueryConcurrent(t *testing.T) {
	f := newTestFilter(t, map[string]any{"field": "user"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if _, err := f.Query(map[string]string{"period": "day"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	tc := &fakeTC{}
	p := &pack.Packet{Ts: time.Now().UnixNano()}
	for i := 0; i < 20000; i++ {
		p.Attrs.SetString("user", "u"+strconv.Itoa(i))
		f.Process(tc, p)
	}
	<-done
}

// sliceInput emits one packet per setter, then finishes (a replay).
type sliceInput = enginetest.SliceInput

// Counts are emitted at shutdown though no tick ran (emit_interval 1h),
// and the state file is written.
func TestCardinalityShutdownEmitsPendingCounts(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	rec := mock.NewRecorder()
	if err := mock.RegisterRecorder(reg, "Rec", rec); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var set []func(p *pack.Packet)
	for i := 0; i < 300; i++ {
		set = append(set, func(p *pack.Packet) {
			p.Ts = day.Add(time.Duration(i) * time.Minute).UnixNano()
			p.Attrs.SetInt("user", int64(i%100))
		})
	}
	reg.MustRegister(engine.Spec{Class: "Slice", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return &sliceInput{Set: set}, nil }})
	dir := t.TempDir()
	cfg, err := engine.Parse("test.yaml", []byte(`
inputs:
  - {name: in, class: Slice}
filters:
  - {name: dau, class: Cardinality, match: [in], field: user, periods: [day], emit_interval: 1h, save_interval: 1h, state_dir: `+strconv.Quote(dir)+`}
outputs:
  - {name: out, class: Rec, match: [dau]}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	attrs := rec.Attrs()
	if len(attrs) != 1 || attrs[0]["type"] != "cardinality" || attrs[0]["bucket"] != "2024-05-01T00:00:00Z" || attrs[0]["count"] != "100" {
		t.Fatalf("at shutdown recorded %v, want one count of 100", attrs)
	}
	g := newTestFilter(t, map[string]any{"field": "user", "periods": []string{"day"}, "state_dir": dir})
	if n, ok := g.Count("", "day", day); !ok || n != 100 {
		t.Fatalf("state after shutdown: %d %v", n, ok)
	}
}

// TestCardinalityStateSavedWithCheckpoint: without a state_dir, the
// sketches live in the engine's checkpoint store (engine.Stateful): a
// second run over new users counts the first run's users too.
func TestCardinalityStateSavedWithCheckpoint(t *testing.T) {
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	store := engine.NewMemoryStore()
	runUsers := func(from, to int) *engine.Engine {
		reg := engine.NewRegistry()
		Register(reg)
		mock.Register(reg)
		var set []func(p *pack.Packet)
		for i := from; i < to; i++ {
			set = append(set, func(p *pack.Packet) {
				p.Ts = day.Add(time.Minute).UnixNano()
				p.Attrs.SetInt("user", int64(i))
			})
		}
		reg.MustRegister(engine.Spec{Class: "Slice", Kind: engine.KindInput,
			NewInput: func(*engine.Conf) (engine.Input, error) { return &sliceInput{Set: set}, nil }})
		cfg, err := engine.Parse("test.yaml", []byte(`
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: in, class: Slice}
filters:
  - {name: dau, class: Cardinality, match: [in], field: user, periods: [day], emit_interval: 1h}
outputs:
  - {name: out, class: MockOutput, match: [dau]}
`), reg)
		if err != nil {
			t.Fatal(err)
		}
		e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return e
	}
	runUsers(0, 500)
	if _, ok, _ := store.Load("state/dau"); !ok {
		t.Fatalf("no state saved in the checkpoint store")
	}
	e := runUsers(400, 800) // 100 users seen before, 300 new
	got, err := e.Query("dau", map[string]string{"period": "day", "at": day.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	// Without the saved sketch the estimate would be near 400.
	b, _ := json.Marshal(got)
	var n float64
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return r < '0' || r > '9' }) {
		if v, err := strconv.ParseFloat(f, 64); err == nil && v > 300 && v < 1000 {
			n = v
		}
	}
	if math.Abs(n-800) > 8 {
		t.Fatalf("after restart the estimate is %v (%s), want 800 distinct users within 1 %%", n, b)
	}
}
