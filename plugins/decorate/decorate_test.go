package decorate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/enginetest"
	"github.com/dbus-project/dbus/pack"
)

type fakeFC = enginetest.FakeContext

const geoCSV = `start_ip,end_ip,country,city
# comment
10.0.0.0,10.0.255.255,FR,Paris
192.168.1.0,192.168.1.255,DE,
2001:db8::,2001:db8::ffff,JP,Tokyo
`

func newTestFilter(t testing.TB, vals map[string]any) *Filter {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "geo.csv")
	os.WriteFile(db, []byte(geoCSV), 0o644)
	if g, ok := vals["geoip"].(map[string]any); ok {
		g["db"] = db
	}
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "deco", "DecorateFilter", vals)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*Filter)
}

func attrs(p *pack.Packet) string {
	var parts []string
	for i := 0; i < p.Attrs.Len(); i++ {
		a := p.Attrs.At(i)
		parts = append(parts, string(a.K)+"="+string(a.AppendText(nil)))
	}
	return strings.Join(parts, " ")
}

func testConf() map[string]any {
	return map[string]any{
		"geoip":     map[string]any{"field": "client"},
		"rename":    map[string]any{"client": "ip", "lvl": "level"},
		"delete":    []string{"secret"},
		"lowercase": []string{"level"},
		"trim":      []string{"path"},
		"buckets":   []any{map[string]any{"field": "ms", "bounds": []float64{100, 500, 1000}}},
		"currency":  map[string]any{"amount": "price", "currency": "cur", "default": "USD", "target": "price_eur", "rates": map[string]any{"USD": 0.9, "EUR": 1, "JPY": 0.006}},
		"index":     map[string]any{"prefix": "web-", "period": "day"},
	}
}

func TestDecorateAllSteps(t *testing.T) {
	f := newTestFilter(t, testConf())
	fc := &fakeFC{}
	ts := time.Date(2024, 5, 1, 23, 59, 0, 0, time.UTC).UnixNano()
	for _, tc := range []struct {
		set  func(a *pack.Attrs)
		want string
	}{
		{func(a *pack.Attrs) {
			a.SetString("client", "10.0.3.4")
			a.SetString("lvl", "WARN")
			a.SetString("secret", "x")
			a.SetString("path", "  /a ")
			a.SetInt("ms", 500)
			a.SetFloat("price", 10)
		}, "ip=10.0.3.4 level=warn path=/a ms=500 price=10 geo_country=FR geo_city=Paris ms_bucket=500-1000 price_eur=9 _index=web-2024.05.01"},
		{func(a *pack.Attrs) {
			a.SetString("client", "2001:db8::1")
			a.SetString("ms", "1500")
			a.SetInt("price", 1000)
			a.SetString("cur", "JPY")
		}, "ip=2001:db8::1 ms=1500 price=1000 cur=JPY geo_country=JP geo_city=Tokyo ms_bucket=>=1000 price_eur=6 _index=web-2024.05.01"},
		{func(a *pack.Attrs) {
			a.SetString("client", "8.8.8.8")
			a.SetInt("ms", 5)
			a.SetString("cur", "XXX")
			a.SetInt("price", 1)
		}, "ip=8.8.8.8 ms=5 cur=XXX price=1 ms_bucket=<100 _index=web-2024.05.01"},
	} {
		p := &pack.Packet{Ts: ts}
		tc.set(&p.Attrs)
		if err := f.Process(fc, p); err != nil {
			t.Fatal(err)
		}
		if got := attrs(p); got != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
	}
	if c := f.Counters(); c.Skipped != 2 {
		t.Fatalf("counters %+v: unknown IP and currency are skips", c)
	}
}

func TestDecorateIndexPeriods(t *testing.T) {
	for period, want := range map[string]string{"day": "l-2024.12.30", "week": "l-2025.w01", "month": "l-2024.12"} {
		f := newTestFilter(t, map[string]any{"index": map[string]any{"prefix": "l-", "period": period}})
		p := &pack.Packet{Ts: time.Date(2024, 12, 30, 10, 0, 0, 0, time.UTC).UnixNano()}
		f.Process(&fakeFC{}, p)
		if v, _ := p.Attrs.Str("_index"); string(v) != want {
			t.Fatalf("%s: %s, want %s", period, v, want)
		}
	}
}

func TestDecorateNoAllocs(t *testing.T) {
	f := newTestFilter(t, testConf())
	fc := &fakeFC{Emitted: make([]*pack.Packet, 0, 1)}
	p := &pack.Packet{Ts: time.Now().UnixNano()}
	n := testing.AllocsPerRun(1000, func() {
		fc.Emitted = fc.Emitted[:0]
		p.Attrs.Reset()
		p.Attrs.SetString("client", "10.0.3.4")
		p.Attrs.SetString("lvl", "INFO")
		p.Attrs.SetInt("ms", 120)
		p.Attrs.SetFloat("price", 3)
		p.Attrs.SetString("cur", "EUR")
		f.Process(fc, p)
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}

func TestDecorateConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("10.0.0.9,10.0.0.1,FR\n"), 0o644)
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"geoip": map[string]any{"db": bad}}, "bad range"},
		{map[string]any{"geoip": map[string]any{"db": filepath.Join(dir, "none")}}, "no such file"},
		{map[string]any{"geoip": map[string]any{"db": bad, "format": "mmdb"}}, "not a MaxMind DB file"},
		{map[string]any{"geoip": map[string]any{"db": bad, "format": "dat"}}, "want csv or mmdb"},
		{map[string]any{"buckets": []any{map[string]any{"field": "x", "bounds": []float64{5, 1}}}}, "ascending"},
		{map[string]any{"currency": map[string]any{"amount": "p", "currency": "c", "rates": map[string]any{"X": -1}}}, "positive"},
		{map[string]any{"index": map[string]any{"prefix": "a", "period": "year"}}, "period"},
	} {
		c, err := engine.NewConf(reg, "d", "DecorateFilter", tc.vals)
		if err == nil {
			_, err = newFilter(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
	}
	_ = fmt.Sprint
}
