package mysqlbinlog

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// ColumnDef is one column of a table as dbus needs it to decode and name
// values. It is built from the table-map metadata (binlog_row_metadata=FULL)
// or from the schema history.
type ColumnDef struct {
	Name string `json:"name"`
	// Type is a readable SQL type ("int unsigned", "decimal(10,2)",
	// "varchar", "enum"); written into every row change.
	Type     string `json:"type"`
	Unsigned bool   `json:"unsigned,omitempty"`
	// Binary columns (charset binary: BINARY, VARBINARY, BLOB, BIT is not
	// one) are written base64-encoded.
	Binary bool `json:"binary,omitempty"`
	// Latin1 text is converted to UTF-8 (MySQL's latin1 is cp1252).
	Latin1 bool     `json:"latin1,omitempty"`
	Enum   []string `json:"enum,omitempty"`
	Set    []string `json:"set,omitempty"`
}

// TableDef is a table's columns in binlog order and its primary key
// (column indexes).
type TableDef struct {
	Columns []ColumnDef `json:"columns"`
	PK      []int       `json:"pk,omitempty"`
}

// valueKind selects how a column's decoded value is written.
type valueKind uint8

const (
	vkNumber   valueKind = iota // ints, floats: JSON numbers
	vkString                    // text: JSON string
	vkBinary                    // bytes: base64 JSON string
	vkDecimal                   // exact decimal text: JSON string
	vkTemporal                  // date/time text: JSON string
	vkEnum
	vkSet
	vkBit
	vkJSON // MySQL JSON: raw JSON value
)

// column is a compiled column: how to write its name and value.
type column struct {
	def      ColumnDef
	kind     valueKind
	int24    bool // MEDIUMINT: go-mysql sign-extends it into an int32
	fsp      int  // fractional digits of TIME2/DATETIME2/TIMESTAMP2
	padLen   int  // BINARY(n): the binlog strips trailing 0x00, pad back to n
	unsigned bool
	latin1   bool
	drop     bool
	mask     bool
	nameJSON []byte // `,"name":` (the comma is skipped for the first)
	enum     [][]byte
	set      [][]byte

	// Native decoding (see native.go): the binlog type (ENUM and SET
	// unpacked from STRING) and metadata, and the value's width: fixed
	// bytes, or a length prefix of prefix bytes.
	tp     byte
	meta   uint16
	fixed  int
	prefix int
}

// table is a compiled table schema, valid for one table-map content.
type table struct {
	db, name  string
	cols      []column
	pk        []int
	image     []int // columns written in row images (not dropped)
	keep      bool  // passes include/exclude
	native    bool  // every column type is decoded natively (native.go)
	kinds     uint8 // kinds kept (bit per Kind)
	source    string
	head      []byte // `"db":"..","table":"..",`
	colsJSON  []byte // `"columns":[...],"pk":[...],`
	rowCols   []byte // what appendHead writes of colsJSON: all, or nothing (columns: none)
	keyPrefix []byte // `db.table`

	// The table-map content this was compiled from (compared, not kept
	// alive beyond the next table map of the same id).
	tmTypes  []byte
	tmMeta   []uint16
	tmSigned []byte
	tmNames  [][]byte
	tmDefCS  []uint64
	tmColCS  []uint64
	tmPK     []uint64
	tmEnum   [][][]byte
	tmSet    [][][]byte
}

// sameMap reports whether tm has the content t was compiled from.
func (t *table) sameMap(tm *replication.TableMapEvent) bool {
	return string(tm.Schema) == t.db && string(tm.Table) == t.name &&
		bytes.Equal(tm.ColumnType, t.tmTypes) && slices.Equal(tm.ColumnMeta, t.tmMeta) &&
		bytes.Equal(tm.SignednessBitmap, t.tmSigned) && slices.Equal(tm.DefaultCharset, t.tmDefCS) &&
		slices.Equal(tm.ColumnCharset, t.tmColCS) && slices.Equal(tm.PrimaryKey, t.tmPK) &&
		slices.EqualFunc(tm.ColumnName, t.tmNames, bytes.Equal) &&
		slices.EqualFunc(tm.EnumStrValue, t.tmEnum, eqBytesList) &&
		slices.EqualFunc(tm.SetStrValue, t.tmSet, eqBytesList)
}

