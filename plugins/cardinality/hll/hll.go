package hll

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// DefaultPrecision is the precision of New(0).
const DefaultPrecision = 16

// Sketch is a HyperLogLog sketch.
type Sketch struct {
	p      uint8
	dense  []uint8  // m registers, nil while sparse
	sparse []uint32 // idx<<6 | rank, sorted by idx after compact
	tmp    []uint32 // unsorted additions to sparse
}

// New returns an empty sketch of precision p (0 for the default).
func New(p int) (*Sketch, error) {
	if p == 0 {
		p = DefaultPrecision
	}
	if p < 4 || p > 18 {
		return nil, fmt.Errorf("hll: precision %d out of range 4..18", p)
	}
	return &Sketch{p: uint8(p)}, nil
}

// Precision returns p.
func (s *Sketch) Precision() int { return int(s.p) }

// Dense reports whether the sketch uses the dense representation.
func (s *Sketch) Dense() bool { return s.dense != nil }

func (s *Sketch) m() int { return 1 << s.p }

// Hash64 is the stable 64-bit hash of b used by AddBytes.
func Hash64(b []byte) uint64 {
	const (
		k1 = 0x9E3779B185EBCA87
		k2 = 0xC2B2AE3D27D4EB4F
	)
	h := uint64(len(b)) * k1
	for len(b) >= 8 {
		v := binary.LittleEndian.Uint64(b)
		v *= k2
		v = bits.RotateLeft64(v, 31)
		v *= k1
		h ^= v
		h = bits.RotateLeft64(h, 27)*k1 + 0x52dce729
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c) << (8 * i)
		}
		t *= k2
		t = bits.RotateLeft64(t, 31)
		t *= k1
		h ^= t
	}
	return fmix(h)
}

func fmix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// AddBytes adds a text value.
func (s *Sketch) AddBytes(b []byte) { s.AddHash(Hash64(b)) }

// AddString adds a text value.
func (s *Sketch) AddString(v string) { s.AddHash(Hash64([]byte(v))) }

// AddUint64 adds an integer id (hashed, so sequential ids spread).
func (s *Sketch) AddUint64(v uint64) { s.AddHash(fmix(v ^ 0x5bd1e9955bd1e995)) }

// AddInt64 adds an integer id.
func (s *Sketch) AddInt64(v int64) { s.AddUint64(uint64(v)) }

// AddHash adds a 64-bit hash.
func (s *Sketch) AddHash(h uint64) {
	idx := uint32(h >> (64 - s.p))
	w := h<<s.p | 1<<(s.p-1) // guard bit bounds the rank
	rank := uint8(bits.LeadingZeros64(w) + 1)
	if s.dense != nil {
		if rank > s.dense[idx] {
			s.dense[idx] = rank
		}
		return
	}
	s.tmp = append(s.tmp, idx<<6|uint32(rank))
	if len(s.tmp) >= s.sparseMax()/2+1 {
		s.compact()
	}
}

// sparseMax is the number of sparse pairs beyond which dense is smaller.
func (s *Sketch) sparseMax() int { return s.m() / 16 }

// compact merges tmp into sparse, keeping the max rank per index, and
// converts to dense when sparse grew too large.
func (s *Sketch) compact() {
	if len(s.tmp) == 0 {
		return
	}
	all := append(s.sparse, s.tmp...)
	s.tmp = s.tmp[:0]
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	// Sorted by idx then rank: keep the last of each idx.
	out := all[:0]
	for i, v := range all {
		if i+1 < len(all) && all[i+1]>>6 == v>>6 {
			continue
		}
		out = append(out, v)
	}
	s.sparse = out
	if len(s.sparse) > s.sparseMax() {
		s.toDense()
	}
}

func (s *Sketch) toDense() {
	d := make([]uint8, s.m())
	for _, v := range s.sparse {
		if r := uint8(v & 63); r > d[v>>6] {
			d[v>>6] = r
		}
	}
	for _, v := range s.tmp {
		if r := uint8(v & 63); r > d[v>>6] {
			d[v>>6] = r
		}
	}
	s.dense, s.sparse, s.tmp = d, nil, nil
}

