package cardinality

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/cardinality/hll"
)

type bucketKey struct {
	period string
	start  int64 // bucket start, Unix seconds
	key    string
}

type entry struct {
	sk    *hll.Sketch
	dirty bool
}

// Result is one distinct count.
type Result struct {
	Key    string `json:"key"`
	Period string `json:"period"`
	Bucket string `json:"bucket"`
	Count  uint64 `json:"count"`
}

// Filter is Cardinality.
type Filter struct {
	name      string
	field     string
	keyBy     []string
	periods   []string
	precision int
	keep      int
	loc       *time.Location
	tick      time.Duration
	stateFile string
	saveEvery time.Duration
	lastSave  time.Time

	mu     sync.Mutex // guards state
	state  map[bucketKey]*entry
	keyBuf []byte
}

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{
		name:      c.Name,
		field:     c.String("field"),
		keyBy:     c.Strings("key_by"),
		periods:   c.Strings("periods"),
		precision: int(c.Int("precision")),
		keep:      int(c.Int("keep")),
		tick:      c.Duration("emit_interval"),
		saveEvery: c.Duration("save_interval"),
		state:     map[bucketKey]*entry{},
		lastSave:  time.Now(),
	}
	if _, err := hll.New(f.precision); err != nil {
		return nil, c.Errorf("precision", "%v", err)
	}
	if len(f.periods) == 0 {
		return nil, c.Errorf("periods", "at least one period is required")
	}
	for _, p := range f.periods {
		switch p {
		case "hour", "day", "week", "month", "total":
		default:
			return nil, c.Errorf("periods", "unknown period %q (hour, day, week, month, total)", p)
		}
	}
	loc, err := time.LoadLocation(c.String("time_zone"))
	if err != nil {
		return nil, c.Errorf("time_zone", "%v", err)
	}
	f.loc = loc
	if dir := c.String("state_dir"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, c.Errorf("state_dir", "%v", err)
		}
		f.stateFile = filepath.Join(dir, c.Name+".hll.json")
		if err := f.load(); err != nil {
			return nil, c.Errorf("state_dir", "%v", err)
		}
	}
	return f, nil
}

// bucketStart returns the start (Unix seconds) of ts's bucket.
func (f *Filter) bucketStart(period string, ts int64) int64 {
	if period == "total" {
		return 0
	}
	t := time.Unix(0, ts).In(f.loc)
	y, m, d := t.Date()
	switch period {
	case "hour":
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, f.loc).Unix()
	case "day":
		return time.Date(y, m, d, 0, 0, 0, 0, f.loc).Unix()
	case "week":
		wd := (int(t.Weekday()) + 6) % 7 // Monday first
		return time.Date(y, m, d-wd, 0, 0, 0, 0, f.loc).Unix()
	default:
		return time.Date(y, m, 1, 0, 0, 0, 0, f.loc).Unix()
	}
}

// TickInterval implements engine.Ticker.
func (f *Filter) TickInterval() time.Duration { return f.tick }

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	a, ok := p.Attrs.Get(f.field)
	if !ok {
		fc.Drop(p, "no_id")
		return nil
	}
	f.keyBuf = f.keyBuf[:0]
	for i, k := range f.keyBy {
		if i > 0 {
			f.keyBuf = append(f.keyBuf, '|')
		}
		if v, ok := p.Attrs.Get(k); ok {
			f.keyBuf = v.AppendText(f.keyBuf)
		}
	}
	var h uint64
	if a.Kind == pack.KindString {
		h = hll.Hash64(a.B)
	}
	f.mu.Lock()
	for _, period := range f.periods {
		bk := bucketKey{period, f.bucketStart(period, p.Ts), ""}
		e := f.lookup(bk)
		if a.Kind == pack.KindString {
			e.sk.AddHash(h)
		} else {
			// Integers (bools, floats as their bits) hashed as integers.
			e.sk.AddUint64(uint64(a.I))
		}
		e.dirty = true
	}
	f.mu.Unlock()
	fc.Consume(p)
	return nil
}

// lookup returns the entry of bk with key f.keyBuf, creating it.
func (f *Filter) lookup(bk bucketKey) *entry {
	bk.key = unsafeString(f.keyBuf)
	if e, ok := f.state[bk]; ok {
		return e
	}
	bk.key = string(f.keyBuf)
	sk, _ := hll.New(f.precision)
	e := &entry{sk: sk}
	f.state[bk] = e
	return e
}

// Tick implements engine.Ticker: emit changed counts, prune, save.
func (f *Filter) Tick(tc engine.TickContext) error {
	err := f.emit(tc)
	if f.stateFile != "" && time.Since(f.lastSave) >= f.saveEvery {
		if serr := f.save(); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// FlushFilter implements engine.FilterFlusher: at shutdown the counts
// changed since the last tick are emitted and the state file is written.
func (f *Filter) FlushFilter(tc engine.TickContext) error {
	err := f.emit(tc)
	if f.stateFile != "" {
		if serr := f.save(); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

func (f *Filter) emit(tc engine.TickContext) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prune()
	keys := make([]bucketKey, 0)
	for bk, e := range f.state {
		if e.dirty {
			keys = append(keys, bk)
		}
	}
	sortKeys(keys)
	for _, bk := range keys {
		e := f.state[bk]
		p, err := tc.New()
		if err != nil {
			return err
		}
		r := f.result(bk, e)
		p.Ts = bk.start * 1e9
		p.Attrs.SetString("type", "cardinality")
		p.Attrs.SetString("key", r.Key)
		p.Attrs.SetString("period", r.Period)
		p.Attrs.SetString("bucket", r.Bucket)
		p.Attrs.SetInt("count", int64(r.Count))
		body, _ := json.Marshal(r)
		p.Payload = append(p.Payload[:0], body...)
		tc.Emit(p)
		e.dirty = false
	}
	return nil
}

func sortKeys(keys []bucketKey) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.period != b.period {
			return a.period < b.period
		}
		if a.start != b.start {
			return a.start < b.start
		}
		return a.key < b.key
	})
}

