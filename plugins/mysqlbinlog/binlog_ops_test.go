package mysqlbinlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
)

// alterScript runs ALTERs with an insert after each and returns the
// expected after-images (column -> JSON value) of those inserts.
func alterScript(d *db) []map[string]string {
	d.exec("ALTER TABLE a ADD COLUMN z INT NOT NULL DEFAULT 0 AFTER id")
	d.exec("INSERT INTO a (id, z, x, y) VALUES (10, 5, 'x10', 'y10')")
	d.exec("ALTER TABLE a DROP COLUMN x")
	d.exec("INSERT INTO a (id, z, y) VALUES (11, 6, 'y11')")
	d.exec("ALTER TABLE a RENAME COLUMN y TO w")
	d.exec("INSERT INTO a (id, z, w) VALUES (12, 7, 'w12')")
	d.exec("ALTER TABLE a CHANGE w w2 VARCHAR(40) NOT NULL, ADD COLUMN u BIGINT UNSIGNED FIRST")
	d.exec("INSERT INTO a (u, id, z, w2) VALUES (18446744073709551615, 13, 8, 'w13')")
	return []map[string]string{
		{"id": "10", "z": "5", "x": `"x10"`, "y": `"y10"`},
		{"id": "11", "z": "6", "y": `"y11"`},
		{"id": "12", "z": "7", "w": `"w12"`},
		{"u": "18446744073709551615", "id": "13", "z": "8", "w2": `"w13"`},
	}
}

