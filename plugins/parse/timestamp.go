package parse

import (
	"errors"
	"math"
	"time"

	"github.com/dbus-project/dbus/pack"
)

// timeParser turns a field into Unix nanoseconds.
type timeParser struct {
	layout string // Go layout, or rfc3339 / unix / unix_ms / unix_us / unix_ns
	loc    *time.Location
	mult   int64 // nanoseconds per unit of the unix layouts
	// One-entry cache for Go layouts.
	lastText []byte
	lastTs   int64
}

var errTime = errors.New("cannot parse time")

func (tp *timeParser) parse(a *pack.Attr) (int64, error) {
	switch tp.layout {
	case "unix", "unix_ms", "unix_us", "unix_ns":
		if a.Kind == pack.KindInt {
			return a.I * tp.mult, nil
		}
		f, ok := a.Float()
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errTime
		}
		sec := math.Floor(f)
		return int64(sec)*tp.mult + int64(math.Round((f-sec)*float64(tp.mult))), nil
	}
	if a.Kind != pack.KindString {
		return 0, errTime
	}
	b := a.B
	if tp.layout == "rfc3339" {
		if ts, ok := parseRFC3339(b, tp.loc); ok {
			return ts, nil
		}
		return 0, errTime
	}
	if tp.lastText != nil && string(b) == string(tp.lastText) {
		return tp.lastTs, nil
	}
	t, err := time.ParseInLocation(tp.layout, string(b), tp.loc)
	if err != nil {
		return 0, err
	}
	tp.lastText = append(tp.lastText[:0], b...)
	tp.lastTs = t.UnixNano()
	return tp.lastTs, nil
}

func digits(b []byte, i, n int) (int, bool) {
	if i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// daysFromCivil returns days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseRFC3339 parses "2006-01-02T15:04:05[.frac][Z|±hh:mm]" (also with a
// space for T; without zone the location loc applies) without allocating.
func parseRFC3339(b []byte, loc *time.Location) (int64, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	y, ok1 := digits(b, 0, 4)
	mo, ok2 := digits(b, 5, 2)
	d, ok3 := digits(b, 8, 2)
	h, ok4 := digits(b, 11, 2)
	mi, ok5 := digits(b, 14, 2)
	s, ok6 := digits(b, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return 0, false
	}
	i := 19
	var ns int64
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		scale := int64(1e8)
		st := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			ns += int64(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == st {
			return 0, false
		}
	}
	secs := daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+s)
	switch {
	case i == len(b):
		if loc != time.UTC {
			_, off := time.Date(y, time.Month(mo), d, h, mi, s, 0, loc).Zone()
			secs -= int64(off)
		}
	case i+1 == len(b) && (b[i] == 'Z' || b[i] == 'z'):
	case i+6 == len(b) && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, ok1 := digits(b, i+1, 2)
		om, ok2 := digits(b, i+4, 2)
		if !ok1 || !ok2 {
			return 0, false
		}
		off := int64(oh*3600 + om*60)
		if b[i] == '+' {
			secs -= off
		} else {
			secs += off
		}
	default:
		return 0, false
	}
	return secs*1e9 + ns, true
}
