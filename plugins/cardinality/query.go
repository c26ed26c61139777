package cardinality

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// QueryResult is the answer of Query.
type QueryResult struct {
	Filter string `json:"filter"`
	// Counts: one estimate per (key, period, bucket), without from/to.
	Counts []Result `json:"counts,omitempty"`
	// Merged: one union estimate per (key, period) over [from, to).
	Merged []MergedResult `json:"merged,omitempty"`
}

// MergedResult is a distinct count over a range of buckets.
type MergedResult struct {
	Key     string `json:"key"`
	Period  string `json:"period"`
	From    string `json:"from"`
	To      string `json:"to,omitempty"`
	Buckets int    `json:"buckets"`
	Count   uint64 `json:"count"`
}

// queryParams are the parameters Query understands.
var queryParams = []string{"key", "period", "at", "from", "to"}

// Query implements engine.Queryable (admin API
// GET /api/v1/plugins/{name}/query). Parameters, all optional:
//
//	key=K        only key K (the key_by values joined by "|"; "" with no key_by)
//	period=P     only period P (hour, day, week, month, total)
//	at=T         only the bucket of each period holding time T
//	from=T[&to=T] the union of the buckets starting in [from, to) per key
//	             and period (e.g. weekly users from daily sketches)
//
// Times are RFC 3339, or 2006-01-02[T15:04[:05]] or 2006-01 in the
// filter's time_zone. Safe from any goroutine.
func (f *Filter) Query(params map[string]string) (any, error) {
	for k := range params {
		if !slices.Contains(queryParams, k) {
			return nil, fmt.Errorf("unknown parameter %q (want %s)", k, strings.Join(queryParams, ", "))
		}
	}
	key, byKey := params["key"]
	period, byPeriod := params["period"]
	if byPeriod && !slices.Contains(f.periods, period) {
		return nil, fmt.Errorf("period %q is not counted (periods: %s)", period, strings.Join(f.periods, ", "))
	}
	parse := func(name string) (time.Time, bool, error) {
		v, ok := params[name]
		if !ok {
			return time.Time{}, false, nil
		}
		t, err := f.parseTime(v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s: %v", name, err)
		}
		return t, true, nil
	}
	at, hasAt, err := parse("at")
	if err != nil {
		return nil, err
	}
	from, hasFrom, err := parse("from")
	if err != nil {
		return nil, err
	}
	to, hasTo, err := parse("to")
	if err != nil {
		return nil, err
	}
	if hasTo && !hasFrom {
		return nil, fmt.Errorf("to needs from")
	}
	if hasAt && hasFrom {
		return nil, fmt.Errorf("use either at or from/to")
	}
	res := &QueryResult{Filter: f.name}
	snap := f.Snapshot()
	if !hasFrom {
		res.Counts = []Result{}
		for _, r := range snap {
			if (byKey && r.Key != key) || (byPeriod && r.Period != period) {
				continue
			}
			if hasAt && r.Bucket != f.bucketLabel(r.Period, at) {
				continue
			}
			res.Counts = append(res.Counts, r)
		}
		return res, nil
	}
	if !hasTo {
		to = time.Unix(1<<40, 0)
	}
	if !to.After(from) {
		return nil, fmt.Errorf("to must be after from")
	}
	type kp struct{ key, period string }
	seen := map[kp]bool{}
	var list []kp
	for _, r := range snap {
		k := kp{r.Key, r.Period}
		if (byKey && r.Key != key) || (byPeriod && r.Period != period) || seen[k] {
			continue
		}
		seen[k] = true
		list = append(list, k)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].key != list[j].key {
			return list[i].key < list[j].key
		}
		return list[i].period < list[j].period
	})
	res.Merged = []MergedResult{}
	for _, k := range list {
		n, buckets := f.merged(k.key, k.period, from, to)
		if buckets == 0 {
			continue
		}
		m := MergedResult{Key: k.key, Period: k.period, From: from.In(f.loc).Format(time.RFC3339), Buckets: buckets, Count: n}
		if hasTo {
			m.To = to.In(f.loc).Format(time.RFC3339)
		}
		res.Merged = append(res.Merged, m)
	}
	return res, nil
}

// bucketLabel is the Bucket text of the bucket of period holding t.
func (f *Filter) bucketLabel(period string, t time.Time) string {
	return time.Unix(f.bucketStart(period, t.UnixNano()), 0).In(f.loc).Format(time.RFC3339)
}

var queryLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02", "2006-01"}

func (f *Filter) parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, l := range queryLayouts {
		if t, err := time.ParseInLocation(l, v, f.loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q (want RFC 3339, 2006-01-02[T15:04[:05]] or 2006-01)", v)
}
