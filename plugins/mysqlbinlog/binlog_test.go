package mysqlbinlog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

func fileStart(p Position) string {
	return fmt.Sprintf("start: file\nstart_file: %s\nstart_pos: %d", p.File, p.Pos)
}

// TestBinlogColumnTypesRoundTrip: every listed column type arrives with
// its exact value, names and types, keys and attributes set.
func TestBinlogColumnTypesRoundTrip(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec(`CREATE TABLE types (
		id INT PRIMARY KEY,
		ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
		mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
		dec1 DECIMAL(10,2), dec2 DECIMAL(65,30), f FLOAT, dbl DOUBLE,
		dt DATE, tm TIME(3), tm0 TIME, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL, ts0 TIMESTAMP NULL, yr YEAR,
		c CHAR(10), vc VARCHAR(100), tx TEXT, mtx MEDIUMTEXT, ltx LONGTEXT,
		bn BINARY(4), vb VARBINARY(10), bl BLOB, tbl TINYBLOB,
		e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64), j JSON, n INT NULL
	) DEFAULT CHARSET=utf8mb4`)
	d.exec(`INSERT INTO types VALUES (1,
		-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
		-12345678.91, '12345678901234567890123456789012345.123456789012345678901234567890', 0.1, 0.1,
		'2024-02-29', '-12:34:56.789', '838:59:59', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999', '1970-01-01 00:00:01', 2155,
		'héllo', 'emoji 😀 "quote" \\ back', 'line1\nline2\ttab', REPEAT('m', 1000), '日本語テキスト',
		0x00FF0102, 0x000102, 0xDEADBEEF00, '',
		'b', 'x,z', b'1', 0xFFFFFFFFFFFFFFFF, '{"a": [1, 2.5, "x"], "b": null}', NULL)`)
	d.exec(`INSERT INTO types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec1, dec2, f, dbl, dt, tm, tm0, dtm, dtm0, ts, ts0, yr,
		c, vc, tx, mtx, ltx, bn, vb, bl, tbl, e, s, b1, b64, j, n) VALUES (2,
		127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
		0.00, '-0.000000000000000000000000000001', -1.25e-5, 1.7976931348623157e308,
		'1000-01-01', '00:00:00.000', '-838:59:59', '1000-01-01 00:00:00.000001', '2000-01-01 12:00:00', '1970-01-01 00:00:01.001', '2038-01-19 03:14:07', 1901,
		'', '', '', '', '', 0x00000000, '', '', 0x00,
		'c', '', b'0', 0, '[]', 0)`)
	d.exec(`INSERT INTO types (id) VALUES (3)`)
	// Both row decoders write the same values.
	for _, dec := range []string{"native", "go-mysql"} {
		t.Run(dec, func(t *testing.T) {
			p := startPipeline(t, d, fileStart(start)+"\ndecoder: "+dec, engine.NewMemoryStore())
			checkTypesRows(t, d, p)
			wantNative := uint64(0)
			if dec == "native" {
				wantNative = 3
			}
			if n := p.input.NativeRows(); n != wantNative {
				t.Errorf("%d rows decoded natively, want %d", n, wantNative)
			}
		})
	}
}

