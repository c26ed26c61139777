package parse

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/dbus-project/dbus/pack"
)

// jsonParser flattens a JSON object into attributes without allocating.
type jsonParser struct {
	key      []byte // current flattened key
	maxDepth int
}

var (
	errJSONSyntax = errors.New("invalid JSON")
	errJSONObject = errors.New("JSON value is not an object")
	errJSONDepth  = errors.New("JSON nested too deep")
)

type jsonError struct {
	err error
	at  int
}

func (e *jsonError) Error() string { return e.err.Error() + " at byte " + strconv.Itoa(e.at) }
func (e *jsonError) Unwrap() error { return e.err }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// parse parses b, a JSON object, into attrs with keys prefixed by prefix.
func (jp *jsonParser) parse(b []byte, attrs *pack.Attrs, prefix string) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return &jsonError{errJSONObject, i}
	}
	jp.key = append(jp.key[:0], prefix...)
	i, err := jp.object(b, i, attrs, 0)
	if err != nil {
		return err
	}
	if i = skipSpace(b, i); i != len(b) {
		return &jsonError{errJSONSyntax, i}
	}
	return nil
}

// object parses the object at b[i] == '{'; jp.key holds its prefix.
func (jp *jsonParser) object(b []byte, i int, attrs *pack.Attrs, depth int) (int, error) {
	if depth > jp.maxDepth {
		return i, &jsonError{errJSONDepth, i}
	}
	base := len(jp.key)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, &jsonError{errJSONSyntax, i}
		}
		jp.key = jp.key[:base]
		if base > 0 {
			jp.key = append(jp.key, '.')
		}
		var err error
		jp.key, i, err = appendString(jp.key, b, i)
		if err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, &jsonError{errJSONSyntax, i}
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return i, &jsonError{errJSONSyntax, i}
		}
		switch c := b[i]; {
		case c == '"':
			a := attrs.SetKey(jp.key)
			a.Kind, a.I = pack.KindString, 0
			a.B, i, err = appendString(a.B[:0], b, i)
		case c == '{':
			i, err = jp.object(b, i, attrs, depth+1)
		case c == '[':
			start := i
			i, err = skipValue(b, i, 0)
			if err == nil {
				attrs.SetBytesKey(jp.key, b[start:i])
			}
		case c == 't' || c == 'f':
			v := c == 't'
			lit := "false"
			if v {
				lit = "true"
			}
			if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
				return i, &jsonError{errJSONSyntax, i}
			}
			i += len(lit)
			a := attrs.SetKey(jp.key)
			a.Kind, a.B, a.I = pack.KindBool, a.B[:0], 0
			if v {
				a.I = 1
			}
		case c == 'n':
			if len(b)-i < 4 || string(b[i:i+4]) != "null" {
				return i, &jsonError{errJSONSyntax, i}
			}
			i += 4
		default:
			i, err = number(b, i, attrs.SetKey(jp.key))
		}
		if err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, &jsonError{errJSONSyntax, i}
		}
		if b[i] == '}' {
			jp.key = jp.key[:base]
			return i + 1, nil
		}
		if b[i] != ',' {
			return i, &jsonError{errJSONSyntax, i}
		}
		i = skipSpace(b, i+1)
	}
}

// number parses the JSON number at b[i] into a.
func number(b []byte, i int, a *pack.Attr) (int, error) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := i
	var u uint64
	overflow := false
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			overflow = true
		}
		u = u*10 + d
		i++
	}
	if i == digits {
		return i, &jsonError{errJSONSyntax, i}
	}
	isFloat := false
	if i < len(b) && b[i] == '.' {
		isFloat = true
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isFloat = true
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	neg := b[start] == '-'
	if !isFloat && !overflow && (u <= math.MaxInt64 || (neg && u == 1<<63)) {
		a.Kind, a.B = pack.KindInt, a.B[:0]
		if neg {
			a.I = int64(-u)
		} else {
			a.I = int64(u)
		}
		return i, nil
	}
	f, err := parseFloat(b[start:i])
	if err != nil {
		return i, &jsonError{errJSONSyntax, start}
	}
	a.Kind, a.B, a.I = pack.KindFloat, a.B[:0], int64(math.Float64bits(f))
	return i, nil
}

// parseFloat parses without allocating (the compiler does not copy a
// []byte converted to string for a call that does not keep it).
func parseFloat(b []byte) (float64, error) { return strconv.ParseFloat(string(b), 64) }

// appendString appends the unescaped JSON string at b[i] == '"' to dst.
func appendString(dst, b []byte, i int) ([]byte, int, error) {
	i++
	start := i
	for i < len(b) {
		c := b[i]
		if c == '"' {
			return append(dst, b[start:i]...), i + 1, nil
		}
		if c == '\\' {
			dst = append(dst, b[start:i]...)
			if i+1 >= len(b) {
				return dst, i, &jsonError{errJSONSyntax, i}
			}
			i++
			switch b[i] {
			case '"', '\\', '/':
				dst = append(dst, b[i])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, n := hex4(b, i+1)
				if n < 0 {
					return dst, i, &jsonError{errJSONSyntax, i}
				}
				i += 4
				if r >= 0xd800 && r < 0xdc00 && i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					if r2, n2 := hex4(b, i+3); n2 > 0 && r2 >= 0xdc00 && r2 < 0xe000 {
						r = (r-0xd800)<<10 + (r2 - 0xdc00) + 0x10000
						i += 6
					}
				}
				dst = utf8.AppendRune(dst, r)
			default:
				return dst, i, &jsonError{errJSONSyntax, i}
			}
			i++
			start = i
			continue
		}
		if c < 0x20 {
			return dst, i, &jsonError{errJSONSyntax, i}
		}
		i++
	}
	return dst, i, &jsonError{errJSONSyntax, i}
}

func hex4(b []byte, i int) (rune, int) {
	if i+4 > len(b) {
		return 0, -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

// skipValue skips the JSON value at b[i] (used for arrays kept as text).
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > 64 {
		return i, &jsonError{errJSONDepth, i}
	}
	i = skipSpace(b, i)
	if i >= len(b) {
		return i, &jsonError{errJSONSyntax, i}
	}
	switch c := b[i]; c {
	case '"':
		i++
		for i < len(b) {
			switch b[i] {
			case '\\':
				i += 2
				continue
			case '"':
				return i + 1, nil
			}
			i++
		}
		return i, &jsonError{errJSONSyntax, i}
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == end {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, &jsonError{errJSONSyntax, i}
				}
				if i, err = skipValue(b, i, depth+1); err != nil {
					return i, err
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return i, &jsonError{errJSONSyntax, i}
				}
				i++
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, &jsonError{errJSONSyntax, i}
			}
			if b[i] == end {
				return i + 1, nil
			}
			if b[i] != ',' {
				return i, &jsonError{errJSONSyntax, i}
			}
			i++
		}
	case 't':
		if len(b)-i >= 4 && string(b[i:i+4]) == "true" {
			return i + 4, nil
		}
	case 'f':
		if len(b)-i >= 5 && string(b[i:i+5]) == "false" {
			return i + 5, nil
		}
	case 'n':
		if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
			return i + 4, nil
		}
	default:
		var scratch pack.Attr
		return number(b, i, &scratch)
	}
	return i, &jsonError{errJSONSyntax, i}
}
