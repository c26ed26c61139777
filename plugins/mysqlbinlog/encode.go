package mysqlbinlog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/internal/jsonstr"
)

// Kind is the kind of a row change.
type Kind uint8

// Row change kinds.
const (
	KindInsert Kind = iota
	KindUpdate
	KindDelete
	KindRead // a row read by a snapshot (snapshot.go), never in the binlog
)

var kindNames = [...]string{"insert", "update", "delete", "read"}

func (k Kind) String() string { return kindNames[k] }

const allKinds = 1<<KindInsert | 1<<KindUpdate | 1<<KindDelete

// rowSource is the position and transaction context written in each row.
type rowSource struct {
	file     string
	pos      uint32 // end position of the rows event
	gtid     []byte // the transaction's GTID ("" when none)
	serverID uint32
	tsMs     int64 // commit time, Unix milliseconds
}

// rowT is a row image to encode: go-mysql's decoded values (anyRow) or a
// raw image the native decoder parsed (*rawRow). The nil value of either
// is "no image" (the before of an insert, the after of a delete).
type rowT interface {
	appendColumn(dst []byte, c *column, i int, mask string) ([]byte, error)
	isNil() bool
}

// anyRow is a row as go-mysql decodes it.
type anyRow []any

func (r anyRow) appendColumn(dst []byte, c *column, i int, mask string) ([]byte, error) {
	return appendColumn(dst, c, r, i, mask)
}

func (r anyRow) isNil() bool { return r == nil }

// appendRow appends the JSON of one row change (per-row mode):
//
//	{"source":{"file":..,"pos":..,"gtid":..,"server_id":..},"db":..,"table":..,
//	 "kind":"update","ts_ms":..,"columns":[{"name":..,"type":..}],"pk":[..],
//	 "key":{..},"before":{..}|null,"after":{..}|null}
//
// With columns: none (table.rowCols empty) "columns" and "pk" are left
// out; the values keep their names in key, before and after.
func appendRow[R rowT](dst []byte, src *rowSource, t *table, kind Kind, before, after R, mask string) ([]byte, error) {
	dst = appendHead(dst, src, t, kind)
	return appendRowBody(dst, nil, t, before, after, mask)
}