func checkImages(t *testing.T, rows []rowChange, want []map[string]string) {
	t.Helper()
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		got := rows[i].After
		if len(got) != len(w) {
			t.Errorf("row %d: columns %v, want %v", i, keysOf(got), w)
		}
		for k, v := range w {
			if string(got[k]) != v {
				t.Errorf("row %d: %s = %s, want %s (row %v)", i, k, got[k], v, got)
			}
		}
		var names []string
		for _, c := range rows[i].Columns {
			names = append(names, c.Name)
		}
		if len(names) != len(w) {
			t.Errorf("row %d: column list %v, want %d columns", i, names, len(w))
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBinlogAlterTableAcrossRestart (FULL metadata): the pipeline is
// stopped before ALTER TABLEs and restarted after; every row is decoded
// with the columns it was written with.
func TestBinlogAlterTableAcrossRestart(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE a (id INT PRIMARY KEY, x VARCHAR(10), y VARCHAR(10))")
	d.exec("INSERT INTO a VALUES (1, 'x1', 'y1')")
	store := engine.NewMemoryStore()
	p := startPipeline(t, d, fileStart(start), store)
	p.wait(1, 20*time.Second)
	p.stop() // an orderly stop commits what was delivered
	want := alterScript(d)
	p2 := startPipeline(t, d, fileStart(start), store)
	rows := decodeAll(t, p2.wait(len(want), 20*time.Second))
	checkImages(t, rows, want)
}

// TestBinlogAlterTableSchemaHistory: the same with binlog_row_metadata=
// MINIMAL: names come from the schema history (snapshot at start, DDL
// interpreted from the binlog, persisted), also after a restart that
// re-reads events from before the ALTERs.
func TestBinlogAlterTableSchemaHistory(t *testing.T) {
	testenv.MySQLExclusive(t) // changes a global setting
	d := testDB(t)
	d.exec("SET GLOBAL binlog_row_metadata = MINIMAL")
	t.Cleanup(func() { d.c.Execute("SET GLOBAL binlog_row_metadata = FULL") })
	d.exec("CREATE TABLE a (id INT PRIMARY KEY, x VARCHAR(10), y VARCHAR(10))")
	hist := filepath.Join(t.TempDir(), "schema.json")
	store := engine.NewMemoryStore()
	p := startPipeline(t, d, "start: current\nschema_file: "+hist, store)
	p.waitLog(10*time.Second, "schema history: snapshot taken")
	d.exec("INSERT INTO a VALUES (1, 'x1', 'y1')")
	rows := decodeAll(t, p.wait(1, 20*time.Second))
	checkImages(t, rows, []map[string]string{{"id": "1", "x": `"x1"`, "y": `"y1"`}})
	p.stop()
	first := store.All()["bl"]
	want := alterScript(d)
	p2 := startPipeline(t, d, "start: current\nschema_file: "+hist, store)
	checkImages(t, decodeAll(t, p2.wait(len(want), 20*time.Second)), want)
	p2.stop()
	// Replay from before the ALTERs (the history file keeps every
	// version): same rows, same names.
	replay := engine.NewMemoryStore()
	replay.Save(map[string]engine.Checkpoint{"bl": first})
	p3 := startPipeline(t, d, "start: current\nschema_file: "+hist, replay)
	checkImages(t, decodeAll(t, p3.wait(len(want), 20*time.Second)), want)
	// Without the history, the input refuses to guess.
	os.Remove(hist)
	p3.stop()
	replay2 := engine.NewMemoryStore()
	replay2.Save(map[string]engine.Checkpoint{"bl": first})
	p4 := startPipeline(t, d, "start: current\nschema_file: "+hist, replay2)
	p4.waitLog(10*time.Second, "input failed", "schema of "+d.name+".a unknown", "binlog_row_metadata=FULL")
	if p4.rec.Len() != 0 {
		t.Fatalf("decoded %d rows without a schema", p4.rec.Len())
	}
}

// TestBinlogServerRestartMidStream: MariaDB restarts while the pipeline
// runs; it reconnects and every row arrives.
func TestBinlogServerRestartMidStream(t *testing.T) {
	testenv.MySQLExclusive(t) // restarts the server
	d := testDB(t)
	if os.Getenv(testenv.EnvMySQLDataDir) == "" {
		t.Skip("DBUS_TEST_MYSQL_DATADIR not set: the server was not started by .ci/mariadb.sh")
	}
	start := d.pos()
	d.exec("CREATE TABLE r (id INT PRIMARY KEY)")
	p := startPipeline(t, d, fileStart(start), engine.NewMemoryStore())
	for i := 0; i < 500; i++ {
		d.exec(fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
	}
	ciScript(t, nil, "restart")
	d.reconnect()
	for i := 500; i < 1000; i++ {
		d.exec(fmt.Sprintf("INSERT INTO r VALUES (%d)", i))
	}
	rows := decodeAll(t, p.wait(1000, 60*time.Second))
	seen := map[string]int{}
	for _, r := range rows {
		seen[string(r.After["id"])]++
	}
	for i := 0; i < 1000; i++ {
		if seen[strconv.Itoa(i)] == 0 {
			t.Errorf("row %d lost", i)
		}
	}
	if p.input.Reconnects() == 0 {
		t.Errorf("no reconnect counted")
	}
	t.Logf("%d rows received for 1000 written (%d duplicates), %d reconnects", len(rows), len(rows)-len(seen), p.input.Reconnects())
}

// TestBinlogLargeRow: a 5 MB row change is delivered whole and counted as
// larger than max_row_bytes.
func TestBinlogLargeRow(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE big (id INT PRIMARY KEY, b LONGTEXT)")
	d.exec("INSERT INTO big VALUES (1, REPEAT('z', 5000000))")
	p := startPipeline(t, d, fileStart(start)+"\nmax_row_bytes: 1MiB", engine.NewMemoryStore())
	rows := decodeAll(t, p.wait(1, 30*time.Second))
	if v := string(rows[0].After["b"]); len(v) != 5000002 || strings.Trim(v, `"z`) != "" {
		t.Fatalf("5 MB value arrived with %d bytes", len(v))
	}
	if p.input.Oversize() != 1 || p.rec.Attrs()[0]["oversize"] != "true" {
		t.Errorf("oversize count %d, attrs %v", p.input.Oversize(), p.rec.Attrs()[0])
	}
}

// TestBinlogGTIDAndFileStarts: start from a GTID set and from a file
// position read exactly the transactions after them.
func TestBinlogGTIDAndFileStarts(t *testing.T) {
	d := testDB(t)
	d.exec("CREATE TABLE g (id INT PRIMARY KEY)")
	d.exec("INSERT INTO g VALUES (1)")
	mid := d.pos()
	d.exec("INSERT INTO g VALUES (2)")
	d.exec("INSERT INTO g VALUES (3)")
	for _, start := range []string{"start: gtid\nstart_gtid: " + mid.GTID, fileStart(mid)} {
		p := startPipeline(t, d, start, engine.NewMemoryStore())
		rows := decodeAll(t, p.wait(2, 20*time.Second))
		testenv.Never(t, 200*time.Millisecond, func() bool { return p.rec.Len() > 2 }, "%q: more than 2 rows", start)
		if p.rec.Len() != 2 || string(rows[0].After["id"]) != "2" || string(rows[1].After["id"]) != "3" {
			t.Errorf("%q: got %d rows starting with %s", start, p.rec.Len(), rows[0].After["id"])
		}
		p.stop()
	}
}

// TestBinlogPurgedPosition: a resume position that was purged stops the
// input with an error saying so; on_purged: earliest moves on.
func TestBinlogPurgedPosition(t *testing.T) {
	d := testDB(t)
	old := d.pos()
	d.exec("CREATE TABLE pg (id INT PRIMARY KEY)")
	d.exec("INSERT INTO pg VALUES (1)")
	d.purgeBefore(old.File)
	d.exec("INSERT INTO pg VALUES (2)")
	p := startPipeline(t, d, fmt.Sprintf("start: file\nstart_file: %s\nstart_pos: %d\nuse_gtid: false", old.File, old.Pos), engine.NewMemoryStore())
	line := p.waitLog(10*time.Second, "input failed", "purged", "on_purged")
	t.Logf("error: %s", line)
	if p.rec.Len() != 0 {
		t.Fatalf("%d rows read past a purged position", p.rec.Len())
	}
	p.stop()
	// GTID resume of a purged transaction range.
	p = startPipeline(t, d, "start: gtid\nstart_gtid: "+old.GTID, engine.NewMemoryStore())
	p.waitLog(10*time.Second, "input failed", "purged")
	p.stop()
	p = startPipeline(t, d, fmt.Sprintf("start: file\nstart_file: %s\nstart_pos: %d\nuse_gtid: false\non_purged: earliest", old.File, old.Pos), engine.NewMemoryStore())
	rows := decodeAll(t, p.wait(1, 20*time.Second))
	if string(rows[0].After["id"]) != "2" {
		t.Errorf("on_purged earliest: first row %s, want 2", rows[0].After["id"])
	}
	p.waitLog(5*time.Second, "ALERT", "LOST")
}

// purgeBefore rotates and purges until file is gone (MariaDB keeps a
// binlog until its binlog checkpoint passed it).
func (d *db) purgeBefore(file string) {
	d.t.Helper()
	// Each try rotates the binlog: pace them (not a settle wait).
	for i := 0; i < 100; i++ {
		d.exec("FLUSH BINARY LOGS")
		now := d.pos()
		d.exec("PURGE BINARY LOGS TO '" + now.File + "'")
		r, err := d.c.Execute("SHOW BINARY LOGS")
		if err != nil {
			d.t.Fatal(err)
		}
		first, _ := r.GetString(0, 0)
		if comparePos(first, 4, file, 4) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("could not purge %s", file)
}

// TestBinlogBadInput: wrong credentials, missing grants, STATEMENT format
// and binlog off each stop the input with an error naming the fix.
func TestBinlogBadInput(t *testing.T) {
	d := testDB(t)
	d.exec("CREATE USER IF NOT EXISTS 'dbus_nogrant'@'%' IDENTIFIED BY 'pw'")
	d.exec("GRANT SELECT ON *.* TO 'dbus_nogrant'@'%'")
	d.exec("CREATE USER IF NOT EXISTS 'dbus_noslave'@'%' IDENTIFIED BY 'pw'")
	d.exec("GRANT SELECT, REPLICATION CLIENT ON *.* TO 'dbus_noslave'@'%'")
	t.Cleanup(func() {
		d.c.Execute("DROP USER IF EXISTS 'dbus_nogrant'@'%'")
		d.c.Execute("DROP USER IF EXISTS 'dbus_noslave'@'%'")
	})
	cases := []struct {
		name   string
		fields string
		want   []string
	}{
		{"wrong password", "user: root\npassword: wrong", []string{"access denied", "check user and password"}},
		{"no replication client", "user: dbus_nogrant\npassword: pw", []string{"lacks a privilege", "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT"}},
		{"no replication slave", "user: dbus_noslave\npassword: pw", []string{"lacks a privilege", "REPLICATION SLAVE"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			p := startPipeline(t, d, c.fields, engine.NewMemoryStore())
			t.Logf("%s", p.waitLog(10*time.Second, append([]string{"input failed"}, c.want...)...))
		})
	}
	t.Run("statement_format", func(t *testing.T) {
		testenv.MySQLExclusive(t) // changes a global setting
		d.exec("SET GLOBAL binlog_format = STATEMENT")
		defer d.exec("SET GLOBAL binlog_format = ROW")
		p := startPipeline(t, d, "", engine.NewMemoryStore())
		t.Logf("%s", p.waitLog(10*time.Second, "input failed", "binlog_format is STATEMENT", "binlog_format=ROW"))
	})
	t.Run("binlog_off", func(t *testing.T) {
		if os.Getenv(testenv.EnvMySQLDataDir) == "" {
			t.Skip("needs .ci/mariadb.sh")
		}
		env := []string{"DBUS_MYSQL_PORT=33069", "DBUS_MYSQL_BINLOG=off"}
		ciScript(t, env, "start")
		defer ciScript(t, env, "wipe")
		off := *d
		off.addr = "127.0.0.1:33069"
		p := startPipeline(t, &off, "", engine.NewMemoryStore())
		t.Logf("%s", p.waitLog(20*time.Second, "input failed", "binary logging is off", "log_bin"))
	})
}

// TestBinlogConfigErrors: bad settings fail in the constructor.
func TestBinlogConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"addr": "h:3306", "server_id": 0}, "server_id"},
		{map[string]any{"addr": "h", "server_id": 5}, "host:port"},
		{map[string]any{"addr": "h:1", "server_id": 5, "start": "gtid"}, "start_gtid"},
		{map[string]any{"addr": "h:1", "server_id": 5, "include": []string{"a.b.c"}}, "bad table pattern"},
		{map[string]any{"addr": "h:1", "server_id": 5, "kinds": []string{"upsert"}}, "bad kind"},
		{map[string]any{"addr": "h:1", "server_id": 5, "on_purged": "skip"}, "on_purged"},
	} {
		conf, err := engine.NewConf(reg, "in", "MysqlbinlogInput", c.vals)
		if err == nil {
			_, err = newInput(conf)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.vals, err, c.want)
		}
	}
}

