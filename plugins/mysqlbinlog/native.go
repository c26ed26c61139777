package mysqlbinlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// The native row decoder reads row images straight from the binlog bytes
// into JSON: no []any per row, no boxed values, no formatted strings in
// between. go-mysql still reads the stream, the event headers and the
// table maps; only the row images of rows events are decoded here.
//
// It writes exactly what go-mysql's decoding (ParseTime=false,
// UseDecimal=false) followed by appendValue writes; TestBinlogNativeMatches
// compares the two over every supported type on a real server. Tables with
// a column type it does not know (old-format TIME/DATETIME/TIMESTAMP,
// MySQL's binary JSON, GEOMETRY, VECTOR), MariaDB's compressed rows events
// and MySQL's partial JSON updates take go-mysql's path.

// rawRows is a rows event whose row images were left undecoded by the
// parser: data[pos:] holds them. Set by rowsHook in go-mysql's goroutine,
// read by the session's.
type rawRows struct {
	e    *replication.RowsEvent
	data []byte
	pos  int
}

// span locates one column's value in a row image. n < 0: no value.
type span struct{ off, n int32 }

const (
	spanNull   = -1 // SQL NULL
	spanAbsent = -2 // not in the image (binlog_row_image is not FULL)
)

// rawRow is one parsed row image: the event's bytes and a span per column.
type rawRow struct {
	data  []byte
	spans []span
}

var errTruncated = errors.New("row image ends inside a value")

// nativeLayout sets how the native decoder finds a column's value: a fixed
// width, or a little-endian length prefix of 1 to 4 bytes. It reports
// false for types the native decoder leaves to go-mysql.
func (c *column) nativeLayout(tp byte, meta uint16) bool {
	c.tp, c.meta = tp, meta
	switch tp {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_YEAR:
		c.fixed = 1
	case mysql.MYSQL_TYPE_SHORT:
		c.fixed = 2
	case mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_DATE:
		c.fixed = 3
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_FLOAT:
		c.fixed = 4
	case mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_DOUBLE:
		c.fixed = 8
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale := int(meta>>8), int(meta&0xff)
		if prec == 0 || scale > prec || prec > 65 {
			return false
		}
		c.fixed = decimalBinSize(prec, scale)
	case mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIME2:
		if meta > 6 {
			return false
		}
		base := 3 // TIME2
		switch tp {
		case mysql.MYSQL_TYPE_DATETIME2:
			base = 5
		case mysql.MYSQL_TYPE_TIMESTAMP2:
			base = 4
		}
		c.fixed = base + int(meta+1)/2
	case mysql.MYSQL_TYPE_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xff)
		if nbits < 1 || nbits > 64 {
			return false
		}
		c.fixed = (nbits + 7) / 8
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		c.prefix = 1
		if meta >= 256 {
			c.prefix = 2
		}
	case mysql.MYSQL_TYPE_BLOB:
		if meta < 1 || meta > 4 {
			return false
		}
		c.prefix = int(meta)
	case mysql.MYSQL_TYPE_STRING:
		switch realType(tp, meta) {
		case mysql.MYSQL_TYPE_ENUM:
			c.tp = mysql.MYSQL_TYPE_ENUM
			c.fixed = int(meta & 0xff)
			if c.fixed != 1 && c.fixed != 2 {
				return false
			}
		case mysql.MYSQL_TYPE_SET:
			c.tp = mysql.MYSQL_TYPE_SET
			c.fixed = int(meta & 0xff)
			if c.fixed < 1 || c.fixed > 8 {
				return false
			}
		default:
			c.prefix = 1
			if stringLength(meta) >= 256 {
				c.prefix = 2
			}
		}
	default:
		return false
	}
	return true
}

// decimalBinSize is the width of a DECIMAL(prec,scale) in the binlog.
func decimalBinSize(prec, scale int) int {
	intg := prec - scale
	return intg/9*4 + decimalTailBytes[intg%9] + scale/9*4 + decimalTailBytes[scale%9]
}

var decimalTailBytes = [9]int{0, 1, 1, 2, 2, 3, 3, 4, 4}