func eqBytesList(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }

// hasFullMetadata reports whether tm carries column names (FULL metadata).
func hasFullMetadata(tm *replication.TableMapEvent) bool {
	return len(tm.ColumnName) == int(tm.ColumnCount)
}

// defFromMetadata builds the table definition from FULL table-map metadata.
func defFromMetadata(tm *replication.TableMapEvent) TableDef {
	n := int(tm.ColumnCount)
	def := TableDef{Columns: make([]ColumnDef, n)}
	unsigned := tm.UnsignedMap()
	coll := tm.CollationMap()
	enums := tm.EnumStrValueMap()
	sets := tm.SetStrValueMap()
	for i := 0; i < n; i++ {
		c := &def.Columns[i]
		c.Name = string(tm.ColumnName[i])
		c.Unsigned = unsigned[i]
		if id, ok := coll[i]; ok {
			c.Binary = id == 63
			c.Latin1 = isLatin1(id)
		}
		c.Enum = enums[i]
		c.Set = sets[i]
		c.Type = typeName(tm.ColumnType[i], tm.ColumnMeta[i], c.Unsigned, c.Binary)
	}
	for _, k := range tm.PrimaryKey {
		def.PK = append(def.PK, int(k))
	}
	return def
}

// isLatin1 reports whether a collation id belongs to charset latin1.
func isLatin1(id uint64) bool {
	switch id {
	case 5, 8, 15, 31, 47, 48, 49, 94:
		return true
	}
	return false
}

// typeName renders a readable type from the binlog type and metadata.
func typeName(tp byte, meta uint16, unsigned, binary bool) string {
	u := ""
	if unsigned {
		u = " unsigned"
	}
	if tp == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		switch byte(meta >> 8) {
		case mysql.MYSQL_TYPE_ENUM:
			return "enum"
		case mysql.MYSQL_TYPE_SET:
			return "set"
		}
	}
	switch tp {
	case mysql.MYSQL_TYPE_TINY:
		return "tinyint" + u
	case mysql.MYSQL_TYPE_SHORT:
		return "smallint" + u
	case mysql.MYSQL_TYPE_INT24:
		return "mediumint" + u
	case mysql.MYSQL_TYPE_LONG:
		return "int" + u
	case mysql.MYSQL_TYPE_LONGLONG:
		return "bigint" + u
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return "decimal(" + strconv.Itoa(int(meta>>8)) + "," + strconv.Itoa(int(meta&0xff)) + ")" + u
	case mysql.MYSQL_TYPE_FLOAT:
		return "float" + u
	case mysql.MYSQL_TYPE_DOUBLE:
		return "double" + u
	case mysql.MYSQL_TYPE_BIT:
		return "bit(" + strconv.Itoa(int(meta>>8)*8+int(meta&0xff)) + ")"
	case mysql.MYSQL_TYPE_TIMESTAMP:
		return "timestamp"
	case mysql.MYSQL_TYPE_TIMESTAMP2:
		return fsp("timestamp", meta)
	case mysql.MYSQL_TYPE_DATETIME:
		return "datetime"
	case mysql.MYSQL_TYPE_DATETIME2:
		return fsp("datetime", meta)
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return "date"
	case mysql.MYSQL_TYPE_TIME:
		return "time"
	case mysql.MYSQL_TYPE_TIME2:
		return fsp("time", meta)
	case mysql.MYSQL_TYPE_YEAR:
		return "year"
	case mysql.MYSQL_TYPE_ENUM:
		return "enum"
	case mysql.MYSQL_TYPE_SET:
		return "set"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
		if binary {
			return "varbinary"
		}
		return "varchar"
	case mysql.MYSQL_TYPE_STRING:
		if binary {
			return "binary"
		}
		return "char"
	case mysql.MYSQL_TYPE_BLOB:
		names := [...]string{"tinyblob", "blob", "mediumblob", "longblob", "tinytext", "text", "mediumtext", "longtext"}
		i := int(meta) - 1
		if i < 0 || i > 3 {
			i = 1
		}
		if !binary {
			i += 4
		}
		return names[i]
	case mysql.MYSQL_TYPE_JSON:
		return "json"
	case mysql.MYSQL_TYPE_GEOMETRY:
		return "geometry"
	case mysql.MYSQL_TYPE_VECTOR:
		return "vector"
	}
	return "type" + strconv.Itoa(int(tp))
}

