package decorate

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/oschwald/maxminddb-golang"
)

// mmdbCacheMax bounds the decoded-record cache of MMDBGeoIP. A GeoIP2/
// GeoLite2 City database has some 10^5 distinct records; past the bound
// the cache is emptied and refilled by the lookups that follow.
const mmdbCacheMax = 1 << 16

// MMDBGeoIP is a GeoIP database in MaxMind DB format (GeoIP2/GeoLite2
// Country or City, or any database with the same country/city layout).
// It reads country.iso_code (falling back to registered_country.iso_code)
// and city.names[<language>].
type MMDBGeoIP struct {
	r    *maxminddb.Reader
	lang string

	mu    sync.Mutex // guards cache
	cache map[uintptr]geoResult
}

type geoResult struct {
	country, city string
	ok            bool
}

// mmdbRecord is the subset of a GeoIP2 record that is decoded.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

// LoadMMDBGeoIP reads the MaxMind DB file at path into memory (so that a
// database replaced in place later cannot fault the process) and checks
// its metadata. City names are taken in language lang ("" means "en").
func LoadMMDBGeoIP(path, lang string) (*MMDBGeoIP, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip database: %w", err)
	}
	r, err := maxminddb.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geoip database %s is not a MaxMind DB file: %w", path, err)
	}
	if lang == "" {
		lang = "en"
	}
	return &MMDBGeoIP{r: r, lang: lang, cache: make(map[uintptr]geoResult)}, nil
}

// DatabaseType returns the database's type from its metadata
// (e.g. "GeoLite2-City").
func (db *MMDBGeoIP) DatabaseType() string { return db.r.Metadata.DatabaseType }

// Lookup implements GeoIP. Records are decoded once per database record
// and cached, so lookups of known records allocate nothing. Safe from any
// goroutine.
func (db *MMDBGeoIP) Lookup(ip netip.Addr) (string, string, bool) {
	ip = ip.Unmap()
	var buf [16]byte
	var nip net.IP
	switch {
	case ip.Is4():
		a4 := ip.As4()
		copy(buf[:], a4[:])
		nip = buf[:4] // the reader starts IPv4 at its IPv4 subtree
	case ip.Is6() && db.r.Metadata.IPVersion == 6:
		buf = ip.As16()
		nip = buf[:]
	default:
		return "", "", false
	}
	off, err := db.r.LookupOffset(nip)
	if err != nil || off == maxminddb.NotFound {
		return "", "", false
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if g, ok := db.cache[off]; ok {
		return g.country, g.city, g.ok
	}
	var rec mmdbRecord
	var g geoResult
	if err := db.r.Decode(off, &rec); err == nil {
		g.country = rec.Country.ISOCode
		if g.country == "" {
			g.country = rec.RegisteredCountry.ISOCode
		}
		g.city = rec.City.Names[db.lang]
		g.ok = g.country != "" || g.city != ""
	}
	if len(db.cache) >= mmdbCacheMax {
		clear(db.cache)
	}
	db.cache[off] = g
	return g.country, g.city, g.ok
}
