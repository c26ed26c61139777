package mysqlbinlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"
)

// stmtChange is a decoded truncate or ddl payload.
type stmtChange struct {
	Source struct {
		File     string `json:"file"`
		Pos      uint32 `json:"pos"`
		GTID     string `json:"gtid"`
		ServerID uint32 `json:"server_id"`
	} `json:"source"`
	DB        string  `json:"db"`
	Table     *string `json:"table"`
	Kind      string  `json:"kind"`
	TsMs      int64   `json:"ts_ms"`
	Statement string  `json:"statement"`
}

// summary describes each packet: "insert:1" (kind and the row's id),
// "truncate:t", "ddl:t" (kind and table, "-" for none); statement
// payloads are checked against their attributes and the documented JSON.
func summary(t *testing.T, p *pipeline) []string {
	t.Helper()
	attrs := p.rec.Attrs()
	keys := p.rec.Keys()
	var out []string
	for i, b := range p.rec.Payloads() {
		var k struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(b, &k); err != nil {
			t.Fatalf("payload %d: %v\n%s", i, err, b)
		}
		if attrs[i]["kind"] != k.Kind {
			t.Fatalf("packet %d: attribute kind %q, payload kind %q", i, attrs[i]["kind"], k.Kind)
		}
		if k.Kind != "truncate" && k.Kind != "ddl" {
			rc := decode(t, b)
			out = append(out, k.Kind+":"+string(rc.After["id"])+string(rc.Before["id"]))
			continue
		}
		var sc stmtChange
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sc); err != nil {
			t.Fatalf("statement payload is not the documented JSON: %v\n%s", err, b)
		}
		table := "-"
		if sc.Table != nil {
			table = *sc.Table
		}
		wantKey := sc.DB
		if sc.Table != nil {
			wantKey += "." + *sc.Table
		}
		if sc.Statement == "" || sc.Source.File == "" || sc.Source.Pos == 0 || sc.Source.GTID == "" || sc.Source.ServerID == 0 || sc.TsMs == 0 ||
			attrs[i]["db"] != sc.DB || attrs[i]["table"] != strings.TrimPrefix(table, "-") || string(keys[i]) != wantKey {
			t.Fatalf("statement packet %d: attrs %v key %q payload %s", i, attrs[i], keys[i], b)
		}
		out = append(out, sc.Kind+":"+table)
	}
	return out
}

func waitSummary(t *testing.T, p *pipeline, want ...string) {
	t.Helper()
	p.wait(len(want), 20*time.Second)
	got := summary(t, p)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("packets:\n got %v\nwant %v", got, want)
	}
}

