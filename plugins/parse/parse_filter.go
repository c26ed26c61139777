package parse

import (
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Failure handling modes.
const (
	onErrorTag        = "tag"
	onErrorDrop       = "drop"
	onErrorDeadLetter = "dead_letter"
)

// Filter is ParseFilter.
type Filter struct {
	format   string
	source   string // "" for the payload
	prefix   string
	re       *regexp.Regexp
	groups   []string // regex group names (index = group)
	types    []typeConv
	time     *timeParser
	timeKey  string
	onError  string
	tagField string

	jp      jsonParser
	keyBuf  []byte
	srcBuf  []byte
	scratch pack.Packet

	parsed, failed atomic.Uint64
}

type typeConv struct {
	field string
	to    pack.Kind
}

// Counters is a snapshot of ParseFilter's counters.
type Counters struct{ Parsed, Failed uint64 }

// Counters returns the filter's counters (safe from any goroutine).
func (f *Filter) Counters() Counters { return Counters{f.parsed.Load(), f.failed.Load()} }

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{
		format:   c.String("format"),
		source:   c.String("source"),
		prefix:   c.String("prefix"),
		onError:  c.String("on_error"),
		tagField: c.String("tag_field"),
		jp:       jsonParser{maxDepth: int(c.Int("max_depth"))},
	}
	if f.format == "regex" {
		pat := c.String("pattern")
		if pat == "" {
			return nil, c.Errorf("pattern", "format regex needs a pattern with named groups")
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, c.Errorf("pattern", "%v", err)
		}
		named := 0
		for _, n := range re.SubexpNames() {
			if n != "" {
				named++
			}
		}
		if named == 0 {
			return nil, c.Errorf("pattern", "has no named group (?P<name>...)")
		}
		f.re, f.groups = re, re.SubexpNames()
	} else if c.String("pattern") != "" {
		return nil, c.Errorf("pattern", "only used with format regex")
	}
	var types map[string]string
	if err := c.Decode("types", &types); err != nil {
		return nil, err
	}
	for field, t := range types {
		var k pack.Kind
		switch t {
		case "int":
			k = pack.KindInt
		case "float":
			k = pack.KindFloat
		case "bool":
			k = pack.KindBool
		case "string":
			k = pack.KindString
		default:
			return nil, c.Errorf("types", "field %q: unknown type %q (int, float, bool, string)", field, t)
		}
		f.types = append(f.types, typeConv{f.prefix + field, k})
	}
	if tf := c.String("time_field"); tf != "" {
		layout := c.String("time_layout")
		loc, err := time.LoadLocation(c.String("time_zone"))
		if err != nil {
			return nil, c.Errorf("time_zone", "%v", err)
		}
		tp := &timeParser{layout: layout, loc: loc}
		switch layout {
		case "unix":
			tp.mult = 1e9
		case "unix_ms":
			tp.mult = 1e6
		case "unix_us":
			tp.mult = 1e3
		case "unix_ns":
			tp.mult = 1
		case "rfc3339":
		default:
			// A Go layout has layout elements and round-trips a time.
			ref := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).Format(layout)
			if _, err := time.ParseInLocation(layout, ref, loc); err != nil || layout == ref {
				return nil, c.Errorf("time_layout", "%q is not a Go time layout (reference time Mon Jan 2 15:04:05 MST 2006) nor rfc3339/unix/unix_ms/unix_us/unix_ns", layout)
			}
		}
		f.time, f.timeKey = tp, f.prefix+tf
	}
	return f, nil
}

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	if p.Shared() && f.onError == onErrorDeadLetter {
		// Parse into scratch first: a failed packet must reach the
		// dead-letter output unchanged and not replaced by a copy.
		s := &f.scratch
		s.Attrs.CopyFrom(&p.Attrs)
		s.Ts = p.Ts
		if err := f.parse(s, p); err != nil {
			f.failed.Add(1)
			return fmt.Errorf("parse %s: %w", f.format, err)
		}
		q, err := fc.Writable(p)
		if err != nil {
			return err
		}
		q.Attrs.CopyFrom(&s.Attrs)
		q.Ts = s.Ts
		f.parsed.Add(1)
		fc.Emit(q)
		return nil
	}
	q, err := fc.Writable(p)
	if err != nil {
		return err
	}
	if err := f.parse(q, q); err != nil {
		f.failed.Add(1)
		switch f.onError {
		case onErrorDrop:
			fc.Drop(q, "parse_error")
		case onErrorDeadLetter:
			return fmt.Errorf("parse %s: %w", f.format, err)
		default:
			q.Attrs.SetString(f.tagField, f.format+": "+err.Error())
			fc.Emit(q)
		}
		return nil
	}
	f.parsed.Add(1)
	fc.Emit(q)
	return nil
}