// parseImage parses the row image at data[pos:] (present: the event's
// columns-present bitmap, nPresent its bits set) into r and returns the
// position after it.
func (t *table) parseImage(r *rawRow, data []byte, pos int, present []byte, nPresent int) (int, error) {
	n := len(t.cols)
	nullLen := (nPresent + 7) / 8
	if pos+nullLen > len(data) {
		return pos, errTruncated
	}
	nulls := data[pos : pos+nullLen]
	pos += nullLen
	r.data = data
	if cap(r.spans) < n {
		r.spans = make([]span, n)
	}
	r.spans = r.spans[:n]
	k := 0 // index among present columns
	for i := range n {
		if present[i>>3]&(1<<(i&7)) == 0 {
			r.spans[i] = span{n: spanAbsent}
			continue
		}
		isNull := nulls[k>>3]&(1<<(k&7)) != 0
		k++
		if isNull {
			r.spans[i] = span{n: spanNull}
			continue
		}
		c := &t.cols[i]
		w := c.fixed
		if c.prefix > 0 {
			if pos+c.prefix > len(data) {
				return pos, errTruncated
			}
			var l uint32
			for j := c.prefix - 1; j >= 0; j-- {
				l = l<<8 | uint32(data[pos+j])
			}
			pos += c.prefix
			w = int(l)
		}
		if w < 0 || pos+w > len(data) || pos+w > math.MaxInt32 {
			return pos, errTruncated
		}
		r.spans[i] = span{off: int32(pos), n: int32(w)}
		pos += w
	}
	return pos, nil
}

// appendRaw appends the JSON of column i of r (null when NULL or absent).
func (r *rawRow) appendColumn(dst []byte, c *column, i int, mask string) ([]byte, error) {
	s := r.spans[i]
	if s.n < 0 {
		return append(dst, "null"...), nil
	}
	if c.mask {
		return appendJSONString(dst, mask), nil
	}
	return appendRawValue(dst, c, r.data[s.off:s.off+s.n])
}

func (r *rawRow) isNil() bool { return r == nil }

// appendRawValue appends one value from its binlog bytes b (without the
// length prefix), as appendValue does for go-mysql's decoding of them.
func appendRawValue(dst []byte, c *column, b []byte) ([]byte, error) {
	switch c.tp {
	case mysql.MYSQL_TYPE_TINY:
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(b[0]), 10), nil
		}
		return strconv.AppendInt(dst, int64(int8(b[0])), 10), nil
	case mysql.MYSQL_TYPE_SHORT:
		v := binary.LittleEndian.Uint16(b)
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(v), 10), nil
		}
		return strconv.AppendInt(dst, int64(int16(v)), 10), nil
	case mysql.MYSQL_TYPE_INT24:
		v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(v), 10), nil
		}
		return strconv.AppendInt(dst, int64(int32(v<<8)>>8), 10), nil
	case mysql.MYSQL_TYPE_LONG:
		v := binary.LittleEndian.Uint32(b)
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(v), 10), nil
		}
		return strconv.AppendInt(dst, int64(int32(v)), 10), nil
	case mysql.MYSQL_TYPE_LONGLONG:
		v := binary.LittleEndian.Uint64(b)
		if c.unsigned {
			return strconv.AppendUint(dst, v, 10), nil
		}
		return strconv.AppendInt(dst, int64(v), 10), nil
	case mysql.MYSQL_TYPE_YEAR:
		if b[0] == 0 {
			return append(dst, '0'), nil
		}
		return strconv.AppendInt(dst, int64(b[0])+1900, 10), nil
	case mysql.MYSQL_TYPE_FLOAT:
		f := float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 32), nil
	case mysql.MYSQL_TYPE_DOUBLE:
		f := math.Float64frombits(binary.LittleEndian.Uint64(b))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	case mysql.MYSQL_TYPE_NEWDECIMAL:
		dst = append(dst, '"')
		dst = appendDecimal(dst, b, int(c.meta>>8), int(c.meta&0xff))
		return append(dst, '"'), nil
	case mysql.MYSQL_TYPE_DATE:
		v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		if v == 0 {
			return append(dst, `"0000-00-00"`...), nil
		}
		dst = append(dst, '"')
		dst = appendDate(dst, int(v/(16*32)), int(v/32%16), int(v%32))
		return append(dst, '"'), nil
	case mysql.MYSQL_TYPE_DATETIME2:
		dst = append(dst, '"')
		dst = appendDatetime2(dst, b, int(c.meta))
		return append(dst, '"'), nil
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		dst = append(dst, '"')
		dst = appendTimestamp2(dst, b, int(c.meta))
		return append(dst, '"'), nil
	case mysql.MYSQL_TYPE_TIME2:
		dst = append(dst, '"')
		at := len(dst)
		dst = appendTime2(dst, b, int(c.meta))
		if c.fsp > 0 && !hasDot(dst[at:]) {
			dst = append(dst, ".000000"[:c.fsp+1]...) // as appendValue does
		}
		return append(dst, '"'), nil
	case mysql.MYSQL_TYPE_BIT:
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return strconv.AppendUint(dst, v, 10), nil
	case mysql.MYSQL_TYPE_ENUM:
		x := int64(b[0])
		if len(b) == 2 {
			x = int64(binary.LittleEndian.Uint16(b))
		}
		return appendValue(dst, c, x)
	case mysql.MYSQL_TYPE_SET:
		var x uint64
		for j := len(b) - 1; j >= 0; j-- {
			x = x<<8 | uint64(b[j])
		}
		return appendValue(dst, c, int64(x))
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_BLOB:
		return appendText(dst, c, b), nil
	}
	return dst, fmt.Errorf("column %s: no native decoding for binlog type %d", c.def.Name, c.tp)
}

