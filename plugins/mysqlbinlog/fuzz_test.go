package mysqlbinlog

import (
	"encoding/json"
	"testing"
)

// FuzzBinlogNativeRow feeds arbitrary row images and column-present
// bitmaps to the native decoder of the bench table: it never panics, never
// reads past the image, and what it encodes is valid JSON.
func FuzzBinlogNativeRow(f *testing.F) {
	tb, _ := benchTable(f)
	img := benchImage(f)
	f.Add(img, []byte{0xff, 0x03})
	f.Add(img[:len(img)/2], []byte{0xff, 0x03})
	f.Add(img, []byte{0x55, 0x01})
	f.Add([]byte{0x00, 0x00}, []byte{0x00, 0x00})
	f.Fuzz(func(t *testing.T, data, present []byte) {
		if len(present) < 2 {
			return
		}
		present = present[:2]
		var r rawRow
		end, err := tb.parseImage(&r, data, 0, present, countBits(present, len(tb.cols)))
		if err != nil {
			return
		}
		if end > len(data) {
			t.Fatalf("parsed to %d past the image's %d bytes", end, len(data))
		}
		var key []byte
		// appendRowBody writes an object's fields and its closing brace.
		payload, err := appendRowBody([]byte{'{'}, &key, tb, (*rawRow)(nil), &r, "")
		if err != nil {
			return
		}
		if !json.Valid(payload) {
			t.Fatalf("invalid JSON for image %x: %s", data, payload)
		}
	})
}

// FuzzBinlogDDL feeds arbitrary statements to the DDL interpreter with a
// known table db.t: it never panics, and every schema it returns is
// consistent (named columns, primary key columns that exist).
func FuzzBinlogDDL(f *testing.F) {
	for _, q := range []string{
		"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
		"CREATE TABLE IF NOT EXISTS db.u (a BIGINT UNSIGNED NOT NULL, b DECIMAL(10,2), c DATETIME(3), PRIMARY KEY (a, c))",
		"ALTER TABLE t ADD COLUMN x INT AFTER id, DROP COLUMN v",
		"ALTER TABLE t CHANGE COLUMN v w TEXT CHARACTER SET latin1 FIRST, MODIFY id BIGINT",
		"ALTER TABLE t RENAME TO u",
		"RENAME TABLE t TO t2, t2 TO t3",
		"DROP TABLE IF EXISTS t, db.u",
		"CREATE TABLE t2 LIKE t",
		"CREATE TABLE s SELECT * FROM t",
		"ALTER TABLE `t` ADD `select` ENUM('a','b') DEFAULT 'a' COMMENT 'x'",
		"TRUNCATE TABLE t",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		id, err := parseColumnType("id", "int(11)")
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseColumnType("v", "varchar(10)")
		if err != nil {
			t.Fatal(err)
		}
		base := &TableDef{Columns: []ColumnDef{id, v}, PK: []int{0}}
		get := func(key string) *TableDef {
			if key == "db.t" {
				return cloneDef(base)
			}
			return nil
		}
		changes, err := interpretDDL("db", q, get, func(string) bool { return true })
		if err != nil {
			return
		}
		for _, c := range changes {
			if c.def == nil {
				continue
			}
			for i, col := range c.def.Columns {
				if col.Name == "" {
					t.Fatalf("%q: column %d of %s has no name", q, i, c.key)
				}
			}
			for _, k := range c.def.PK {
				if k < 0 || k >= len(c.def.Columns) {
					t.Fatalf("%q: primary key column %d of %s out of range (%d columns)", q, k, c.key, len(c.def.Columns))
				}
			}
		}
	})
}