// Merge adds o's elements into s (same precision required).
func (s *Sketch) Merge(o *Sketch) error {
	if o.p != s.p {
		return fmt.Errorf("hll: cannot merge precision %d into %d", o.p, s.p)
	}
	if o.dense != nil && s.dense == nil {
		s.toDense()
	}
	if s.dense != nil {
		if o.dense != nil {
			for i, r := range o.dense {
				if r > s.dense[i] {
					s.dense[i] = r
				}
			}
			return nil
		}
		for _, set := range [][]uint32{o.sparse, o.tmp} {
			for _, v := range set {
				if r := uint8(v & 63); r > s.dense[v>>6] {
					s.dense[v>>6] = r
				}
			}
		}
		return nil
	}
	s.tmp = append(s.tmp, o.sparse...)
	s.tmp = append(s.tmp, o.tmp...)
	s.compact()
	return nil
}

// Clone returns a copy.
func (s *Sketch) Clone() *Sketch {
	c := &Sketch{p: s.p}
	if s.dense != nil {
		c.dense = append([]uint8(nil), s.dense...)
	}
	c.sparse = append([]uint32(nil), s.sparse...)
	c.tmp = append([]uint32(nil), s.tmp...)
	return c
}

// Estimate returns the estimated number of distinct elements added.
func (s *Sketch) Estimate() uint64 {
	q := 64 - int(s.p)
	var c [66]int // c[k] = registers with value k (0..q+1)
	m := s.m()
	if s.dense != nil {
		for _, r := range s.dense {
			c[r]++
		}
	} else {
		s.compact()
		if s.dense != nil {
			return s.Estimate()
		}
		for _, v := range s.sparse {
			c[v&63]++
		}
		c[0] = m - len(s.sparse)
	}
	mf := float64(m)
	z := mf * tau(1-float64(c[q+1])/mf)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += mf * sigma(float64(c[0])/mf)
	alphaInf := 1 / (2 * math.Ln2)
	return uint64(math.Round(alphaInf * mf * mf / z))
}

func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zOld := z
		z += x * y
		y += y
		if z == zOld {
			return z
		}
	}
}

func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zOld := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == zOld {
			return z / 3
		}
	}
}

// Serialisation: byte 0 version (1), byte 1 precision, byte 2 kind
// (0 sparse, 1 dense); sparse: uvarint count then uvarint deltas of the
// sorted pairs; dense: m register bytes.
const version = 1

// MarshalBinary implements encoding.BinaryMarshaler.
func (s *Sketch) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil), nil }

// AppendBinary appends the serialised sketch to dst.
func (s *Sketch) AppendBinary(dst []byte) []byte {
	if s.dense == nil {
		s.compact()
	}
	if s.dense != nil {
		dst = append(dst, version, s.p, 1)
		return append(dst, s.dense...)
	}
	dst = append(dst, version, s.p, 0)
	dst = binary.AppendUvarint(dst, uint64(len(s.sparse)))
	var prev uint32
	for _, v := range s.sparse {
		dst = binary.AppendUvarint(dst, uint64(v-prev))
		prev = v
	}
	return dst
}

var errCorrupt = errors.New("hll: corrupt serialised sketch")

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	if len(b) < 3 || b[0] != version || b[1] < 4 || b[1] > 18 {
		return errCorrupt
	}
	*s = Sketch{p: b[1]}
	m := s.m()
	switch b[2] {
	case 1:
		if len(b) != 3+m {
			return errCorrupt
		}
		s.dense = append([]uint8(nil), b[3:]...)
		for _, r := range s.dense {
			if int(r) > 65-int(s.p) {
				return errCorrupt
			}
		}
	case 0:
		b = b[3:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(m) {
			return errCorrupt
		}
		b = b[k:]
		s.sparse = make([]uint32, 0, n)
		var prev uint32
		for i := uint64(0); i < n; i++ {
			d, k := binary.Uvarint(b)
			if k <= 0 || (i > 0 && d == 0) || uint64(prev)+d > math.MaxUint32 {
				return errCorrupt
			}
			b = b[k:]
			prev += uint32(d)
			if int(prev>>6) >= m || int(prev&63) > 65-int(s.p) {
				return errCorrupt
			}
			s.sparse = append(s.sparse, prev)
		}
		if len(b) != 0 {
			return errCorrupt
		}
	default:
		return errCorrupt
	}
	return nil
}