func hasDot(b []byte) bool {
	for _, x := range b {
		if x == '.' {
			return true
		}
	}
	return false
}

// appendDecimal writes a binary DECIMAL(prec,scale) as go-mysql's
// decodeDecimal does: a leading '-' for negatives (also -0), no leading
// zeros, exactly scale fraction digits.
func appendDecimal(dst []byte, b []byte, prec, scale int) []byte {
	intg := prec - scale
	fullIntg, tailIntg := intg/9, intg%9
	fullFrac, tailFrac := scale/9, scale%9
	var mask uint32
	neg := b[0]&0x80 == 0
	if neg {
		mask = math.MaxUint32
		dst = append(dst, '-')
	}
	// The sign bit is flipped in the first byte; read through a copy of
	// that byte only.
	first := b[0] ^ 0x80
	rd := func(p, n int) uint32 {
		var v uint32
		for j := 0; j < n; j++ {
			x := b[p+j]
			if p+j == 0 {
				x = first
			}
			v = v<<8 | uint32(x)
		}
		if n == 0 {
			return 0
		}
		return (v ^ mask) & (math.MaxUint32 >> (32 - 8*uint(n)))
	}
	pos := 0
	leading := true
	if n := decimalTailBytes[tailIntg]; n > 0 {
		if v := rd(0, n); v != 0 {
			leading = false
			dst = strconv.AppendUint(dst, uint64(v), 10)
		}
		pos += n
	}
	for range fullIntg {
		v := rd(pos, 4)
		pos += 4
		if leading {
			if v != 0 {
				leading = false
				dst = strconv.AppendUint(dst, uint64(v), 10)
			}
		} else {
			dst = appendPadded(dst, uint64(v), 9)
		}
	}
	if leading {
		dst = append(dst, '0')
	}
	if scale == 0 {
		return dst
	}
	dst = append(dst, '.')
	for range fullFrac {
		dst = appendPadded(dst, uint64(rd(pos, 4)), 9)
		pos += 4
	}
	if n := decimalTailBytes[tailFrac]; n > 0 {
		dst = appendPadded(dst, uint64(rd(pos, n)), tailFrac)
	}
	return dst
}

// appendPadded appends v in decimal, left-padded with zeros to width
// digits (more digits are written whole).
func appendPadded(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], v, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// digits2 holds "00" to "99".
const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// append2 appends v as two digits (appendPadded beyond 99).
func append2(dst []byte, v int) []byte {
	if uint(v) < 100 {
		return append(dst, digits2[2*v], digits2[2*v+1])
	}
	return appendPadded(dst, uint64(max(v, 0)), 2)
}

func appendDate(dst []byte, y, m, d int) []byte {
	if uint(y) < 10000 {
		dst = append2(dst, y/100)
		dst = append2(dst, y%100)
	} else {
		dst = appendPadded(dst, uint64(max(y, 0)), 4)
	}
	dst = append(dst, '-')
	dst = append2(dst, m)
	dst = append(dst, '-')
	return append2(dst, d)
}

func appendClock(dst []byte, h, m, s int) []byte {
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, m)
	dst = append(dst, ':')
	return append2(dst, s)
}

// appendFrac appends "." and the first dec digits of usec (6 digits).
func appendFrac(dst []byte, usec int64, dec int) []byte {
	if dec == 0 {
		return dst
	}
	var buf [8]byte
	var s []byte
	if uint64(usec) < 1000000 {
		u := int(usec)
		s = append2(append2(append2(buf[:0], u/10000), u/100%100), u%100)
	} else {
		s = appendPadded(buf[:0], uint64(usec), 6)
	}
	dst = append(dst, '.')
	return append(dst, s[:dec]...)
}

