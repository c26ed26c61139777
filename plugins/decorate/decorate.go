package decorate

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

type geoConf struct {
	DB      string `yaml:"db"`
	Format  string `yaml:"format"`
	Field   string `yaml:"field"`
	Country string `yaml:"country"`
	City    string `yaml:"city"`
	// Language of city names in an mmdb database (default "en").
	Language string `yaml:"language"`
}

type bucketConf struct {
	Field  string    `yaml:"field"`
	Target string    `yaml:"target"`
	Bounds []float64 `yaml:"bounds"`
	labels []string
}

type currencyConf struct {
	Amount   string             `yaml:"amount"`
	Currency string             `yaml:"currency"`
	Target   string             `yaml:"target"`
	Default  string             `yaml:"default"`
	Rates    map[string]float64 `yaml:"rates"`
}

type indexConf struct {
	Prefix string `yaml:"prefix"`
	Period string `yaml:"period"`
	Target string `yaml:"target"`
}

// Filter is DecorateFilter.
type Filter struct {
	geo      GeoIP
	geoConf  geoConf
	renames  [][2]string
	deletes  []string
	lower    []string
	trim     []string
	buckets  []bucketConf
	currency *currencyConf
	index    *indexConf

	idxStart, idxEnd int64 // cached bucket of idxName
	idxName          []byte

	applied, skipped atomic.Uint64
}

// Counters is a snapshot of DecorateFilter's counters.
type Counters struct{ Applied, Skipped uint64 }

// Counters returns the filter's counters.
func (f *Filter) Counters() Counters { return Counters{f.applied.Load(), f.skipped.Load()} }

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{deletes: c.Strings("delete"), lower: c.Strings("lowercase"), trim: c.Strings("trim")}
	var ren map[string]string
	if err := c.Decode("rename", &ren); err != nil {
		return nil, err
	}
	for from, to := range ren {
		if to == "" {
			return nil, c.Errorf("rename", "%q renamed to an empty name", from)
		}
		f.renames = append(f.renames, [2]string{from, to})
	}
	sort.Slice(f.renames, func(i, j int) bool { return f.renames[i][0] < f.renames[j][0] })
	if c.Has("geoip") {
		var g geoConf
		if err := c.Decode("geoip", &g); err != nil {
			return nil, err
		}
		if g.DB != "" {
			if g.Field == "" {
				g.Field = "ip"
			}
			if g.Country == "" {
				g.Country = "geo_country"
			}
			if g.City == "" {
				g.City = "geo_city"
			}
			switch g.Format {
			case "", "csv":
				if c.Offline() {
					break // the database is a deployment file
				}
				db, err := LoadCSVGeoIP(g.DB)
				if err != nil {
					return nil, c.Errorf("geoip", "%v", err)
				}
				f.geo = db
			case "mmdb":
				if c.Offline() {
					break
				}
				db, err := LoadMMDBGeoIP(g.DB, g.Language)
				if err != nil {
					return nil, c.Errorf("geoip", "%v", err)
				}
				f.geo = db
			default:
				return nil, c.Errorf("geoip", "format %q: want csv or mmdb", g.Format)
			}
			f.geoConf = g
		}
	}
	if err := c.Decode("buckets", &f.buckets); err != nil {
		return nil, err
	}
	for i := range f.buckets {
		b := &f.buckets[i]
		if b.Field == "" || len(b.Bounds) == 0 {
			return nil, c.Errorf("buckets", "bucket %d: field and bounds are required", i+1)
		}
		if !sort.Float64sAreSorted(b.Bounds) {
			return nil, c.Errorf("buckets", "bucket %d (%s): bounds must be ascending", i+1, b.Field)
		}
		if b.Target == "" {
			b.Target = b.Field + "_bucket"
		}
		b.labels = bucketLabels(b.Bounds)
	}
	if c.Has("currency") {
		var cc currencyConf
		if err := c.Decode("currency", &cc); err != nil {
			return nil, err
		}
		if cc.Amount != "" {
			if len(cc.Rates) == 0 || cc.Currency == "" {
				return nil, c.Errorf("currency", "amount, currency and rates are required")
			}
			for k, r := range cc.Rates {
				if r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
					return nil, c.Errorf("currency", "rate of %s must be positive", k)
				}
			}
			if cc.Target == "" {
				cc.Target = cc.Amount + "_converted"
			}
			f.currency = &cc
		}
	}
	if c.Has("index") {
		var ic indexConf
		if err := c.Decode("index", &ic); err != nil {
			return nil, err
		}
		if ic.Prefix != "" {
			switch ic.Period {
			case "":
				ic.Period = "day"
			case "day", "week", "month":
			default:
				return nil, c.Errorf("index", "period %q: want day, week or month", ic.Period)
			}
			if ic.Target == "" {
				ic.Target = "_index"
			}
			f.index = &ic
		}
	}
	return f, nil
}