func fsp(name string, meta uint16) string {
	if meta == 0 {
		return name
	}
	return name + "(" + strconv.Itoa(int(meta)) + ")"
}

// stringLength is the declared byte length of a STRING (CHAR/BINARY)
// column from its table-map metadata.
func stringLength(meta uint16) int {
	if meta < 256 {
		return int(meta)
	}
	b0, b1 := uint16(meta>>8), meta&0xff
	if b0&0x30 != 0x30 {
		return int(b1 | ((b0&0x30)^0x30)<<4)
	}
	return int(b1)
}

// realType is the column's type with ENUM/SET unpacked from STRING.
func realType(tp byte, meta uint16) byte {
	if tp == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		rt := byte(meta >> 8)
		if rt == mysql.MYSQL_TYPE_ENUM || rt == mysql.MYSQL_TYPE_SET {
			return rt
		}
	}
	return tp
}

// kindOf chooses how values of a column are written.
func kindOf(tp byte, meta uint16, def *ColumnDef) valueKind {
	switch realType(tp, meta) {
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return vkDecimal
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_DATETIME,
		mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE,
		mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return vkTemporal
	case mysql.MYSQL_TYPE_ENUM:
		return vkEnum
	case mysql.MYSQL_TYPE_SET:
		return vkSet
	case mysql.MYSQL_TYPE_BIT:
		return vkBit
	case mysql.MYSQL_TYPE_JSON:
		return vkJSON
	case mysql.MYSQL_TYPE_GEOMETRY, mysql.MYSQL_TYPE_VECTOR:
		return vkBinary
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_BLOB:
		if def.Binary {
			return vkBinary
		}
		return vkString
	}
	return vkNumber
}

// compatible reports whether a history column definition can describe a
// binlog column of type tp (a cheap check that the history matches).
func compatible(tp byte, meta uint16, def *ColumnDef) bool {
	rt := realType(tp, meta)
	switch rt {
	case mysql.MYSQL_TYPE_ENUM:
		return def.Type == "enum"
	case mysql.MYSQL_TYPE_SET:
		return def.Type == "set"
	}
	want := typeName(tp, meta, def.Unsigned, def.Binary)
	// Compare the type families only: history types carry declared
	// lengths the binlog does not.
	return family(want) == family(def.Type)
}

// family maps a type name to a coarse family for compatible.
func family(t string) string {
	for i := 0; i < len(t); i++ {
		if t[i] == '(' || t[i] == ' ' {
			t = t[:i]
			break
		}
	}
	switch t {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "year":
		return t
	case "bool", "boolean":
		return "tinyint"
	case "integer":
		return "int"
	case "decimal", "numeric", "dec", "fixed":
		return "decimal"
	case "float", "double", "real":
		if t == "real" {
			return "double"
		}
		return t
	case "char", "varchar", "binary", "varbinary":
		return "string"
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json", "long":
		return "blob"
	}
	return t
}