// appendRowBody appends what follows the head (appendHead, the same for
// every row of a rows event) in a per-row payload. Unless key is nil, it
// appends the row's Kafka key (see appendKey) to *key, copying the primary
// key values from the payload instead of encoding them twice.
func appendRowBody[R rowT](dst []byte, key *[]byte, t *table, before, after R, mask string) ([]byte, error) {
	pkRow := after
	if pkRow.isNil() {
		pkRow = before
	}
	var err error
	dst = append(dst, `"key":{`...)
	if key != nil {
		*key = append(*key, t.keyPrefix...)
		if len(t.pk) > 0 {
			*key = append(*key, '[')
		}
	}
	for i, k := range t.pk {
		c := &t.cols[k]
		if i > 0 {
			dst = append(dst, c.nameJSON...)
			if key != nil {
				*key = append(*key, ',')
			}
		} else {
			dst = append(dst, c.nameJSON[1:]...)
		}
		at := len(dst)
		if dst, err = pkRow.appendColumn(dst, c, k, mask); err != nil {
			return dst, err
		}
		if key != nil {
			*key = append(*key, dst[at:]...)
		}
	}
	if key != nil && len(t.pk) > 0 {
		*key = append(*key, ']')
	}
	dst = append(dst, `},"before":`...)
	if dst, err = appendImage(dst, t, before, mask); err != nil {
		return dst, err
	}
	dst = append(dst, `,"after":`...)
	if dst, err = appendImage(dst, t, after, mask); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func appendHead(dst []byte, src *rowSource, t *table, kind Kind) []byte {
	dst = append(dst, `{"source":{"file":`...)
	dst = appendJSONString(dst, src.file)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendUint(dst, uint64(src.pos), 10)
	dst = append(dst, `,"gtid":`...)
	dst = appendJSONString(dst, src.gtid)
	dst = append(dst, `,"server_id":`...)
	dst = strconv.AppendUint(dst, uint64(src.serverID), 10)
	dst = append(dst, "},"...)
	dst = append(dst, t.head...)
	dst = append(dst, `"kind":"`...)
	dst = append(dst, kindNames[kind]...)
	dst = append(dst, `","ts_ms":`...)
	dst = strconv.AppendInt(dst, src.tsMs, 10)
	dst = append(dst, ',')
	return append(dst, t.rowCols...)
}

// appendEventStart starts a per-event payload; rows follow with
// appendEventRow and appendEventEnd closes it.
func appendEventStart(dst []byte, src *rowSource, t *table, kind Kind) []byte {
	dst = appendHead(dst, src, t, kind)
	return append(dst, `"rows":[`...)
}

func appendEventRow[R rowT](dst []byte, t *table, first bool, before, after R, mask string) ([]byte, error) {
	if !first {
		dst = append(dst, ',')
	}
	var err error
	pkRow := after
	if pkRow.isNil() {
		pkRow = before
	}
	dst = append(dst, `{"key":`...)
	if dst, err = appendPK(dst, t, pkRow, mask); err != nil {
		return dst, err
	}
	dst = append(dst, `,"before":`...)
	if dst, err = appendImage(dst, t, before, mask); err != nil {
		return dst, err
	}
	dst = append(dst, `,"after":`...)
	if dst, err = appendImage(dst, t, after, mask); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func appendEventEnd(dst []byte) []byte { return append(dst, "]}"...) }

// appendPK appends {"pkcol":value,...} ({} without a primary key).
func appendPK[R rowT](dst []byte, t *table, row R, mask string) ([]byte, error) {
	dst = append(dst, '{')
	var err error
	for i, k := range t.pk {
		c := &t.cols[k]
		if i > 0 {
			dst = append(dst, c.nameJSON...)
		} else {
			dst = append(dst, c.nameJSON[1:]...)
		}
		if dst, err = row.appendColumn(dst, c, k, mask); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendKey appends the Kafka key: db.table, then the primary key values
// as a JSON array (nothing for a table without primary key):
// shop.orders[42,"EU"].
func appendKey[R rowT](dst []byte, t *table, row R, mask string) ([]byte, error) {
	dst = append(dst, t.keyPrefix...)
	if len(t.pk) == 0 {
		return dst, nil
	}
	dst = append(dst, '[')
	var err error
	for i, k := range t.pk {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = row.appendColumn(dst, &t.cols[k], k, mask); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendImage appends a row image as a JSON object, null for none.
func appendImage[R rowT](dst []byte, t *table, row R, mask string) ([]byte, error) {
	if row.isNil() {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '{')
	var err error
	for j, i := range t.image {
		c := &t.cols[i]
		if j > 0 {
			dst = append(dst, c.nameJSON...)
		} else {
			dst = append(dst, c.nameJSON[1:]...)
		}
		if dst, err = row.appendColumn(dst, c, i, mask); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendColumn(dst []byte, c *column, row []any, i int, mask string) ([]byte, error) {
	if i >= len(row) {
		// Not in the image (binlog_row_image is not FULL).
		return append(dst, "null"...), nil
	}
	if c.mask && row[i] != nil {
		return appendJSONString(dst, mask), nil
	}
	return appendValue(dst, c, row[i])
}

// appendValue appends one decoded value. The types are those of go-mysql's
// RowsEvent with ParseTime=false and UseDecimal=false.
func appendValue(dst []byte, c *column, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case int8:
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(uint8(x)), 10), nil
		}
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(uint16(x)), 10), nil
		}
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		if c.unsigned {
			if c.int24 {
				return strconv.AppendUint(dst, uint64(uint32(x)&0xffffff), 10), nil
			}
			return strconv.AppendUint(dst, uint64(uint32(x)), 10), nil
		}
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		switch c.kind {
		case vkEnum:
			if x >= 1 && int(x) <= len(c.enum) {
				return appendJSONString(dst, c.enum[x-1]), nil
			}
			if x == 0 && len(c.enum) > 0 {
				return append(dst, `""`...), nil // the invalid-value enum
			}
			return strconv.AppendInt(dst, x, 10), nil
		case vkSet:
			if len(c.set) == 0 {
				return strconv.AppendUint(dst, uint64(x), 10), nil
			}
			dst = append(dst, '"')
			first := true
			for b := 0; b < len(c.set) && b < 64; b++ {
				if uint64(x)&(1<<uint(b)) == 0 {
					continue
				}
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = appendJSONStringBody(dst, c.set[b])
			}
			return append(dst, '"'), nil
		case vkBit:
			return strconv.AppendUint(dst, uint64(x), 10), nil
		}
		if c.unsigned {
			return strconv.AppendUint(dst, uint64(x), 10), nil
		}
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case float32:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 32), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(dst, "null"...), nil
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64), nil
	case string:
		if c.kind == vkTemporal && c.fsp > 0 && strings.IndexByte(x, '.') < 0 {
			// go-mysql drops the fraction of a zero TIME.
			dst = append(dst, '"')
			dst = append(dst, x...)
			dst = append(dst, ".000000"[:c.fsp+1]...)
			return append(dst, '"'), nil
		}
		return appendText(dst, c, x), nil
	case []byte:
		return appendText(dst, c, x), nil
	case *replication.JsonDiff:
		return dst, fmt.Errorf("column %s: partial JSON update: set binlog_row_value_options='' on the server so full JSON values are logged", c.def.Name)
	}
	return dst, fmt.Errorf("column %s: unexpected value type %T", c.def.Name, v)
}

// appendText appends a string or bytes value of column c: base64 for
// binary columns (BINARY(n) padded back to n), a raw JSON value for valid
// JSON columns (null when empty), else a JSON string (latin1 converted).
func appendText[T []byte | string](dst []byte, c *column, s T) []byte {
	switch c.kind {
	case vkBinary:
		if len(s) < c.padLen {
			return appendPaddedBase64(dst, s, c.padLen)
		}
		return appendBase64(dst, s)
	case vkJSON:
		if len(s) == 0 {
			return append(dst, "null"...)
		}
		var b []byte
		switch x := any(s).(type) {
		case string:
			b = stringBytes(x)
		case []byte:
			b = x
		}
		if json.Valid(b) {
			return append(dst, s...)
		}
	}
	if c.latin1 {
		return appendLatin1(dst, s)
	}
	return appendJSONString(dst, s)
}

// stringBytes views s as bytes without copying; the result must not be
// modified.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// appendBase64 appends s base64-encoded (standard alphabet, padded) as a
// JSON string.
func appendBase64[T []byte | string](dst []byte, s T) []byte {
	var src []byte
	switch x := any(s).(type) {
	case string:
		src = stringBytes(x)
	case []byte:
		src = x
	}
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = append(dst, '"')
	dst = slices.Grow(dst, n+1)
	l := len(dst)
	dst = dst[:l+n]
	base64.StdEncoding.Encode(dst[l:], src)
	return append(dst, '"')
}

// appendPaddedBase64 appends s right-padded with 0x00 to n bytes,
// base64-encoded, without allocating for n up to 255 (BINARY's limit).
func appendPaddedBase64[T []byte | string](dst []byte, s T, n int) []byte {
	var buf [256]byte
	if n > len(buf) {
		n = len(buf)
	}
	copy(buf[:], s)
	clear(buf[len(s):n])
	return appendBase64(dst, buf[:n])
}

// appendJSONString appends s as a JSON string (jsonstr.Append).
func appendJSONString[T []byte | string](dst []byte, s T) []byte { return jsonstr.Append(dst, s) }

// appendJSONStringBody appends s escaped, without quotes.
func appendJSONStringBody[T []byte | string](dst []byte, s T) []byte {
	return jsonstr.AppendBody(dst, s)
}

// cp1252 maps bytes 0x80-0x9f of MySQL's latin1 (which is cp1252) to
// runes; other bytes map to the same code point.
var cp1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

func appendLatin1[T []byte | string](dst []byte, s T) []byte {
	dst = append(dst, '"')
	for len(s) > 0 {
		// ASCII runs are the same in latin1 and UTF-8.
		n := 0
		for n < len(s) && s[n] < utf8.RuneSelf {
			n++
		}
		dst = appendJSONStringBody(dst, s[:n])
		if n == len(s) {
			break
		}
		b := s[n]
		r := rune(b)
		if b < 0xa0 {
			r = cp1252[b-0x80]
		}
		dst = utf8.AppendRune(dst, r)
		s = s[n+1:]
	}
	return append(dst, '"')
}
