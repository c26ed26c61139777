package pack

import (
	"math"
	"strconv"
)

// Kind is the type of an attribute value.
type Kind uint8

// Attribute kinds.
const (
	KindNone Kind = iota
	KindInt
	KindFloat
	KindBool
	KindString
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBool:
		return "bool"
	case KindString:
		return "string"
	}
	return "none"
}

// Attr is one typed attribute. Key and string values live in reusable
// buffers owned by the packet: copy them if you keep them past the
// packet's release.
type Attr struct {
	K    []byte
	Kind Kind
	I    int64 // KindInt, KindBool (0/1); KindFloat stores math.Float64bits
	B    []byte
}

// Int returns the value as an integer (floats truncated, strings parsed).
func (a *Attr) Int() (int64, bool) {
	switch a.Kind {
	case KindInt, KindBool:
		return a.I, true
	case KindFloat:
		return int64(math.Float64frombits(uint64(a.I))), true
	case KindString:
		v, err := strconv.ParseInt(string(a.B), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// Float returns the value as a float64.
func (a *Attr) Float() (float64, bool) {
	switch a.Kind {
	case KindInt, KindBool:
		return float64(a.I), true
	case KindFloat:
		return math.Float64frombits(uint64(a.I)), true
	case KindString:
		v, err := strconv.ParseFloat(string(a.B), 64)
		return v, err == nil
	}
	return 0, false
}

// AppendText appends the value's text form to dst.
func (a *Attr) AppendText(dst []byte) []byte {
	switch a.Kind {
	case KindInt:
		return strconv.AppendInt(dst, a.I, 10)
	case KindFloat:
		return strconv.AppendFloat(dst, math.Float64frombits(uint64(a.I)), 'g', -1, 64)
	case KindBool:
		return strconv.AppendBool(dst, a.I != 0)
	case KindString:
		return append(dst, a.B...)
	}
	return dst
}

// Attrs is a small ordered set of typed attributes. Its storage is reused
// across packets: setting attributes allocates only while buffers grow.
type Attrs struct {
	a []Attr
}

// Reset removes every attribute, keeping buffers.
func (s *Attrs) Reset() { s.a = s.a[:0] }

// Len returns the number of attributes.
func (s *Attrs) Len() int { return len(s.a) }

// At returns the i-th attribute.
func (s *Attrs) At(i int) *Attr { return &s.a[i] }

// Get returns the attribute named key.
func (s *Attrs) Get(key string) (*Attr, bool) {
	for i := range s.a {
		if string(s.a[i].K) == key {
			return &s.a[i], true
		}
	}
	return nil, false
}

// Str returns the attribute's text value (for string attributes, a view of
// the packet's buffer) and whether it exists.
func (s *Attrs) Str(key string) ([]byte, bool) {
	a, ok := s.Get(key)
	if !ok || a.Kind != KindString {
		return nil, false
	}
	return a.B, true
}

// slot returns the attribute named key, adding it if absent.
func (s *Attrs) slot(key []byte) *Attr {
	for i := range s.a {
		if string(s.a[i].K) == string(key) {
			return &s.a[i]
		}
	}
	if len(s.a) < cap(s.a) {
		s.a = s.a[:len(s.a)+1]
	} else {
		s.a = append(s.a, Attr{})
	}
	a := &s.a[len(s.a)-1]
	a.K = append(a.K[:0], key...)
	return a
}

func (s *Attrs) slotS(key string) *Attr {
	for i := range s.a {
		if string(s.a[i].K) == key {
			return &s.a[i]
		}
	}
	if len(s.a) < cap(s.a) {
		s.a = s.a[:len(s.a)+1]
	} else {
		s.a = append(s.a, Attr{})
	}
	a := &s.a[len(s.a)-1]
	a.K = append(a.K[:0], key...)
	return a
}

// SetInt sets an integer attribute.
func (s *Attrs) SetInt(key string, v int64) {
	a := s.slotS(key)
	a.Kind, a.I, a.B = KindInt, v, a.B[:0]
}

// SetFloat sets a float attribute.
func (s *Attrs) SetFloat(key string, v float64) {
	a := s.slotS(key)
	a.Kind, a.I, a.B = KindFloat, int64(math.Float64bits(v)), a.B[:0]
}

// SetBool sets a boolean attribute.
func (s *Attrs) SetBool(key string, v bool) {
	a := s.slotS(key)
	a.Kind, a.B = KindBool, a.B[:0]
	a.I = 0
	if v {
		a.I = 1
	}
}

// SetString sets a string attribute, copying v.
func (s *Attrs) SetString(key string, v string) {
	a := s.slotS(key)
	a.Kind, a.I = KindString, 0
	a.B = append(a.B[:0], v...)
}

// SetBytes sets a string attribute, copying v.
func (s *Attrs) SetBytes(key string, v []byte) {
	a := s.slotS(key)
	a.Kind, a.I = KindString, 0
	a.B = append(a.B[:0], v...)
}

// SetBytesKey is SetBytes with a byte-slice key (parsers use it to avoid
// converting field names to strings).
func (s *Attrs) SetBytesKey(key, v []byte) *Attr {
	a := s.slot(key)
	a.Kind, a.I = KindString, 0
	a.B = append(a.B[:0], v...)
	return a
}

// SetKey returns the attribute named key (added if absent) for the caller
// to fill; it is used by parsers that set Kind, I and B themselves.
func (s *Attrs) SetKey(key []byte) *Attr { return s.slot(key) }

// Delete removes the attribute named key, keeping order.
func (s *Attrs) Delete(key string) bool {
	for i := range s.a {
		if string(s.a[i].K) == key {
			removed := s.a[i]
			copy(s.a[i:], s.a[i+1:])
			// Keep the removed attribute's buffers for reuse at the end.
			s.a[len(s.a)-1] = removed
			s.a = s.a[:len(s.a)-1]
			return true
		}
	}
	return false
}

// Rename renames attribute from to to (replacing an existing to).
func (s *Attrs) Rename(from, to string) bool {
	if from == to {
		_, ok := s.Get(from)
		return ok
	}
	a, ok := s.Get(from)
	if !ok {
		return false
	}
	s.Delete(to)
	a, _ = s.Get(from)
	a.K = append(a.K[:0], to...)
	return true
}

// CopyFrom replaces s's attributes with copies of src's.
func (s *Attrs) CopyFrom(src *Attrs) {
	s.a = s.a[:0]
	for i := range src.a {
		sa := &src.a[i]
		a := s.slot(sa.K)
		a.Kind, a.I = sa.Kind, sa.I
		a.B = append(a.B[:0], sa.B...)
	}
}

// shrink drops attribute buffers larger than max bytes and caps the number
// of kept attribute slots, so a pooled packet never pins a large buffer.
func (s *Attrs) shrink(max int) {
	full := s.a[:cap(s.a)]
	for i := range full {
		if cap(full[i].B) > max {
			full[i].B = nil
		}
		if cap(full[i].K) > max {
			full[i].K = nil
		}
	}
	if cap(s.a) > 256 {
		s.a = nil
	}
}
