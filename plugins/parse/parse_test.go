package parse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

type fakeFC = enginetest.FakeContext

func newTestFilter(t testing.TB, vals map[string]any) *Filter {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "parse", "ParseFilter", vals)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter)
}

func attrsOf(p *pack.Packet) map[string]string {
	m := map[string]string{}
	for i := 0; i < p.Attrs.Len(); i++ {
		a := p.Attrs.At(i)
		m[string(a.K)] = a.Kind.String() + ":" + string(a.AppendText(nil))
	}
	return m
}

func process(t testing.TB, f *Filter, line string) (*pack.Packet, *fakeFC) {
	t.Helper()
	fc := &fakeFC{}
	p := &pack.Packet{Payload: []byte(line)}
	if err := f.Process(fc, p); err != nil {
		return nil, fc
	}
	return p, fc
}

func TestParseJSONTypedAttrs(t *testing.T) {
	f := newTestFilter(t, map[string]any{"format": "json"})
	p, fc := process(t, f, `{"msg":"a \"q\" \u00e9\ud83d\ude00\n", "status": 200, "lat": 1.5e2, "neg": -7, "big": 18446744073709551616,
		"ok": true, "no": false, "nil": null, "http": {"method": "GET", "h": {"x": 1}}, "tags": ["a", {"b": [1,2]}], "empty": {}}`)
	if len(fc.Emitted) != 1 {
		t.Fatalf("not emitted: %+v", fc)
	}
	got := attrsOf(p)
	want := map[string]string{
		"msg": "string:a \"q\" é😀\n", "status": "int:200", "lat": "float:150", "neg": "int:-7", "big": "float:1.8446744073709552e+19",
		"ok": "bool:true", "no": "bool:false", "http.method": "string:GET", "http.h.x": "int:1", "tags": `string:["a", {"b": [1,2]}]`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("attrs\n got %v\nwant %v", got, want)
	}
}

