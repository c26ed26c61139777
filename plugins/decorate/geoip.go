package decorate

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
)

// GeoIP resolves an IP address to a country and a city.
type GeoIP interface {
	// Lookup returns the location of ip; ok is false when unknown.
	Lookup(ip netip.Addr) (country, city string, ok bool)
}

// geoRange is one CSV row.
type geoRange struct {
	start, end    netip.Addr
	country, city string
}

// CSVGeoIP is a GeoIP database of IP ranges.
type CSVGeoIP struct {
	ranges []geoRange // sorted by start, not overlapping
}

// LoadCSVGeoIP reads "start_ip,end_ip,country,city" rows (a header line
// starting with "start" is skipped; '#' lines are comments).
func LoadCSVGeoIP(path string) (*CSVGeoIP, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip database: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = -1
	db := &CSVGeoIP{}
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("geoip database %s: %w", path, err)
		}
		if line == 1 && len(rec) > 0 && rec[0] == "start_ip" {
			continue
		}
		if len(rec) < 3 {
			return nil, fmt.Errorf("geoip database %s:%d: want start_ip,end_ip,country[,city]", path, line)
		}
		s, err1 := netip.ParseAddr(rec[0])
		e, err2 := netip.ParseAddr(rec[1])
		if err1 != nil || err2 != nil || s.Is4() != e.Is4() || e.Less(s) {
			return nil, fmt.Errorf("geoip database %s:%d: bad range %q-%q", path, line, rec[0], rec[1])
		}
		g := geoRange{start: s, end: e, country: rec[2]}
		if len(rec) > 3 {
			g.city = rec[3]
		}
		db.ranges = append(db.ranges, g)
	}
	sort.Slice(db.ranges, func(i, j int) bool { return db.ranges[i].start.Less(db.ranges[j].start) })
	for i := 1; i < len(db.ranges); i++ {
		if !db.ranges[i-1].end.Less(db.ranges[i].start) {
			return nil, fmt.Errorf("geoip database %s: ranges %s and %s overlap", path, db.ranges[i-1].start, db.ranges[i].start)
		}
	}
	return db, nil
}

// Lookup implements GeoIP.
func (db *CSVGeoIP) Lookup(ip netip.Addr) (string, string, bool) {
	ip = ip.Unmap()
	i := sort.Search(len(db.ranges), func(i int) bool { return ip.Less(db.ranges[i].start) }) - 1
	if i < 0 {
		return "", "", false
	}
	g := &db.ranges[i]
	if g.end.Less(ip) || g.start.Is4() != ip.Is4() {
		return "", "", false
	}
	return g.country, g.city, true
}

// parseIP parses b; IPv4 without allocating.
func parseIP(b []byte) (netip.Addr, bool) {
	b = bytes.TrimSpace(b)
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	a, err := netip.ParseAddr(string(b))
	return a, err == nil
}

func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	n, digits, v := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || n == 4 {
				return netip.Addr{}, false
			}
			ip[n] = byte(v)
			n, digits, v = n+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits == 3 || (digits == 1 && v == 0) {
			return netip.Addr{}, false
		}
		v = v*10 + int(c-'0')
		if v > 255 {
			return netip.Addr{}, false
		}
		digits++
	}
	if n != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}