func checkTypesRows(t *testing.T, d *db, p *pipeline) {
	rows := decodeAll(t, p.wait(3, 20*time.Second))
	want1 := map[string]string{
		"id": `1`, "ti": `-128`, "tiu": `255`, "si": `-32768`, "siu": `65535`, "mi": `-8388608`, "miu": `16777215`,
		"i": `-2147483648`, "iu": `4294967295`, "bi": `-9223372036854775808`, "biu": `18446744073709551615`,
		"dec1": `"-12345678.91"`, "dec2": `"12345678901234567890123456789012345.123456789012345678901234567890"`,
		"f": `0.1`, "dbl": `0.1`, "dt": `"2024-02-29"`, "tm": `"-12:34:56.789"`, "tm0": `"838:59:59"`,
		"dtm": `"9999-12-31 23:59:59.999999"`, "dtm0": `"1000-01-01 00:00:00"`, "ts": `"2038-01-19 03:14:07.999"`,
		"ts0": `"1970-01-01 00:00:01"`, "yr": `2155`,
		"c": `"héllo"`, "vc": `"emoji 😀 \"quote\" \\ back"`, "tx": `"line1\nline2\ttab"`, "mtx": `"` + strings.Repeat("m", 1000) + `"`,
		"ltx": `"日本語テキスト"`, "bn": `"AP8BAg=="`, "vb": `"AAEC"`, "bl": `"3q2+7wA="`, "tbl": `""`,
		"e": `"b"`, "s": `"x,z"`, "b1": `1`, "b64": `18446744073709551615`, "j": `"{\"a\": [1, 2.5, \"x\"], \"b\": null}"`, "n": `null`,
	}
	want2 := map[string]string{
		"id": `2`, "ti": `127`, "tiu": `0`, "si": `32767`, "siu": `0`, "mi": `8388607`, "miu": `0`, "i": `2147483647`, "iu": `0`,
		"bi": `9223372036854775807`, "biu": `0`, "dec1": `"0.00"`, "dec2": `"-0.000000000000000000000000000001"`,
		"f": `-1.25e-05`, "dbl": `1.7976931348623157e+308`, "dt": `"1000-01-01"`, "tm": `"00:00:00.000"`, "tm0": `"-838:59:59"`,
		"dtm": `"1000-01-01 00:00:00.000001"`, "dtm0": `"2000-01-01 12:00:00"`, "ts": `"1970-01-01 00:00:01.001"`, "ts0": `"2038-01-19 03:14:07"`,
		"yr": `1901`, "c": `""`, "vc": `""`, "tx": `""`, "mtx": `""`, "ltx": `""`, "bn": `"AAAAAA=="`, "vb": `""`, "bl": `""`, "tbl": `"AA=="`,
		"e": `"c"`, "s": `""`, "b1": `0`, "b64": `0`, "j": `"[]"`, "n": `0`,
	}
	for i, want := range []map[string]string{want1, want2} {
		r := rows[i]
		if r.Kind != "insert" || r.DB != d.name || r.Table != "types" || r.Before != nil {
			t.Fatalf("row %d: kind %s db %s table %s before %v", i, r.Kind, r.DB, r.Table, r.Before)
		}
		for col, w := range want {
			got, ok := r.After[col]
			if !ok {
				t.Errorf("row %d: column %s missing", i, col)
				continue
			}
			if string(got) != w {
				t.Errorf("row %d: column %s = %s, want %s", i, col, got, w)
			}
		}
		if len(r.After) != len(want) {
			t.Errorf("row %d: %d columns, want %d", i, len(r.After), len(want))
		}
	}
	// NULLs everywhere but the key.
	for col, v := range rows[2].After {
		if col != "id" && string(v) != "null" {
			t.Errorf("row 3: column %s = %s, want null", col, v)
		}
	}
	types := map[string]string{}
	for _, c := range rows[0].Columns {
		types[c.Name] = c.Type
	}
	for col, typ := range map[string]string{"tiu": "tinyint unsigned", "dec1": "decimal(10,2)", "tm": "time(3)", "dtm": "datetime(6)",
		"bn": "binary", "vb": "varbinary", "bl": "blob", "tx": "text", "e": "enum", "s": "set", "b64": "bit(64)", "c": "char"} {
		if types[col] != typ {
			t.Errorf("column %s type %q, want %q", col, types[col], typ)
		}
	}
	if len(rows[0].PK) != 1 || rows[0].PK[0] != "id" || string(rows[0].Key["id"]) != "1" {
		t.Errorf("pk %v key %v", rows[0].PK, rows[0].Key)
	}
	keys := p.rec.Keys()
	if string(keys[0]) != d.name+".types[1]" {
		t.Errorf("kafka key %q, want %q", keys[0], d.name+".types[1]")
	}
	attrs := p.rec.Attrs()
	if attrs[0]["db"] != d.name || attrs[0]["table"] != "types" || attrs[0]["kind"] != "insert" {
		t.Errorf("attrs %v", attrs[0])
	}
	if rows[0].Source.File == "" || rows[0].Source.Pos == 0 || rows[0].Source.GTID == "" || rows[0].TsMs == 0 {
		t.Errorf("source %+v ts %d", rows[0].Source, rows[0].TsMs)
	}
}