func TestParseJSONFailuresCountedAndTagged(t *testing.T) {
	f := newTestFilter(t, map[string]any{"format": "json"})
	bad := []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":tru}`, `{"a":"x}`, `{"a":1} x`, `{"a":"\q"}`, "{\"a\":\"\x01\"}", `{"a":[1,}`}
	for _, line := range bad {
		p, fc := process(t, f, line)
		if len(fc.Emitted) != 1 {
			t.Fatalf("%q: not emitted", line)
		}
		if v, ok := p.Attrs.Str("parse_error"); !ok || !strings.HasPrefix(string(v), "json: ") {
			t.Fatalf("%q: not tagged: %v", line, attrsOf(p))
		}
	}
	if c := f.Counters(); c.Failed != uint64(len(bad)) || c.Parsed != 0 {
		t.Fatalf("counters %+v", c)
	}
	fd := newTestFilter(t, map[string]any{"format": "json", "on_error": "drop"})
	_, fc := process(t, fd, `nope`)
	if len(fc.DropOrder) != 1 || fc.DropOrder[0] != "parse_error" {
		t.Fatalf("drop mode: %+v", fc)
	}
}

func TestParseLogfmtAndTypes(t *testing.T) {
	f := newTestFilter(t, map[string]any{"format": "logfmt", "types": map[string]any{"status": "int", "dur": "float", "cached": "bool"}, "prefix": "l_"})
	p, _ := process(t, f, `level=info msg="hello \"world\"" status=404 dur=0.25 cached empty=`)
	got := attrsOf(p)
	want := map[string]string{"l_level": "string:info", "l_msg": `string:hello "world"`, "l_status": "int:404", "l_dur": "float:0.25", "l_cached": "bool:true", "l_empty": "string:"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("attrs\n got %v\nwant %v", got, want)
	}
	p, _ = process(t, f, `status=abc`)
	if v, _ := p.Attrs.Str("parse_error"); !strings.Contains(string(v), "not an integer") {
		t.Fatalf("bad int not reported: %v", attrsOf(p))
	}
}

func TestParseRegexAccessLogWithTime(t *testing.T) {
	f := newTestFilter(t, map[string]any{
		"format":      "regex",
		"pattern":     `^(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d+) (?P<bytes>\d+)`,
		"types":       map[string]any{"status": "int", "bytes": "int"},
		"time_field":  "ts",
		"time_layout": "02/Jan/2006:15:04:05 -0700",
	})
	line := `10.1.2.3 - - [10/Oct/2023:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326`
	p, _ := process(t, f, line)
	got := attrsOf(p)
	if got["ip"] != "string:10.1.2.3" || got["status"] != "int:200" || got["bytes"] != "int:2326" || got["path"] != "string:/a.gif" {
		t.Fatalf("attrs %v", got)
	}
	want, _ := time.Parse("02/Jan/2006:15:04:05 -0700", "10/Oct/2023:13:55:36 -0700")
	if p.Ts != want.UnixNano() {
		t.Fatalf("ts %d want %d", p.Ts, want.UnixNano())
	}
	// Cached second path gives the same.
	p2, _ := process(t, f, line)
	if p2.Ts != p.Ts {
		t.Fatal("cached time differs")
	}
	p3, _ := process(t, f, "garbage")
	if v, _ := p3.Attrs.Str("parse_error"); !strings.Contains(string(v), "does not match") {
		t.Fatalf("no match not tagged: %v", attrsOf(p3))
	}
}

func TestParseTimestampLayouts(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	for _, tc := range []struct {
		layout, zone, json string
		want               time.Time
	}{
		{"rfc3339", "UTC", `"2024-02-29T23:59:59.123456789Z"`, time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC)},
		{"rfc3339", "UTC", `"2024-02-29 23:59:59.5+02:00"`, time.Date(2024, 2, 29, 21, 59, 59, 5e8, time.UTC)},
		{"rfc3339", "UTC", `"1969-12-31T23:59:59-00:30"`, time.Date(1970, 1, 1, 0, 29, 59, 0, time.UTC)},
		{"rfc3339", "America/New_York", `"2024-07-01T12:00:00"`, time.Date(2024, 7, 1, 12, 0, 0, 0, ny)},
		{"unix", "UTC", `1700000000`, time.Unix(1700000000, 0)},
		{"unix", "UTC", `1700000000.25`, time.Unix(1700000000, 25e7)},
		{"unix_ms", "UTC", `1700000000123`, time.UnixMilli(1700000000123)},
		{"2006-01-02 15:04:05", "America/New_York", `"2024-01-15 08:00:00"`, time.Date(2024, 1, 15, 8, 0, 0, 0, ny)},
	} {
		f := newTestFilter(t, map[string]any{"format": "json", "time_field": "t", "time_layout": tc.layout, "time_zone": tc.zone})
		p, _ := process(t, f, `{"t":`+tc.json+`}`)
		if p.Ts != tc.want.UnixNano() {
			t.Fatalf("%s %s: ts %v want %v (%v)", tc.layout, tc.json, time.Unix(0, p.Ts).UTC(), tc.want.UTC(), attrsOf(p))
		}
	}
	f := newTestFilter(t, map[string]any{"format": "json", "time_field": "t"})
	for _, bad := range []string{`{"t":"2024-13-01T00:00:00Z"}`, `{"t":"yesterday"}`, `{"x":1}`} {
		p, _ := process(t, f, bad)
		if _, ok := p.Attrs.Str("parse_error"); !ok {
			t.Fatalf("%s: bad time not reported", bad)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"format": "regex"}, "needs a pattern"},
		{map[string]any{"format": "regex", "pattern": "("}, "missing closing"},
		{map[string]any{"format": "regex", "pattern": "a+"}, "no named group"},
		{map[string]any{"format": "json", "types": map[string]any{"a": "date"}}, "unknown type"},
		{map[string]any{"format": "json", "time_field": "t", "time_layout": "yyyy-mm-dd"}, "not a Go time layout"},
		{map[string]any{"format": "json", "time_field": "t", "time_zone": "Mars/Base"}, "time_zone"},
	} {
		c, err := engine.NewConf(reg, "p", "ParseFilter", tc.vals)
		if err == nil {
			_, err = newFilter(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
}

func TestParseJSONNoAllocs(t *testing.T) {
	f := newTestFilter(t, map[string]any{"format": "json", "time_field": "ts"})
	fc := &fakeFC{Emitted: make([]*pack.Packet, 0, 4)}
	p := &pack.Packet{Payload: []byte(`{"ts":"2024-05-01T10:00:00.123Z","level":"info","msg":"GET \/x done","status":200,"dur":0.003,"user":{"id":42,"name":"bob"}}`)}
	n := testing.AllocsPerRun(1000, func() {
		fc.Reset()
		p.Attrs.Reset()
		if err := f.Process(fc, p); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per JSON line", n)
	}
	lf := newTestFilter(t, map[string]any{"format": "logfmt"})
	p.Payload = []byte(`level=info msg="a b" status=200`)
	n = testing.AllocsPerRun(1000, func() {
		fc.Reset()
		p.Attrs.Reset()
		lf.Process(fc, p)
	})
	if n != 0 {
		t.Fatalf("%v allocations per logfmt line", n)
	}
}

// TestParseFailuresRoutedToDeadLetter runs a pipeline: good lines reach
// the output, bad ones the filter's dead_letter output; none is lost.
func TestParseFailuresRoutedToDeadLetter(t *testing.T) {
	good, dead := mock.NewRecorder(), mock.NewRecorder()
	reg := engine.NewRegistry()
	mock.Register(reg)
	Register(reg)
	mock.RegisterRecorder(reg, "Good", good)
	mock.RegisterRecorder(reg, "Dead", dead)
	// MockInput payloads "0:<seq>xxxx" are not JSON; a MockFilter in
	// modify mode cannot make them JSON either, so parse logfmt from a
	// source that fails on every packet whose payload has no '=': all.
	cfg, err := engine.Parse("t.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput, count: 1000, payload: 8}
filters:
  - {name: p, class: ParseFilter, format: regex, pattern: '^0:(?P<seq>\d*[05])x*$', on_error: dead_letter, dead_letter: dlq, match: gen}
outputs:
  - {name: out, class: Good, match: p}
  - {name: dlq, class: Dead}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	store := engine.NewMemoryStore()
	e, err := engine.New(cfg, engine.Options{Registry: reg, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if good.Len() != 200 || dead.Len() != 800 {
		t.Fatalf("good %d dead %d, want 200 and 800", good.Len(), dead.Len())
	}
	for _, a := range dead.Attrs() {
		if !strings.Contains(a["dbus_error"], "does not match") {
			t.Fatalf("dead-lettered packet lacks the reason: %v", a)
		}
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != 1000 {
		t.Fatalf("checkpoint %d, want 1000: a routed failure must not hold the stream", cp.Offset)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,"x",{"c":null}]},"d":"\u00e9"}`, `{"a":-1.5e-3}`, `{`, `{"a":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var jp = jsonParser{maxDepth: 64}
		var attrs pack.Attrs
		err := jp.parse(b, &attrs, "")
		var v map[string]any
		if jerr := json.Unmarshal(b, &v); jerr == nil && v != nil && err != nil && !strings.Contains(err.Error(), "deep") {
			t.Fatalf("valid JSON object %q rejected: %v", b, err)
		}
	})
}