// TestBinlogTruncatePacket: TRUNCATE TABLE yields one truncate packet, in
// binlog order between the rows (it yielded nothing); by default (kinds
// empty) DDL yields none.
func TestBinlogTruncatePacket(t *testing.T) {
	d := testDB(t)
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	p := startPipeline(t, d, "start: current", nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	d.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
	d.exec("TRUNCATE TABLE t")
	d.exec("ALTER TABLE t ADD COLUMN w INT")
	d.exec("INSERT INTO t (id, v) VALUES (3, 'c')")
	waitSummary(t, p, "insert:1", "insert:2", "truncate:t", "insert:3")
	var sc stmtChange
	json.Unmarshal(p.rec.Payloads()[2], &sc)
	if sc.DB != d.name || sc.Statement != "TRUNCATE TABLE t" {
		t.Fatalf("truncate packet %+v", sc)
	}
}

// TestBinlogDDLPackets: CREATE, ALTER, CREATE INDEX, RENAME and DROP
// yield ddl packets in order with the rows; a statement on another
// database (outside include) does not.
func TestBinlogDDLPackets(t *testing.T) {
	d := testDB(t)
	p := startPipeline(t, d, "start: current\nkinds: [insert, update, delete, truncate, ddl]", nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	other := d.name + "_other"
	t.Cleanup(func() { d.c.Execute("DROP DATABASE IF EXISTS " + other) })
	d.exec("CREATE TABLE u (id INT PRIMARY KEY)")
	d.exec("INSERT INTO u VALUES (1)")
	d.exec("ALTER TABLE u ADD COLUMN v VARCHAR(10)")
	d.exec("CREATE INDEX iv ON u (v)")
	d.exec("CREATE DATABASE " + other)
	d.exec("CREATE TABLE " + other + ".x (id INT PRIMARY KEY)")
	d.exec("RENAME TABLE u TO w")
	d.exec("INSERT INTO w VALUES (2, 'b')")
	d.exec("DROP TABLE w")
	waitSummary(t, p, "ddl:u", "insert:1", "ddl:u", "ddl:u", "ddl:u", "insert:2", "ddl:w")
	var sc stmtChange
	json.Unmarshal(p.rec.Payloads()[2], &sc)
	if sc.DB != d.name || !strings.HasPrefix(sc.Statement, "ALTER TABLE u ADD COLUMN") {
		t.Fatalf("alter packet %+v", sc)
	}
}

// TestBinlogDDLDatabasePacket: without include, statements on a whole
// database are ddl packets with table null.
func TestBinlogDDLDatabasePacket(t *testing.T) {
	d := testDB(t)
	other := d.name + "_db"
	t.Cleanup(func() { d.c.Execute("DROP DATABASE IF EXISTS " + other) })
	p := startPipeline(t, d, "start: current\ninclude: []\nkinds: [ddl]", nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	d.exec("CREATE DATABASE " + other)
	d.exec("DROP DATABASE " + other)
	testWait := func() bool {
		n := 0
		for _, s := range summary(t, p) {
			if s == "ddl:-" {
				n++
			}
		}
		return n >= 2
	}
	deadline := time.Now().Add(20 * time.Second)
	for !testWait() {
		if time.Now().After(deadline) {
			t.Fatalf("no two database ddl packets: %v", summary(t, p))
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dbs []string
	for i, b := range p.rec.Payloads() {
		var sc stmtChange
		json.Unmarshal(b, &sc)
		if sc.DB == other {
			dbs = append(dbs, sc.Statement)
			if p.rec.Attrs()[i]["table"] != "" {
				t.Fatalf("database statement with a table attribute: %v", p.rec.Attrs()[i])
			}
		}
	}
	if len(dbs) != 2 || !strings.HasPrefix(dbs[0], "CREATE DATABASE") || !strings.HasPrefix(dbs[1], "DROP DATABASE") {
		t.Fatalf("database statements %q", dbs)
	}
}

// TestBinlogDDLKindsFilter: kinds chooses which packets are emitted.
func TestBinlogDDLKindsFilter(t *testing.T) {
	for _, tc := range []struct {
		kinds string
		want  []string
	}{
		{"[insert, truncate]", []string{"insert:1", "truncate:t", "insert:3", "insert:9"}},
		{"[ddl, delete]", []string{"ddl:t", "delete:2", "ddl:t", "ddl:sentinel"}},
		{"[insert, update, delete]", []string{"insert:1", "delete:2", "insert:3", "insert:9"}},
	} {
		name := strings.NewReplacer("[", "", "]", "", ", ", "_").Replace(tc.kinds)
		t.Run(name, func(t *testing.T) {
			d := testDB(t)
			d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
			d.exec("INSERT INTO t VALUES (2, 'x')")
			p := startPipeline(t, d, "start: current\nkinds: "+tc.kinds, nil)
			p.waitLog(10*time.Second, "starting without checkpoint")
			d.exec("INSERT INTO t VALUES (1, 'a')")
			d.exec("ALTER TABLE t ADD COLUMN w INT")
			d.exec("DELETE FROM t WHERE id = 2")
			d.exec("TRUNCATE t")
			d.exec("INSERT INTO t VALUES (3, 'c', 3)")
			d.exec("DROP TABLE t")
			d.exec("CREATE TABLE sentinel (id INT PRIMARY KEY)")
			d.exec("INSERT INTO sentinel VALUES (9)")
			waitSummary(t, p, tc.want...)
		})
	}
	if _, err := newFilters(nil, nil, nil, nil, []string{"ddl", "drop"}); err == nil || !strings.Contains(err.Error(), "truncate or ddl") {
		t.Fatalf("bad kind accepted: %v", err)
	}
}

// TestBinlogDDLPacketsWithSchemaHistory: without FULL row metadata the
// schema history still follows the DDL that is also emitted as packets:
// rows after an ALTER decode with the new column.
func TestBinlogDDLPacketsWithSchemaHistory(t *testing.T) {
	testenv.MySQLExclusive(t) // changes a global setting
	d := testDB(t)
	d.exec("SET GLOBAL binlog_row_metadata = MINIMAL")
	t.Cleanup(func() { d.c.Execute("SET GLOBAL binlog_row_metadata = FULL") })
	d.reconnect()
	hist := t.TempDir() + "/schema.json"
	p := startPipeline(t, d, "start: current\nkinds: [insert, truncate, ddl]\nschema_file: "+hist, nil)
	p.waitLog(10*time.Second, "starting without checkpoint")
	// Created after the start: the history knows it from its DDL even
	// when the server was too busy for a consistent schema snapshot.
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	d.exec("INSERT INTO t VALUES (1, 'a')")
	d.exec("ALTER TABLE t ADD COLUMN w INT AFTER id")
	d.exec("INSERT INTO t VALUES (2, 22, 'b')")
	d.exec("TRUNCATE t")
	waitSummary(t, p, "ddl:t", "insert:1", "ddl:t", "insert:2", "truncate:t")
	rc := decode(t, p.rec.Payloads()[3])
	if string(rc.After["w"]) != "22" || string(rc.After["v"]) != `"b"` {
		t.Fatalf("row after ALTER decoded as %s", fmt.Sprint(rc.After))
	}
}
