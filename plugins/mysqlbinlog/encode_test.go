package mysqlbinlog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// testTable compiles a table with one column of most kinds.
func testTable(t testing.TB) (*table, anyRow) {
	tm := &replication.TableMapEvent{
		Schema: []byte("shop"), Table: []byte("orders"), ColumnCount: 10,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DOUBLE,
			mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_STRING},
		ColumnMeta: []uint16{0, 0, 10<<8 | 2, 8, 400, 2, 6, uint16(mysql.MYSQL_TYPE_ENUM)<<8 | 1, uint16(mysql.MYSQL_TYPE_SET)<<8 | 1, uint16(mysql.MYSQL_TYPE_STRING)<<8 | 4},
	}
	def := TableDef{PK: []int{0, 4}, Columns: []ColumnDef{
		{Name: "id", Type: "int"}, {Name: "big", Type: "bigint unsigned", Unsigned: true}, {Name: "amount", Type: "decimal(10,2)"},
		{Name: "ratio", Type: "double"}, {Name: "note", Type: "varchar"}, {Name: "raw", Type: "blob", Binary: true},
		{Name: "at", Type: "datetime(6)"}, {Name: "state", Type: "enum", Enum: []string{"new", "paid"}},
		{Name: "tags", Type: "set", Set: []string{"a", "b", "c"}}, {Name: "code", Type: "binary", Binary: true},
	}}
	f, err := newFilters(nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := compile(tm, def, f, "test")
	if err != nil {
		t.Fatal(err)
	}
	row := anyRow{int32(-42), int64(-1), "12345.67", 0.25, "héllo \"w\"\n😀", []byte{0, 1, 2, 255}, "2024-01-02 03:04:05.123456", int64(2), int64(5), "ab"}
	return tb, row
}

// TestBinlogEncodeRowNoAllocs: encoding a row change into a reused packet
// allocates nothing.
func TestBinlogEncodeRowNoAllocs(t *testing.T) {
	tb, row := testTable(t)
	src := &rowSource{file: "mysql-bin.000003", pos: 4711, gtid: []byte("0-1-42"), serverID: 1, tsMs: 1700000000000}
	p := &pack.Packet{}
	var head []byte
	enc := func() {
		// As runSink.row: the head is built once per rows event.
		head = appendHead(head[:0], src, tb, KindUpdate)
		var err error
		p.Payload = append(p.Payload[:0], head...)
		p.Key = p.Key[:0]
		p.Payload, err = appendRowBody(p.Payload, &p.Key, tb, row, row, "***")
		if err != nil {
			t.Fatal(err)
		}
		p.Attrs.SetString("db", tb.db)
		p.Attrs.SetString("table", tb.name)
		p.Attrs.SetString("kind", kindNames[KindUpdate])
	}
	enc()
	var got map[string]any
	if err := json.Unmarshal(p.Payload, &got); err != nil {
		t.Fatalf("invalid JSON %v:\n%s", err, p.Payload)
	}
	after := got["after"].(map[string]any)
	for k, want := range map[string]any{"id": -42.0, "big": 18446744073709551615.0, "amount": "12345.67", "ratio": 0.25,
		"note": "héllo \"w\"\n😀", "raw": "AAEC/w==", "state": "paid", "tags": "a,c", "code": "YWIAAA=="} {
		if after[k] != want {
			t.Errorf("%s = %v, want %v", k, after[k], want)
		}
	}
	if string(p.Key) != `shop.orders[-42,"héllo \"w\"\n😀"]` {
		t.Errorf("key %s", p.Key)
	}
	if k, _ := appendKey(nil, tb, row, "***"); string(k) != string(p.Key) {
		t.Errorf("key %s, appendKey gives %s", p.Key, k)
	}
	if whole, _ := appendRow(nil, src, tb, KindUpdate, row, row, "***"); string(whole) != string(p.Payload) {
		t.Errorf("payload\n%s\nappendRow gives\n%s", p.Payload, whole)
	}
	if n := testing.AllocsPerRun(1000, enc); n != 0 {
		t.Fatalf("%.1f allocations per row, want 0", n)
	}
}

func BenchmarkBinlogEncodeRow(b *testing.B) {
	tb, row := testTable(b)
	src := &rowSource{file: "mysql-bin.000003", pos: 4711, gtid: []byte("0-1-42"), serverID: 1}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendRow(buf[:0], src, tb, KindInsert, nil, row, "")
	}
	b.SetBytes(int64(len(buf)))
}