// compile builds the compiled table for tm with def, applying the filters.
func compile(tm *replication.TableMapEvent, def TableDef, f *filters, source string) (*table, error) {
	n := int(tm.ColumnCount)
	if len(def.Columns) != n {
		return nil, fmt.Errorf("table %s.%s: schema has %d columns, the binlog row has %d", tm.Schema, tm.Table, len(def.Columns), n)
	}
	t := &table{
		db: string(tm.Schema), name: string(tm.Table), source: source,
		cols: make([]column, n), pk: def.PK,
		tmTypes: bytes.Clone(tm.ColumnType), tmMeta: slices.Clone(tm.ColumnMeta),
		tmSigned: bytes.Clone(tm.SignednessBitmap), tmDefCS: slices.Clone(tm.DefaultCharset),
		tmColCS: slices.Clone(tm.ColumnCharset), tmPK: slices.Clone(tm.PrimaryKey),
		tmNames: cloneList(tm.ColumnName), tmEnum: cloneLists(tm.EnumStrValue), tmSet: cloneLists(tm.SetStrValue),
	}
	t.keep = f.keepTable(t.db, t.name)
	t.kinds = f.kinds
	if f != nil && f.isSignal(t.db, t.name) {
		t.kinds = allKinds // watermarks are inserts or updates
	}
	t.native = true
	for i := range t.cols {
		c := &t.cols[i]
		c.def = def.Columns[i]
		c.kind = kindOf(tm.ColumnType[i], tm.ColumnMeta[i], &c.def)
		c.unsigned = c.def.Unsigned
		c.latin1 = c.def.Latin1
		c.drop = f.dropColumn(t.db, t.name, c.def.Name)
		c.mask = !c.drop && f.maskColumn(t.db, t.name, c.def.Name)
		switch tp, meta := tm.ColumnType[i], tm.ColumnMeta[i]; tp {
		case mysql.MYSQL_TYPE_INT24:
			c.int24 = true
		case mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2:
			c.fsp = int(meta)
		case mysql.MYSQL_TYPE_STRING:
			if c.kind == vkBinary {
				c.padLen = stringLength(meta)
			}
		}
		if !c.nativeLayout(tm.ColumnType[i], tm.ColumnMeta[i]) {
			t.native = false
		}
		c.nameJSON = appendJSONString([]byte{','}, c.def.Name)
		c.nameJSON = append(c.nameJSON, ':')
		if !c.drop {
			t.image = append(t.image, i)
		}
		for _, e := range c.def.Enum {
			c.enum = append(c.enum, []byte(e))
		}
		for _, s := range c.def.Set {
			c.set = append(c.set, []byte(s))
		}
	}
	for _, k := range t.pk {
		if k < 0 || k >= n {
			return nil, fmt.Errorf("table %s.%s: primary key column %d out of range", t.db, t.name, k)
		}
	}
	t.head = append(t.head, `"db":`...)
	t.head = appendJSONString(t.head, t.db)
	t.head = append(t.head, `,"table":`...)
	t.head = appendJSONString(t.head, t.name)
	t.head = append(t.head, ',')
	t.colsJSON = append(t.colsJSON, `"columns":[`...)
	first := true
	for i := range t.cols {
		c := &t.cols[i]
		if c.drop {
			continue
		}
		if !first {
			t.colsJSON = append(t.colsJSON, ',')
		}
		first = false
		t.colsJSON = append(t.colsJSON, `{"name":`...)
		t.colsJSON = appendJSONString(t.colsJSON, c.def.Name)
		t.colsJSON = append(t.colsJSON, `,"type":`...)
		t.colsJSON = appendJSONString(t.colsJSON, c.def.Type)
		t.colsJSON = append(t.colsJSON, '}')
	}
	t.colsJSON = append(t.colsJSON, `],"pk":[`...)
	for i, k := range t.pk {
		if i > 0 {
			t.colsJSON = append(t.colsJSON, ',')
		}
		t.colsJSON = appendJSONString(t.colsJSON, t.cols[k].def.Name)
	}
	t.colsJSON = append(t.colsJSON, "],"...)
	if f == nil || !f.noColumns {
		t.rowCols = t.colsJSON
	}
	t.keyPrefix = append(append(append(t.keyPrefix, t.db...), '.'), t.name...)
	return t, nil
}

func cloneList(l [][]byte) [][]byte {
	if l == nil {
		return nil
	}
	out := make([][]byte, len(l))
	for i, b := range l {
		out[i] = bytes.Clone(b)
	}
	return out
}

func cloneLists(l [][][]byte) [][][]byte {
	if l == nil {
		return nil
	}
	out := make([][][]byte, len(l))
	for i, b := range l {
		out[i] = cloneList(b)
	}
	return out
}
