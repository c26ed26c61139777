package window

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
)

type fakeTC = enginetest.FakeContext

func newTestFilter(t testing.TB, vals map[string]any) *Filter {
	t.Helper()
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "alarm", "WindowAlarm", vals)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter)
}

type event struct {
	ts   int64
	host string
	v    float64
}

// scenario: host a sends 10 events a minute, 100 a minute in minutes
// 20-24, 10 again after; host b 10 a minute throughout; minutes 0-39.
func scenario() []event {
	var evs []event
	for m := 0; m < 40; m++ {
		na := 10
		if m >= 20 && m < 25 {
			na = 100
		}
		for k := 0; k < na; k++ {
			evs = append(evs, event{int64(m)*int64(time.Minute) + int64(k)*int64(time.Minute)/int64(na), "a", float64(k)})
		}
		for k := 0; k < 10; k++ {
			evs = append(evs, event{int64(m)*int64(time.Minute) + int64(k)*int64(6*time.Second) + 1, "b", 1})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts < evs[j].ts })
	return evs
}

var alarmConf = map[string]any{
	"group_by": []string{"host"}, "field": "v", "length": "5m", "slide": "1m", "lateness": "30s", "suppress": "10m",
	"rules": []any{
		map[string]any{"name": "spike", "metric": "count", "change": 1.0, "severity": "critical"},
		map[string]any{"name": "high", "metric": "count", "op": ">", "threshold": 200},
		map[string]any{"name": "drop", "metric": "count", "change": -0.5, "min_count": 20},
		map[string]any{"name": "slow", "metric": "p99", "op": ">", "threshold": 1000},
	},
	"sinks": map[string]any{"log": false},
}

// runEvents feeds evs and returns the alerts emitted, as text.
func runEvents(t *testing.T, f *Filter, evs []event) ([]string, *fakeTC) {
	t.Helper()
	tc := &fakeTC{}
	for _, e := range evs {
		p := &pack.Packet{Ts: e.ts}
		p.Attrs.SetString("host", e.host)
		p.Attrs.SetFloat("v", e.v)
		if err := f.Process(tc, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range tc.Emitted {
		var a Alert
		if err := json.Unmarshal(p.Payload, &a); err != nil {
			t.Fatalf("alert payload %q: %v", p.Payload, err)
		}
		out = append(out, fmt.Sprintf("%s/%s/%s/%v", a.Rule, a.Group, a.WindowEnd[11:16], a.Value))
	}
	return out, tc
}

func TestWindowAlarmEventTimeRules(t *testing.T) {
	got, _ := runEvents(t, newTestFilter(t, alarmConf), scenario())
	want := []string{"spike/a/00:21/140", "high/a/00:22/230", "drop/a/00:29/140"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alerts\n got %v\nwant %v", got, want)
	}
}

func TestWindowAlarmOutOfOrderAndLateEventsDeterministic(t *testing.T) {
	want, _ := runEvents(t, newTestFilter(t, alarmConf), scenario())
	// Shuffle within 20 s blocks (less than the 30 s lateness): same alerts.
	evs := scenario()
	r := rand.New(rand.NewSource(7))
	block := int64(20 * time.Second)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts/block < evs[j].ts/block })
	for i := 0; i < len(evs); {
		j := i
		for j < len(evs) && evs[j].ts/block == evs[i].ts/block {
			j++
		}
		r.Shuffle(j-i, func(a, b int) { evs[i+a], evs[i+b] = evs[i+b], evs[i+a] })
		i = j
	}
	// Plus late events: far behind the watermark, they are dropped and
	// counted, and change nothing.
	late := []event{{int64(2 * time.Minute), "a", 1}, {int64(10 * time.Minute), "a", 1e9}}
	evs = append(evs[:len(evs)/2], append(late, evs[len(evs)/2:]...)...)
	f := newTestFilter(t, alarmConf)
	got, tc := runEvents(t, f, evs)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("out-of-order alerts\n got %v\nwant %v", got, want)
	}
	if c := f.Counters(); c.Late != 2 || tc.Dropped["late"] != 2 {
		t.Fatalf("late %d dropped %v, want 2", c.Late, tc.Dropped)
	}
	if c := f.Counters(); c.Events != uint64(len(scenario())) || c.Suppressed == 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestWindowAlarmPercentileRuleAndSummaries(t *testing.T) {
	conf := map[string]any{"field": "lat", "length": "1m", "slide": "1m", "lateness": "0s", "emit_windows": true, "emit_alerts": true,
		"rules": []any{map[string]any{"name": "slow", "metric": "p90", "op": ">=", "threshold": 500, "severity": "critical"}}, "sinks": map[string]any{"log": false}}
	f := newTestFilter(t, conf)
	tc := &fakeTC{}
	for m := 0; m < 3; m++ {
		for k := 0; k < 100; k++ {
			p := &pack.Packet{Ts: int64(m)*int64(time.Minute) + int64(k)}
			lat := float64(k)
			if m == 1 && k >= 85 {
				lat = 1000 // 15 % slow in minute 1: p90 = 1000
			}
			p.Attrs.SetFloat("lat", lat)
			f.Process(tc, p)
		}
	}
	if err := f.FlushFilter(tc); err != nil {
		t.Fatal(err)
	}
	var alerts, windows []string
	for _, p := range tc.Emitted {
		typ, _ := p.Attrs.Str("type")
		if string(typ) == "alert" {
			alerts = append(alerts, string(p.Payload))
		} else {
			c, _ := p.Attrs.Get("count")
			p90, _ := p.Attrs.Get("p90")
			pf, _ := p90.Float()
			windows = append(windows, fmt.Sprintf("%d/%.0f", c.I, pf))
		}
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0], `"window_end":"1970-01-01T00:02:00Z"`) {
		t.Fatalf("alerts %v", alerts)
	}
	if fmt.Sprint(windows) != "[100/89 100/1000]" {
		t.Fatalf("window summaries %v", windows)
	}
}

func TestWindowAlarmConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"length": "5m", "slide": "2m", "emit_windows": true}, "multiple of slide"},
		{map[string]any{}, "would do nothing"},
		{map[string]any{"rules": []any{map[string]any{"name": "x", "metric": "p999x", "threshold": 1}}}, "unknown metric"},
		{map[string]any{"rules": []any{map[string]any{"name": "x", "metric": "sum", "threshold": 1}}}, "needs the filter's field"},
		{map[string]any{"rules": []any{map[string]any{"name": "x", "threshold": 1, "change": 1}}}, "exactly one"},
		{map[string]any{"rules": []any{map[string]any{"name": "x", "threshold": 1, "bogus": 1}}}, "bogus"},
		{map[string]any{"emit_windows": true, "sinks": map[string]any{"email": map[string]any{"smtp": "h:25", "from": "a@b", "to": []string{"c@d"}, "quiet_hours": map[string]any{"from": "25:00", "to": "07:00"}}}}, "quiet_hours"},
	} {
		c, err := engine.NewConf(reg, "w", "WindowAlarm", tc.vals)
		if err == nil {
			_, err = newFilter(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
}

func TestWindowAlarmEmailBatchingQuietHours(t *testing.T) {
	q := &quietHours{MinSeverity: "critical", loc: time.UTC}
	q.from, _ = parseClock("22:00")
	q.to, _ = parseClock("07:00")
	type mail struct{ subject, body string }
	var sent []mail
	m := &mailBatcher{conf: &emailConfig{Interval: time.Minute, Subject: "dbus", QuietHours: q, To: []string{"ops@x"}}, pending: map[string][]*Alert{},
		send: func(_ *emailConfig, s, b string) error { sent = append(sent, mail{s, b}); return nil }}
	night := time.Date(2024, 5, 1, 23, 0, 0, 0, time.UTC)
	m.add(&Alert{Rule: "r1", Severity: "warning"})
	m.add(&Alert{Rule: "r2", Severity: "critical"})
	m.add(&Alert{Rule: "r3", Severity: "warning"})
	m.flush(night, false)
	if len(sent) != 1 || sent[0].subject != "dbus: 1 critical" {
		t.Fatalf("during quiet hours: %v", sent)
	}
	m.flush(night.Add(30*time.Second), false) // not due yet
	m.flush(night.Add(5*time.Hour), false)    // 04:00, still quiet
	if len(sent) != 1 {
		t.Fatalf("warnings sent during quiet hours: %v", sent)
	}
	m.flush(night.Add(8*time.Hour+time.Minute), false) // 07:01
	if len(sent) != 2 || sent[1].subject != "dbus: 2 warning" || !strings.Contains(sent[1].body, "r1") || !strings.Contains(sent[1].body, "r3") {
		t.Fatalf("after quiet hours: %v", sent)
	}
	if !q.quiet(time.Date(2024, 5, 1, 6, 59, 0, 0, time.UTC)) || q.quiet(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Fatal("quiet hours wrapping midnight")
	}
}

func TestWindowAlarmWebhookSink(t *testing.T) {
	var mu sync.Mutex
	var got []Alert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Token") != "t" || json.NewDecoder(r.Body).Decode(&a) != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer srv.Close()
	conf := map[string]any{}
	for k, v := range alarmConf {
		conf[k] = v
	}
	conf["sinks"] = map[string]any{"log": false, "webhook": map[string]any{"url": srv.URL, "headers": map[string]any{"X-Token": "t"}}}
	f := newTestFilter(t, conf)
	f.Start(nil)
	runEvents(t, f, scenario())
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0].Rule != "spike" || got[2].Rule != "drop" {
		t.Fatalf("webhook got %+v", got)
	}
}