func fmtBound(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// bucketLabels names the ranges: "<b0", "b0-b1", ..., ">=bn".
func bucketLabels(bounds []float64) []string {
	l := []string{"<" + fmtBound(bounds[0])}
	for i := 1; i < len(bounds); i++ {
		l = append(l, fmtBound(bounds[i-1])+"-"+fmtBound(bounds[i]))
	}
	return append(l, ">="+fmtBound(bounds[len(bounds)-1]))
}

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	q, err := fc.Writable(p)
	if err != nil {
		return err
	}
	a := &q.Attrs
	if f.geo != nil {
		ok := false
		if v, has := a.Str(f.geoConf.Field); has {
			if ip, valid := parseIP(v); valid {
				if country, city, found := f.geo.Lookup(ip); found {
					a.SetString(f.geoConf.Country, country)
					if city != "" {
						a.SetString(f.geoConf.City, city)
					}
					ok = true
				}
			}
		}
		f.count(ok)
	}
	for _, r := range f.renames {
		a.Rename(r[0], r[1])
	}
	for _, d := range f.deletes {
		a.Delete(d)
	}
	for _, k := range f.lower {
		if v, ok := a.Get(k); ok && v.Kind == pack.KindString {
			for i, c := range v.B {
				if c >= 'A' && c <= 'Z' {
					v.B[i] = c + 'a' - 'A'
				}
			}
		}
	}
	for _, k := range f.trim {
		if v, ok := a.Get(k); ok && v.Kind == pack.KindString {
			t := bytes.TrimSpace(v.B)
			n := copy(v.B, t)
			v.B = v.B[:n]
		}
	}
	for i := range f.buckets {
		b := &f.buckets[i]
		v, ok := a.Get(b.Field)
		var x float64
		if ok {
			x, ok = v.Float()
		}
		if ok {
			a.SetString(b.Target, b.labels[sort.SearchFloat64s(b.Bounds, math.Nextafter(x, math.Inf(1)))])
		}
		f.count(ok)
	}
	if cc := f.currency; cc != nil {
		ok := false
		if v, has := a.Get(cc.Amount); has {
			if amt, isNum := v.Float(); isNum {
				cur, _ := a.Str(cc.Currency)
				if len(cur) == 0 {
					cur = []byte(cc.Default)
				}
				if rate, known := cc.Rates[string(cur)]; known {
					a.SetFloat(cc.Target, amt*rate)
					ok = true
				}
			}
		}
		f.count(ok)
	}
	if f.index != nil && q.Ts != 0 {
		if q.Ts < f.idxStart || q.Ts >= f.idxEnd {
			f.indexBucket(q.Ts)
		}
		a.SetBytes(f.index.Target, f.idxName)
	}
	fc.Emit(q)
	return nil
}

func (f *Filter) count(ok bool) {
	if ok {
		f.applied.Add(1)
	} else {
		f.skipped.Add(1)
	}
}

// indexBucket computes the index name of ts's bucket (UTC) and caches it.
func (f *Filter) indexBucket(ts int64) {
	t := time.Unix(0, ts).UTC()
	y, m, d := t.Date()
	var start, end time.Time
	name := append(f.idxName[:0], f.index.Prefix...)
	switch f.index.Period {
	case "day":
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 0, 1)
		name = start.AppendFormat(name, "2006.01.02")
	case "week":
		wd := (int(t.Weekday()) + 6) % 7
		start = time.Date(y, m, d-wd, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 0, 7)
		iy, iw := start.ISOWeek()
		name = fmt.Appendf(name, "%04d.w%02d", iy, iw)
	default:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 1, 0)
		name = start.AppendFormat(name, "2006.01")
	}
	f.idxName, f.idxStart, f.idxEnd = name, start.UnixNano(), end.UnixNano()
}