func (f *Filter) result(bk bucketKey, e *entry) Result {
	return Result{Key: bk.key, Period: bk.period, Bucket: time.Unix(bk.start, 0).In(f.loc).Format(time.RFC3339), Count: e.sk.Estimate()}
}

// prune keeps the newest `keep` buckets of each period. Caller holds mu.
func (f *Filter) prune() {
	starts := map[string]map[int64]bool{}
	for bk := range f.state {
		if starts[bk.period] == nil {
			starts[bk.period] = map[int64]bool{}
		}
		starts[bk.period][bk.start] = true
	}
	for period, set := range starts {
		if len(set) <= f.keep {
			continue
		}
		all := make([]int64, 0, len(set))
		for s := range set {
			all = append(all, s)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] > all[j] })
		cut := all[f.keep-1]
		for bk := range f.state {
			if bk.period == period && bk.start < cut {
				delete(f.state, bk)
			}
		}
	}
}

// Count returns the distinct count of key in the bucket of period that
// holds at. Safe from any goroutine.
func (f *Filter) Count(key, period string, at time.Time) (uint64, bool) {
	bk := bucketKey{period, f.bucketStart(period, at.UnixNano()), key}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.state[bk]
	if !ok {
		return 0, false
	}
	return e.sk.Estimate(), true
}

// Snapshot returns every current count, sorted. Safe from any goroutine.
func (f *Filter) Snapshot() []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]bucketKey, 0, len(f.state))
	for bk := range f.state {
		keys = append(keys, bk)
	}
	sortKeys(keys)
	out := make([]Result, 0, len(keys))
	for _, bk := range keys {
		out = append(out, f.result(bk, f.state[bk]))
	}
	return out
}

// Merged returns the union count of key over the buckets of period that
// start in [from, to) (e.g. the distinct users of a week from daily
// sketches). Safe from any goroutine.
func (f *Filter) Merged(key, period string, from, to time.Time) uint64 {
	n, _ := f.merged(key, period, from, to)
	return n
}

// merged is Merged, also returning how many buckets were merged.
func (f *Filter) merged(key, period string, from, to time.Time) (uint64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc, _ := hll.New(f.precision)
	n := 0
	for bk, e := range f.state {
		if bk.key == key && bk.period == period && bk.start >= from.Unix() && bk.start < to.Unix() {
			acc.Merge(e.sk)
			n++
		}
	}
	return acc.Estimate(), n
}

type savedSketch struct {
	Period string `json:"period"`
	Start  int64  `json:"start"`
	Key    string `json:"key"`
	HLL    []byte `json:"hll"`
}

// SaveState implements engine.Stateful: every sketch, serialised. HLL
// sketches are idempotent, so a replay after a crash counts nothing twice.
func (f *Filter) SaveState() ([]byte, error) {
	f.mu.Lock()
	list := make([]savedSketch, 0, len(f.state))
	for bk, e := range f.state {
		list = append(list, savedSketch{bk.period, bk.start, bk.key, e.sk.AppendBinary(nil)})
	}
	f.mu.Unlock()
	return json.Marshal(struct {
		Version  int           `json:"version"`
		Sketches []savedSketch `json:"sketches"`
	}{1, list})
}

// LoadState implements engine.Stateful: it merges the saved sketches into
// the filter's (a state file loaded at construction merges too).
func (f *Filter) LoadState(data []byte) error {
	return f.decodeState(data, "checkpoint store")
}

func (f *Filter) save() error {
	data, err := f.SaveState()
	if err != nil {
		return err
	}
	if err := engine.WriteFileAtomic(f.stateFile, data); err != nil {
		return fmt.Errorf("save cardinality state %s: %w", f.stateFile, err)
	}
	f.lastSave = time.Now()
	return nil
}

func (f *Filter) load() error {
	data, err := os.ReadFile(f.stateFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.decodeState(data, f.stateFile)
}

func (f *Filter) decodeState(data []byte, from string) error {
	var doc struct {
		Version  int           `json:"version"`
		Sketches []savedSketch `json:"sketches"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("cardinality state in %s is corrupt (move it away to start over): %w", from, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range doc.Sketches {
		var sk hll.Sketch
		if err := sk.UnmarshalBinary(s.HLL); err != nil {
			return fmt.Errorf("cardinality state in %s: sketch %d (%s %s): %w", from, i, s.Period, s.Key, err)
		}
		if sk.Precision() != f.precision {
			return fmt.Errorf("cardinality state in %s has precision %d, config says %d", from, sk.Precision(), f.precision)
		}
		bk := bucketKey{s.Period, s.Start, s.Key}
		if e, ok := f.state[bk]; ok {
			if err := e.sk.Merge(&sk); err != nil {
				return fmt.Errorf("cardinality state in %s: sketch %d: %w", from, i, err)
			}
			continue
		}
		f.state[bk] = &entry{sk: &sk}
	}
	return nil
}