// TestBinlogPeek: Peek prints decoded rows and a rate line.
func TestBinlogPeek(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE pk (id INT PRIMARY KEY, s VARCHAR(5))")
	d.exec("INSERT INTO pk VALUES (1, 'a'), (2, 'b')")
	cfg := DefaultConfig()
	cfg.Addr, cfg.User, cfg.Password, cfg.ServerID = d.addr, d.user, d.pw, serverIDs.Add(1)
	cfg.Start, cfg.StartFile, cfg.StartPos = "file", start.File, start.Pos
	cfg.Include = []string{d.name}
	var out syncBuf
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := Peek(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rows int
	var rate bool
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "# rows 2 "):
			rate = true
		case strings.HasPrefix(l, "{"):
			decode(t, []byte(l))
			rows++
		}
	}
	if rows != 2 || !rate {
		t.Fatalf("peek output (%d rows, rate line %v):\n%s", rows, rate, out.String())
	}
}

// TestBinlogFilters: include/exclude, dropped and masked columns, kinds.
func TestBinlogFilters(t *testing.T) {
	d := testDB(t)
	start := d.pos()
	d.exec("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(10), password VARCHAR(20), email VARCHAR(30))")
	d.exec("CREATE TABLE logs_1 (id INT PRIMARY KEY)")
	d.exec("INSERT INTO users VALUES (1, 'ann', 'secret', 'a@x'), (2, 'bob', NULL, 'b@x')")
	d.exec("INSERT INTO logs_1 VALUES (1)")
	d.exec("UPDATE users SET name = 'anne' WHERE id = 1")
	d.exec("DELETE FROM users WHERE id = 2")
	p := startPipeline(t, d, fileStart(start)+"\nexclude: ['*.logs_*']\ndrop_columns: ['*.users.password']\nmask_columns: ['*.*.email']\nkinds: [insert, delete]", engine.NewMemoryStore())
	rows := decodeAll(t, p.wait(3, 20*time.Second))
	testenv.Never(t, 200*time.Millisecond, func() bool { return p.rec.Len() > 3 }, "more than 3 rows")
	if p.rec.Len() != 3 {
		t.Fatalf("%d rows, want 3 (2 inserts, 1 delete)", p.rec.Len())
	}
	for _, r := range rows {
		if r.Table != "users" || r.Kind == "update" {
			t.Errorf("unexpected row %s %s", r.Table, r.Kind)
		}
		img := r.After
		if img == nil {
			img = r.Before
		}
		if _, ok := img["password"]; ok {
			t.Errorf("dropped column present: %v", img)
		}
		if string(img["email"]) != `"***"` {
			t.Errorf("email not masked: %s", img["email"])
		}
		for _, c := range r.Columns {
			if c.Name == "password" {
				t.Errorf("dropped column listed")
			}
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
