package parse

import (
	"errors"
	"strconv"

	"github.com/dbus-project/dbus/pack"
)

var errLogfmt = errors.New("invalid logfmt")

// parseLogfmt parses key=value pairs into string attributes; keyBuf is
// scratch space for prefixed keys.
func parseLogfmt(b []byte, attrs *pack.Attrs, prefix string, keyBuf []byte) ([]byte, error) {
	i := 0
	n := 0
	for {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i >= len(b) {
			break
		}
		ks := i
		for i < len(b) && b[i] > ' ' && b[i] != '=' && b[i] != '"' {
			i++
		}
		if i == ks {
			return keyBuf, &posError{errLogfmt, i}
		}
		keyBuf = append(append(keyBuf[:0], prefix...), b[ks:i]...)
		if i >= len(b) || b[i] != '=' {
			if i < len(b) && b[i] == '"' {
				return keyBuf, &posError{errLogfmt, i}
			}
			a := attrs.SetKey(keyBuf)
			a.Kind, a.I, a.B = pack.KindBool, 1, a.B[:0]
			n++
			continue
		}
		i++
		a := attrs.SetKey(keyBuf)
		a.Kind, a.I = pack.KindString, 0
		if i < len(b) && b[i] == '"' {
			var err error
			a.B, i, err = appendQuoted(a.B[:0], b, i)
			if err != nil {
				return keyBuf, err
			}
		} else {
			vs := i
			for i < len(b) && b[i] != ' ' && b[i] != '\t' {
				i++
			}
			a.B = append(a.B[:0], b[vs:i]...)
		}
		n++
	}
	if n == 0 {
		return keyBuf, &posError{errLogfmt, 0}
	}
	return keyBuf, nil
}

// appendQuoted appends the Go/JSON-style quoted string at b[i] == '"'.
func appendQuoted(dst, b []byte, i int) ([]byte, int, error) {
	i++
	start := i
	for i < len(b) {
		switch b[i] {
		case '"':
			return append(dst, b[start:i]...), i + 1, nil
		case '\\':
			dst = append(dst, b[start:i]...)
			if i+1 >= len(b) {
				return dst, i, &posError{errLogfmt, i}
			}
			switch c := b[i+1]; c {
			case 'n':
				dst = append(dst, '\n')
			case 't':
				dst = append(dst, '\t')
			case 'r':
				dst = append(dst, '\r')
			default:
				dst = append(dst, c)
			}
			i += 2
			start = i
			continue
		}
		i++
	}
	return dst, i, &posError{errLogfmt, i}
}

type posError struct {
	err error
	at  int
}

func (e *posError) Error() string { return e.err.Error() + " at byte " + strconv.Itoa(e.at) }
func (e *posError) Unwrap() error { return e.err }
