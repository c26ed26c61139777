package mysqlbinlog

import (
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/internal/jsonstr"
)

// Statement packets: TRUNCATE TABLE (kind truncate) and DDL (kind ddl),
// emitted in binlog order between the row packets (doc.go, item 4):
//
//	{"source":{"file","pos","gtid","server_id"},"db","table"|null,
//	"kind":"truncate"|"ddl","ts_ms","statement"}
//
// Attributes db, table ("" for a statement on a whole database or
// without a table) and kind; key "db.table" (or "db"). The include and
// exclude filters apply to the statement's db and table.

// Statement kinds kept (filters.stmtKinds bits).
const (
	stmtTruncate uint8 = 1 << iota
	stmtDDL
	allStmtKinds = stmtTruncate | stmtDDL
)

// classifyStatement returns what a query event changes: kind truncate or
// ddl, the database and table it names (table "" when none), ok false
// for anything else (administrative statements, accounts, temporary
// tables).
func classifyStatement(defaultDB string, q []byte) (kind uint8, db, table string, ok bool) {
	p := &ddlParser{t: tokenize(string(q), 24)}
	onTable := func(k uint8) (uint8, string, string, bool) {
		key, ok := p.tableName(defaultDB)
		if !ok {
			return k, defaultDB, "", defaultDB != ""
		}
		db, table, _ := strings.Cut(key, ".")
		return k, db, table, true
	}
	onDB := func() (uint8, string, string, bool) {
		if name, ok := p.ident(); ok {
			return stmtDDL, name, "", true
		}
		return stmtDDL, defaultDB, "", defaultDB != ""
	}
	switch {
	case p.kw("TRUNCATE"):
		p.kw("TABLE")
		return onTable(stmtTruncate)
	case p.kw("CREATE"), p.kw("ALTER"), p.kw("DROP"):
		p.kw("OR", "REPLACE")
		p.kw("ONLINE")
		p.kw("IGNORE")
		if p.kw("TEMPORARY") {
			return 0, "", "", false // not logged as rows; nothing a consumer sees
		}
		switch {
		case p.kw("TABLE"):
			p.kw("IF", "NOT", "EXISTS")
			p.kw("IF", "EXISTS")
			return onTable(stmtDDL)
		case p.kw("DATABASE"), p.kw("SCHEMA"):
			p.kw("IF", "NOT", "EXISTS")
			p.kw("IF", "EXISTS")
			return onDB()
		case p.kw("UNIQUE"), p.kw("FULLTEXT"), p.kw("SPATIAL"), p.kw("INDEX"), p.kw("KEY"):
			p.kw("INDEX")
			p.kw("KEY")
			p.kw("IF", "NOT", "EXISTS")
			p.kw("IF", "EXISTS")
			p.ident()
			for !p.done() && !p.kw("ON") {
				p.i++
			}
			return onTable(stmtDDL)
		case p.kw("USER"), p.kw("ROLE"), p.kw("SERVER"), p.kw("TABLESPACE"), p.kw("LOGFILE"), p.kw("RESOURCE"):
			return 0, "", "", false
		}
		// Views, routines, triggers, events, sequences: in the default db.
		return stmtDDL, defaultDB, "", defaultDB != ""
	case p.kw("RENAME", "TABLE"):
		return onTable(stmtDDL)
	}
	return 0, "", "", false
}

// statementPacket emits a query event as a truncate or ddl packet when it
// is one and the filters keep it.
func (d *decoder) statementPacket(h *replication.EventHeader, e *replication.QueryEvent, s sink) error {
	kind, db, table, ok := classifyStatement(string(e.Schema), e.Query)
	if !ok || d.filters != nil && (d.filters.stmtKinds&kind == 0 || !d.filters.keepTable(db, table) || d.filters.isSignal(db, table)) {
		return nil
	}
	kindName := "ddl"
	if kind == stmtTruncate {
		kindName = "truncate"
	}
	ts := int64(h.Timestamp) * 1000
	b := append(d.stmt.payload[:0], `{"source":{"file":`...)
	b = jsonstr.Append(b, d.file)
	b = append(b, `,"pos":`...)
	b = strconv.AppendUint(b, uint64(h.LogPos), 10)
	b = append(b, `,"gtid":`...)
	b = jsonstr.Append(b, d.gtid.current())
	b = append(b, `,"server_id":`...)
	b = strconv.AppendUint(b, uint64(h.ServerID), 10)
	b = append(b, `},"db":`...)
	b = jsonstr.Append(b, db)
	b = append(b, `,"table":`...)
	if table == "" {
		b = append(b, "null"...)
	} else {
		b = jsonstr.Append(b, table)
	}
	b = append(b, `,"kind":"`...)
	b = append(b, kindName...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"statement":`...)
	b = jsonstr.Append(b, e.Query)
	b = append(b, '}')
	k := append(d.stmt.key[:0], db...)
	if table != "" {
		k = append(append(k, '.'), table...)
	}
	d.stmt = outPacket{payload: b, key: k, db: db, table: table, kind: kindName, tsMs: ts,
		offset: fileSeq(d.file)<<32 | int64(h.LogPos)}
	return s.packet(d, &d.stmt)
}