// TestBinlogUpdatesDeletesNoPKAndBigTransaction: updates carry before and
// after, deletes before; a table without primary key is keyed by table;
// a 10 000-row transaction arrives whole and in order.
func TestBinlogUpdatesDeletesNoPKAndBigTransaction(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE k (a INT, b VARCHAR(10), v INT, PRIMARY KEY (b, a))")
	d.exec("CREATE TABLE nopk (x INT, y TEXT)")
	d.exec("INSERT INTO k VALUES (1, 'one', 10), (2, 'two', 20)")
	d.exec("UPDATE k SET v = v + 1 WHERE a = 1")
	d.exec("DELETE FROM k WHERE a = 2")
	d.exec("INSERT INTO nopk VALUES (7, 'seven'), (7, 'seven')")
	d.exec("UPDATE nopk SET y = 'sept' LIMIT 1")
	d.exec("BEGIN")
	var b strings.Builder
	n := 10000
	for i := 0; i < n; i += 1000 {
		b.Reset()
		b.WriteString("INSERT INTO k VALUES ")
		for j := i; j < i+1000; j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, 'big', %d)", j+100, j)
		}
		d.exec(b.String())
	}
	d.exec("COMMIT")
	p := startPipeline(t, d, fileStart(start), engine.NewMemoryStore())
	rows := decodeAll(t, p.wait(7+n, 60*time.Second))
	keys := p.rec.Keys()
	if rows[2].Kind != "update" || string(rows[2].Before["v"]) != "10" || string(rows[2].After["v"]) != "11" {
		t.Errorf("update: %+v", rows[2])
	}
	if string(keys[2]) != d.name+`.k["one",1]` {
		t.Errorf("composite key %q", keys[2])
	}
	if rows[3].Kind != "delete" || rows[3].After != nil || string(rows[3].Before["a"]) != "2" {
		t.Errorf("delete: %+v", rows[3])
	}
	if rows[4].Table != "nopk" || len(rows[4].PK) != 0 || string(keys[4]) != d.name+".nopk" {
		t.Errorf("no pk row: pk %v key %q", rows[4].PK, keys[4])
	}
	if rows[6].Kind != "update" || string(rows[6].Before["y"]) != `"seven"` || string(rows[6].After["y"]) != `"sept"` {
		t.Errorf("no pk update: %+v", rows[6])
	}
	gtid := rows[7].Source.GTID
	for i := 0; i < n; i++ {
		r := rows[7+i]
		if string(r.After["v"]) != strconv.Itoa(i) || r.Source.GTID != gtid {
			t.Fatalf("big transaction row %d: v=%s gtid %s (want %s)", i, r.After["v"], r.Source.GTID, gtid)
		}
	}
	if p.rec.Len() != 7+n {
		t.Errorf("%d packets, want %d", p.rec.Len(), 7+n)
	}
}

// TestBinlogCheckpointResume: the checkpoint lands on a transaction
// boundary; a restarted pipeline resumes after it with nothing skipped.
func TestBinlogCheckpointResume(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE r (id INT PRIMARY KEY)")
	for i := 0; i < 5; i++ {
		d.exec(fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
	}
	store := engine.NewMemoryStore()
	p := startPipeline(t, d, fileStart(start), store)
	p.wait(5, 20*time.Second)
	p.stop() // an orderly stop commits what was delivered
	cp := store.All()["bl"]
	pos, err := ParseToken(cp.Token)
	if err != nil || pos.GTID == "" {
		t.Fatalf("checkpoint %+v: %v", cp, err)
	}
	if now := d.pos(); pos.File != now.File || pos.Pos != now.Pos || pos.GTID != now.GTID {
		t.Fatalf("checkpoint %s, want the server's end %s", pos, now)
	}
	for i := 5; i < 8; i++ {
		d.exec(fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
	}
	p2 := startPipeline(t, d, fileStart(start), store)
	rows := decodeAll(t, p2.wait(3, 20*time.Second))
	testenv.Never(t, 200*time.Millisecond, func() bool { return p2.rec.Len() > 3 }, "resumed pipeline got more than 3 rows")
	if p2.rec.Len() != 3 {
		t.Fatalf("resumed pipeline got %d rows, want 3", p2.rec.Len())
	}
	for i, r := range rows {
		if string(r.After["id"]) != strconv.Itoa(5+i) {
			t.Errorf("resumed row %d: id %s", i, r.After["id"])
		}
	}
	_ = json.Valid
}
