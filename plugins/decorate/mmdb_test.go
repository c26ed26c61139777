package decorate

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// writeTestMMDB writes a small GeoIP2-City-shaped database.
func writeTestMMDB(t testing.TB) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24, IncludeReservedNetworks: true, Languages: []string{"en", "de"}})
	if err != nil {
		t.Fatal(err)
	}
	city := func(iso, en, de string) mmdbtype.Map {
		m := mmdbtype.Map{
			"country":            mmdbtype.Map{"iso_code": mmdbtype.String(iso)},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String(iso)},
		}
		if en != "" {
			m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(de)}}
		}
		return m
	}
	for _, n := range []struct {
		cidr string
		rec  mmdbtype.Map
	}{
		{"81.2.69.0/24", city("GB", "London", "London")},
		{"10.0.0.0/16", city("FR", "Paris", "Paris")},
		{"2001:db8::/32", city("JP", "Tokyo", "Tokio")},
		{"89.160.20.0/24", city("SE", "", "")},
		// Only the registered country is known (anycast ranges).
		{"1.1.1.0/24", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("AU")}}},
		{"175.16.199.0/24", city("CN", "Changchun", "Changchun")},
	} {
		_, ipnet, err := net.ParseCIDR(n.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(ipnet, n.rec); err != nil {
			t.Fatalf("insert %s: %v", n.cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(fh); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDecorateGeoIPMaxMind(t *testing.T) {
	path := writeTestMMDB(t)
	db, err := LoadMMDBGeoIP(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if db.DatabaseType() != "GeoIP2-City" {
		t.Fatalf("database type %q", db.DatabaseType())
	}
	for _, tc := range []struct{ ip, country, city string }{
		{"81.2.69.142", "GB", "London"},
		{"10.0.200.1", "FR", "Paris"},
		{"::ffff:10.0.0.1", "FR", "Paris"},
		{"2001:db8:1::5", "JP", "Tokyo"},
		{"89.160.20.112", "SE", ""},
		{"1.1.1.1", "AU", ""},
		{"8.8.8.8", "", ""},
		{"2a00::1", "", ""},
	} {
		country, city, ok := db.Lookup(netip.MustParseAddr(tc.ip))
		if country != tc.country || city != tc.city || ok != (tc.country != "") {
			t.Fatalf("%s: %q %q %v, want %q %q", tc.ip, country, city, ok, tc.country, tc.city)
		}
	}

	// Through DecorateFilter: format mmdb, German city names.
	reg := engine.NewRegistry()
	Register(reg)
	c, err := engine.NewConf(reg, "deco", "DecorateFilter", map[string]any{
		"geoip": map[string]any{"db": path, "format": "mmdb", "field": "client", "language": "de"}})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := newFilter(c)
	if err != nil {
		t.Fatal(err)
	}
	f := fi.(*Filter)
	fc := &fakeFC{}
	for _, tc := range []struct{ ip, want string }{
		{"2001:db8::7", "client=2001:db8::7 geo_country=JP geo_city=Tokio"},
		{"175.16.199.3", "client=175.16.199.3 geo_country=CN geo_city=Changchun"},
		{"89.160.20.1", "client=89.160.20.1 geo_country=SE"},
		{"192.0.2.1", "client=192.0.2.1"},
		{"not-an-ip", "client=not-an-ip"},
	} {
		p := &pack.Packet{Ts: time.Now().UnixNano()}
		p.Attrs.SetString("client", tc.ip)
		if err := f.Process(fc, p); err != nil {
			t.Fatal(err)
		}
		if got := attrs(p); got != tc.want {
			t.Fatalf("got  %s\nwant %s", got, tc.want)
		}
	}
	if c := f.Counters(); c.Applied != 3 || c.Skipped != 2 {
		t.Fatalf("counters %+v", c)
	}

	// Cached records: no allocation per lookup.
	p := &pack.Packet{}
	n := testing.AllocsPerRun(1000, func() {
		fc.Emitted = fc.Emitted[:0]
		p.Attrs.Reset()
		p.Attrs.SetString("client", "81.2.69.160")
		f.Process(fc, p)
	})
	if n != 0 {
		t.Fatalf("%v allocations per mmdb lookup", n)
	}
	if v, _ := p.Attrs.Str("geo_city"); string(v) != "London" {
		t.Fatalf("city %q", v)
	}
}

func BenchmarkDecorateGeoIPMaxMind(b *testing.B) {
	db, err := LoadMMDBGeoIP(writeTestMMDB(b), "en")
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		db.Lookup(ip)
	}
}