// parse parses src's payload or source attribute into dst's attributes
// and time.
func (f *Filter) parse(dst, src *pack.Packet) error {
	in := src.Payload
	if f.source != "" {
		v, ok := src.Attrs.Str(f.source)
		if !ok {
			return fmt.Errorf("no string attribute %q", f.source)
		}
		// Parsed keys may overwrite the source attribute: parse a copy.
		f.srcBuf = append(f.srcBuf[:0], v...)
		in = f.srcBuf
	}
	var err error
	switch f.format {
	case "json":
		err = f.jp.parse(in, &dst.Attrs, f.prefix)
	case "logfmt":
		f.keyBuf, err = parseLogfmt(in, &dst.Attrs, f.prefix, f.keyBuf)
	case "regex":
		err = f.parseRegex(in, &dst.Attrs)
	}
	if err != nil {
		return err
	}
	for _, tc := range f.types {
		a, ok := dst.Attrs.Get(tc.field)
		if !ok || a.Kind == tc.to {
			continue
		}
		if err := convert(a, tc.to); err != nil {
			return fmt.Errorf("field %q: %w", tc.field, err)
		}
	}
	if f.time != nil {
		a, ok := dst.Attrs.Get(f.timeKey)
		if !ok {
			return fmt.Errorf("no time field %q", f.timeKey)
		}
		ts, err := f.time.parse(a)
		if err != nil {
			return fmt.Errorf("time field %q %q: %w", f.timeKey, a.AppendText(nil), err)
		}
		dst.Ts = ts
	}
	return nil
}

func (f *Filter) parseRegex(in []byte, attrs *pack.Attrs) error {
	m := f.re.FindSubmatchIndex(in)
	if m == nil {
		return errNoMatch
	}
	for g := 1; g < len(f.groups); g++ {
		name := f.groups[g]
		if name == "" || m[2*g] < 0 {
			continue
		}
		f.keyBuf = append(append(f.keyBuf[:0], f.prefix...), name...)
		attrs.SetBytesKey(f.keyBuf, in[m[2*g]:m[2*g+1]])
	}
	return nil
}

var errNoMatch = fmt.Errorf("line does not match the pattern")

// convert changes a's kind in place.
func convert(a *pack.Attr, to pack.Kind) error {
	switch to {
	case pack.KindString:
		if a.Kind != pack.KindString {
			var buf [32]byte
			t := a.AppendText(buf[:0])
			a.B = append(a.B[:0], t...)
			a.Kind, a.I = pack.KindString, 0
		}
	case pack.KindInt:
		v, ok := a.Int()
		if !ok {
			return fmt.Errorf("%q is not an integer", a.B)
		}
		a.Kind, a.I, a.B = pack.KindInt, v, a.B[:0]
	case pack.KindFloat:
		v, ok := a.Float()
		if !ok {
			return fmt.Errorf("%q is not a number", a.B)
		}
		a.Kind, a.B = pack.KindFloat, a.B[:0]
		a.I = int64(floatBits(v))
	case pack.KindBool:
		var v bool
		switch a.Kind {
		case pack.KindInt, pack.KindBool:
			v = a.I != 0
		case pack.KindString:
			switch string(a.B) {
			case "true", "1", "yes", "on", "TRUE", "True":
				v = true
			case "false", "0", "no", "off", "FALSE", "False", "":
			default:
				return fmt.Errorf("%q is not a boolean", a.B)
			}
		default:
			return fmt.Errorf("cannot convert %s to bool", a.Kind)
		}
		a.Kind, a.B, a.I = pack.KindBool, a.B[:0], 0
		if v {
			a.I = 1
		}
	}
	return nil
}