// fracOf reads the fractional part of a TIME2/DATETIME2/TIMESTAMP2 in
// microseconds.
func fracOf(b []byte, dec int) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2])
	}
	return 0
}

func appendDatetime2(dst []byte, b []byte, dec int) []byte {
	intPart := int64(b[0])<<32 | int64(b[1])<<24 | int64(b[2])<<16 | int64(b[3])<<8 | int64(b[4])
	intPart -= 0x8000000000
	frac := fracOf(b[5:], dec)
	if intPart == 0 {
		dst = append(dst, "0000-00-00 00:00:00"...)
		return appendFrac(dst, frac, dec)
	}
	tmp := intPart<<24 + frac
	if tmp < 0 {
		tmp = -tmp
	}
	ymdhms := tmp >> 24
	ymd, hms := ymdhms>>17, ymdhms%(1<<17)
	ym := ymd >> 5
	dst = appendDate(dst, int(ym/13), int(ym%13), int(ymd%(1<<5)))
	dst = append(dst, ' ')
	dst = appendClock(dst, int(hms>>12), int((hms>>6)%(1<<6)), int(hms%(1<<6)))
	return appendFrac(dst, frac, dec)
}

func appendTimestamp2(dst []byte, b []byte, dec int) []byte {
	sec := int64(binary.BigEndian.Uint32(b))
	usec := fracOf(b[4:], dec)
	if sec == 0 {
		dst = append(dst, "0000-00-00 00:00:00"...)
		return appendFrac(dst, usec, dec)
	}
	t := time.Unix(sec, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = appendDate(dst, y, int(mo), d)
	dst = append(dst, ' ')
	dst = appendClock(dst, h, mi, s)
	return appendFrac(dst, usec, dec)
}

func appendTime2(dst []byte, b []byte, dec int) []byte {
	be := func(b []byte) int64 {
		var v int64
		for _, x := range b {
			v = v<<8 | int64(x)
		}
		return v
	}
	const intOfs, ofs = 0x800000, 0x800000000000
	var tmp, intPart, frac int64
	switch dec {
	case 1, 2:
		intPart = be(b[0:3]) - intOfs
		frac = int64(b[3])
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x100
		}
		tmp = intPart<<24 + frac*10000
	case 3, 4:
		intPart = be(b[0:3]) - intOfs
		frac = int64(binary.BigEndian.Uint16(b[3:5]))
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x10000
		}
		tmp = intPart<<24 + frac*100
	case 5, 6:
		return appendTimeTmp(dst, be(b[0:6])-ofs, dec)
	default:
		intPart = be(b[0:3]) - intOfs
		tmp = intPart << 24
	}
	if intPart == 0 && frac == 0 {
		return append(dst, "00:00:00"...)
	}
	return appendTimeTmp(dst, tmp, dec)
}

func appendTimeTmp(dst []byte, tmp int64, dec int) []byte {
	if tmp < 0 {
		tmp = -tmp
		dst = append(dst, '-')
	}
	hms := tmp >> 24
	dst = appendClock(dst, int((hms>>12)%(1<<10)), int((hms>>6)%(1<<6)), int(hms%(1<<6)))
	if sec := tmp % (1 << 24); sec != 0 {
		dst = appendFrac(dst, sec, dec)
	}
	return dst
}

// nativeEvent reports whether the native decoder reads rows events of
// this type (MariaDB's compressed and MySQL's partial-JSON events are
// left to go-mysql).
func nativeEvent(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		return true
	}
	return false
}

// fullBitmap reports whether the first n bits of b are all set.
func fullBitmap(b []byte, n int) bool {
	for i := 0; i+8 <= n; i += 8 {
		if b[i>>3] != 0xff {
			return false
		}
	}
	if r := n % 8; r != 0 {
		m := byte(1<<r - 1)
		return b[n>>3]&m == m
	}
	return true
}

// countBits counts the set bits among the first n of b.
func countBits(b []byte, n int) int {
	c := 0
	for i := 0; i+8 <= n; i += 8 {
		c += bits.OnesCount8(b[i>>3])
	}
	if r := n % 8; r != 0 {
		c += bits.OnesCount8(b[n>>3] & byte(1<<r-1))
	}
	return c
}