// TestBinlogTokenRoundTrip: checkpoint tokens parse back; bad ones fail
// with a message.
func TestBinlogTokenRoundTrip(t *testing.T) {
	p := Position{File: "mysql-bin.000012", Pos: 4711, GTID: "0-1-42,1-2-7"}
	q, err := ParseToken(p.Token())
	if err != nil || q != p {
		t.Fatalf("%v -> %v, %v", p, q, err)
	}
	if p.Offset() != 12<<32|4711 {
		t.Errorf("offset %x", p.Offset())
	}
	for _, bad := range []string{"", "v2|f|4|", "v1|f|x|", "v1||4|"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

// TestBinlogDDLInterpreter: the schema-history interpreter follows
// column layout changes and refuses what it does not understand.
func TestBinlogDDLInterpreter(t *testing.T) {
	tables := map[string]*TableDef{}
	apply := func(q string) []ddlChange {
		ch, err := interpretDDL("db", q, func(k string) *TableDef { return tables[k] }, func(k string) bool { _, ok := tables[k]; return ok })
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, c := range ch {
			if c.unknown != "" {
				tables[c.key] = nil
				continue
			}
			tables[c.key] = c.def
		}
		return ch
	}
	names := func(k string) []string {
		var out []string
		for _, c := range tables[k].Columns {
			out = append(out, c.Name+":"+c.Type)
		}
		return out
	}
	apply("CREATE TABLE `t` (`id` int(11) unsigned NOT NULL AUTO_INCREMENT, name varchar(20) CHARACTER SET latin1 DEFAULT 'x,y', " +
		"e enum('a','b''c') NOT NULL, d decimal(10,2), PRIMARY KEY (`id`), KEY k (name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	if got := names("db.t"); len(got) != 4 || got[0] != "id:int unsigned" || got[3] != "decimal(10,2)" && got[3] != "d:decimal(10,2)" {
		t.Fatalf("create: %v", got)
	}
	if !tables["db.t"].Columns[1].Latin1 || tables["db.t"].Columns[2].Enum[1] != "b'c" || len(tables["db.t"].PK) != 1 {
		t.Fatalf("create details: %+v", tables["db.t"])
	}
	apply("ALTER TABLE t ADD COLUMN z INT FIRST, DROP COLUMN name, RENAME COLUMN e TO e2, CHANGE d dd DECIMAL(12,4) AFTER z, ADD INDEX (z)")
	if got := names("db.t"); len(got) != 4 || got[0] != "z:int" || got[1] != "dd:decimal(12,4)" || got[2] != "id:int unsigned" || got[3] != "e2:enum" {
		t.Fatalf("alter: %v", got)
	}
	if tables["db.t"].PK[0] != 2 {
		t.Fatalf("pk after alter: %v", tables["db.t"].PK)
	}
	apply("RENAME TABLE t TO t2")
	if tables["db.t"] != nil || tables["db.t2"] == nil {
		t.Fatalf("rename: %v", tables)
	}
	ch := apply("ALTER TABLE t2 PARTITION BY HASH(id)")
	if len(ch) != 1 || ch[0].unknown == "" {
		t.Fatalf("uninterpreted ALTER accepted: %+v", ch)
	}
	if !isDDL([]byte(" /* x */ alter table t add column y int")) || isDDL([]byte("GRANT ALL ON *.* TO x")) {
		t.Errorf("isDDL")
	}
}

// benchTable compiles the table of bench/binlog (latin1 text columns, as
// on a server with the default charset) and returns one of its rows as
// go-mysql decodes it.
func benchTable(t testing.TB) (*table, anyRow) {
	f, err := newFilters(nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return benchTableWith(t, f)
}

// benchTableWith is benchTable compiled with f.
func benchTableWith(t testing.TB, f *filters) (*table, anyRow) {
	tm := &replication.TableMapEvent{
		Schema: []byte("dbus_bench"), Table: []byte("t"), ColumnCount: 10,
		ColumnType: []byte{mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_NEWDECIMAL,
			mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_STRING},
		ColumnMeta: []uint16{0, 0, 0, 64, 12<<8 | 2, 3, 8, 0, 2, uint16(mysql.MYSQL_TYPE_STRING)<<8 | 8},
	}
	def := TableDef{PK: []int{0}, Columns: []ColumnDef{
		{Name: "id", Type: "bigint"}, {Name: "a", Type: "int"}, {Name: "b", Type: "int unsigned", Unsigned: true},
		{Name: "c", Type: "varchar", Latin1: true}, {Name: "d", Type: "decimal(12,2)"}, {Name: "e", Type: "datetime(3)"},
		{Name: "f", Type: "double"}, {Name: "g", Type: "tinyint"}, {Name: "h", Type: "text", Latin1: true}, {Name: "i", Type: "char", Latin1: true},
	}}
	tb, err := compile(tm, def, f, "test")
	if err != nil {
		t.Fatal(err)
	}
	row := anyRow{int64(4711), int32(4711), int32(14133), "name-4711", "4711.25", "2024-01-02 03:04:05.678", 4711.5, int8(11),
		[]byte("some text for row 4711"), "c711"}
	return tb, row
}

// BenchmarkBinlogRowPacket: everything MysqlbinlogInput does per row of
// the bench/binlog table outside go-mysql and the engine (payload, key,
// attributes), for one 100-row insert event per 100 rows.
func BenchmarkBinlogRowPacket(b *testing.B) {
	tb, row := benchTable(b)
	src := &rowSource{file: "mysql-bin.000003", pos: 4711, gtid: []byte("0-1-42"), serverID: 1, tsMs: 1700000000000}
	p := &pack.Packet{}
	var head []byte
	var offset int64
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%100 == 0 { // as decoder.rowsEvent
			head = appendHead(head[:0], src, tb, KindInsert)
			offset = fileSeq(src.file)<<32 | int64(src.pos)
		}
		i++
		p.Payload = append(p.Payload[:0], head...)
		p.Key = p.Key[:0]
		p.Payload, _ = appendRowBody(p.Payload, &p.Key, tb, nil, row, "")
		p.Attrs.Reset()
		p.Attrs.SetString("db", tb.db)
		p.Attrs.SetString("table", tb.name)
		p.Attrs.SetString("kind", kindNames[KindInsert])
		p.Pos.Offset = offset
	}
	b.SetBytes(int64(len(p.Payload)))
}

// TestBinlogRowsHook: rows of filtered-out tables are not decoded;
// without table or kind filters go-mysql decodes as usual (no hook).
func TestBinlogRowsHook(t *testing.T) {
	for _, c := range []struct {
		include, exclude, kinds []string
		hook                    bool
	}{{nil, nil, nil, false}, {nil, nil, []string{"insert", "update", "delete"}, false},
		{[]string{"shop"}, nil, nil, true}, {nil, []string{"*.logs_*"}, nil, true}, {nil, nil, []string{"insert"}, true}} {
		f, err := newFilters(c.include, c.exclude, nil, nil, c.kinds)
		if err != nil {
			t.Fatal(err)
		}
		if got := newRowsHook(f, false) != nil; got != c.hook {
			t.Errorf("include %v exclude %v kinds %v: hook %v, want %v", c.include, c.exclude, c.kinds, got, c.hook)
		}
	}
	f, err := newFilters([]string{"shop"}, []string{"*.logs_*"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newRowsHook(f, false)
	for _, c := range []struct {
		id        uint64
		db, table string
		keep      bool
	}{{1, "shop", "orders", true}, {1, "shop", "orders", true}, {2, "shop", "logs_1", false}, {3, "other", "orders", false},
		{1, "shop", "logs_2", false}, {2, "shop", "orders", true}} { // ids reused for other tables
		tm := &replication.TableMapEvent{TableID: c.id, Schema: []byte(c.db), Table: []byte(c.table)}
		if got := s.keepTable(tm); got != c.keep {
			t.Errorf("%d %s.%s: keep %v, want %v", c.id, c.db, c.table, got, c.keep)
		}
	}
}

// TestBinlogEncodeColumnsModes: with columns per_row the row payload
// carries the column list, with none it is left out; both are exact,
// valid JSON, and encoded without allocating.
func TestBinlogEncodeColumnsModes(t *testing.T) {
	const head = `{"source":{"file":"mysql-bin.000003","pos":4711,"gtid":"0-1-42","server_id":1},"db":"dbus_bench","table":"t","kind":"update","ts_ms":1700000000000,`
	const cols = `"columns":[{"name":"id","type":"bigint"},{"name":"a","type":"int"},{"name":"b","type":"int unsigned"},{"name":"c","type":"varchar"},` +
		`{"name":"d","type":"decimal(12,2)"},{"name":"e","type":"datetime(3)"},{"name":"f","type":"double"},{"name":"g","type":"tinyint"},` +
		`{"name":"h","type":"text"},{"name":"i","type":"char"}],"pk":["id"],`
	const image = `{"id":4711,"a":4711,"b":14133,"c":"name-4711","d":"4711.25","e":"2024-01-02 03:04:05.678","f":4711.5,"g":11,"h":"some text for row 4711","i":"c711"}`
	const body = `"key":{"id":4711},"before":` + image + `,"after":` + image + `}`
	for _, c := range []struct {
		mode string
		want string
	}{{ColumnsPerRow, head + cols + body}, {ColumnsNone, head + body}} {
		t.Run(c.mode, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addr, cfg.ServerID, cfg.Columns = "127.0.0.1:3306", 1, c.mode
			in, err := NewInput(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tb, row := benchTableWith(t, in.filters)
			src := &rowSource{file: "mysql-bin.000003", pos: 4711, gtid: []byte("0-1-42"), serverID: 1, tsMs: 1700000000000}
			p := &pack.Packet{}
			var head []byte
			enc := func() {
				head = appendHead(head[:0], src, tb, KindUpdate)
				p.Payload = append(p.Payload[:0], head...)
				p.Key = p.Key[:0]
				if p.Payload, err = appendRowBody(p.Payload, &p.Key, tb, row, row, ""); err != nil {
					t.Fatal(err)
				}
			}
			enc()
			if string(p.Payload) != c.want {
				t.Fatalf("payload\n%s\nwant\n%s", p.Payload, c.want)
			}
			if string(p.Key) != "dbus_bench.t[4711]" {
				t.Errorf("key %s", p.Key)
			}
			var got struct {
				Columns []struct{ Name, Type string }
				PK      []string
				Key     map[string]any
				After   map[string]any
			}
			if err := json.Unmarshal(p.Payload, &got); err != nil {
				t.Fatalf("invalid JSON: %v", err)
			}
			if got.Key["id"] != 4711.0 || got.After["h"] != "some text for row 4711" || len(got.After) != 10 {
				t.Errorf("decoded %+v", got)
			}
			if (len(got.Columns) == 10 && len(got.PK) == 1) != (c.mode == ColumnsPerRow) {
				t.Errorf("columns %v pk %v in mode %s", got.Columns, got.PK, c.mode)
			}
			// Per-event payloads follow the same setting.
			ev := appendEventEnd(appendEventStart(nil, src, tb, KindUpdate))
			if strings.Contains(string(ev), `"columns"`) != (c.mode == ColumnsPerRow) || !json.Valid(ev) {
				t.Errorf("per-event payload %s", ev)
			}
			if n := testing.AllocsPerRun(1000, enc); n != 0 {
				t.Fatalf("%.1f allocations per row, want 0", n)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Addr, cfg.ServerID, cfg.Columns = "127.0.0.1:3306", 1, "schema-ish"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "columns") {
		t.Errorf("columns %q accepted: %v", cfg.Columns, err)
	}
}

// BenchmarkBinlogRowColumns: BenchmarkBinlogRowPacket's per-row work in
// each columns mode; bytes/row is the payload size.
func BenchmarkBinlogRowColumns(b *testing.B) {
	for _, mode := range []string{ColumnsPerRow, ColumnsNone} {
		b.Run(mode, func(b *testing.B) {
			f, err := newFilters(nil, nil, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			f.noColumns = mode == ColumnsNone
			tb, row := benchTableWith(b, f)
			src := &rowSource{file: "mysql-bin.000003", pos: 4711, gtid: []byte("0-1-42"), serverID: 1, tsMs: 1700000000000}
			p := &pack.Packet{}
			var head []byte
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%100 == 0 {
					head = appendHead(head[:0], src, tb, KindInsert)
				}
				i++
				p.Payload = append(p.Payload[:0], head...)
				p.Key = p.Key[:0]
				p.Payload, _ = appendRowBody(p.Payload, &p.Key, tb, nil, row, "")
			}
			b.ReportMetric(float64(len(p.Payload)), "bytes/row")
		})
	}
}

// TestBinlogColumnsNoneEndToEnd: with columns: none the input's row
// packets (per row and per event) carry no column list, and the values
// keep their names.
func TestBinlogColumnsNoneEndToEnd(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10))")
	d.exec("INSERT INTO t VALUES (1, 'ann'), (2, 'bob')")
	for _, mode := range []string{"row", "event"} {
		p := startPipeline(t, d, fileStart(start)+"\ncolumns: none\nmode: "+mode, engine.NewMemoryStore())
		want := 2
		if mode == "event" {
			want = 1
		}
		got := p.wait(want, 20*time.Second)
		for _, b := range got {
			if strings.Contains(string(b), `"columns"`) || strings.Contains(string(b), `"pk"`) || !json.Valid(b) {
				t.Errorf("mode %s: payload %s", mode, b)
			}
			if !strings.Contains(string(b), `"name":"ann"`) && !strings.Contains(string(b), `"name":"bob"`) {
				t.Errorf("mode %s: values without names: %s", mode, b)
			}
		}
		if err := p.stop(); err != nil {
			t.Fatal(err)
		}
	}
}
