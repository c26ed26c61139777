package mysqlbinlog

import (
	"fmt"
	"path"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// filters decides, once per table schema, which tables, columns and kinds
// are kept. Patterns are path.Match globs:
//   - tables: "db" (every table of db) or "db.table" ("shop.*", "*.orders");
//   - columns: "db.table.column" ("*.*.password").
type filters struct {
	include, exclude []string
	drop, mask       []string
	kinds            uint8
	stmtKinds        uint8 // statement packets kept: truncate, ddl (statement.go)
	// noColumns leaves the column list out of row payloads
	// (Config.Columns none; compile sets table.rowCols).
	noColumns bool
	// The snapshot signal table (snapshot.go): always read, every kind.
	sigDB, sigName string
}

func newFilters(include, exclude, drop, mask, kinds []string) (*filters, error) {
	f := &filters{include: include, exclude: exclude, drop: drop, mask: mask}
	for _, list := range [][]string{include, exclude} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil || p == "" || strings.Count(p, ".") > 1 {
				return nil, fmt.Errorf("bad table pattern %q: want db or db.table, with globs (* ? [..])", p)
			}
		}
	}
	for _, list := range [][]string{drop, mask} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil || strings.Count(p, ".") != 2 {
				return nil, fmt.Errorf("bad column pattern %q: want db.table.column, with globs (* ? [..])", p)
			}
		}
	}
	if len(kinds) == 0 {
		// Truncates change rows; DDL is opt-in (each row already carries
		// its columns, and consumers of row topics parse rows).
		f.kinds, f.stmtKinds = allKinds, stmtTruncate
	}
	for _, k := range kinds {
		switch k {
		case "insert":
			f.kinds |= 1 << KindInsert
		case "update":
			f.kinds |= 1 << KindUpdate
		case "delete":
			f.kinds |= 1 << KindDelete
		case "truncate":
			f.stmtKinds |= stmtTruncate
		case "ddl":
			f.stmtKinds |= stmtDDL
		default:
			return nil, fmt.Errorf("bad kind %q: want insert, update, delete, truncate or ddl", k)
		}
	}
	return f, nil
}

func matchTable(p, db, table string) bool {
	if i := strings.IndexByte(p, '.'); i >= 0 {
		a, _ := path.Match(p[:i], db)
		b, _ := path.Match(p[i+1:], table)
		return a && b
	}
	ok, _ := path.Match(p, db)
	return ok
}

func matchColumn(p, db, table, col string) bool {
	parts := strings.SplitN(p, ".", 3)
	a, _ := path.Match(parts[0], db)
	b, _ := path.Match(parts[1], table)
	c, _ := path.Match(parts[2], col)
	return a && b && c
}

// keepTable: included (or no include list) and not excluded.
func (f *filters) keepTable(db, table string) bool {
	if f == nil || f.isSignal(db, table) {
		return true
	}
	if len(f.include) > 0 {
		in := false
		for _, p := range f.include {
			if matchTable(p, db, table) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, p := range f.exclude {
		if matchTable(p, db, table) {
			return false
		}
	}
	return true
}

// isSignal reports whether db.table is the snapshot signal table.
func (f *filters) isSignal(db, table string) bool {
	return f.sigName != "" && table == f.sigName && db == f.sigDB
}

func (f *filters) dropColumn(db, table, col string) bool {
	if f == nil {
		return false
	}
	for _, p := range f.drop {
		if matchColumn(p, db, table, col) {
			return true
		}
	}
	return false
}

func (f *filters) maskColumn(db, table, col string) bool {
	if f == nil {
		return false
	}
	for _, p := range f.mask {
		if matchColumn(p, db, table, col) {
			return true
		}
	}
	return false
}

// rowsHook is go-mysql's RowsEventDecodeFunc. It decodes a rows event's
// header only. The rows of tables or kinds the filters drop are never
// decoded (the decoder drops those events by the same filters). The row
// images of kept events are left undecoded for the session goroutine
// (rawRows, handed over with the event by syncHandler), which decodes them
// natively or, for what the native decoder does not handle, with go-mysql:
// the parser goroutine only reads the stream.
//
// decode and take run on go-mysql's parser goroutine.
type rowsHook struct {
	f      *filters // nil: keep every event
	native bool     // defer row decoding to the session (else decode here)
	// Last decision per table id, by name (a table map precedes every
	// rows event, often with the same id and names).
	ids     map[uint64]skipEntry
	pending []rawRows
}

type skipEntry struct {
	db, table string
	keep      bool
}

// newRowsHook returns nil when go-mysql may decode every rows event itself
// (no filters, native decoding off).
func newRowsHook(f *filters, native bool) *rowsHook {
	if f != nil && len(f.include) == 0 && len(f.exclude) == 0 && f.kinds == allKinds {
		f = nil
	}
	if f == nil && !native {
		return nil
	}
	return &rowsHook{f: f, native: native, ids: map[uint64]skipEntry{}}
}

func (s *rowsHook) decode(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	if !s.keep(e) {
		return nil
	}
	if s.native {
		// go-mysql allocates a new buffer per packet: data stays valid.
		s.pending = append(s.pending, rawRows{e: e, data: data, pos: pos})
		return nil
	}
	return e.DecodeData(pos, data)
}

// take returns the rows events deferred since the last call.
func (s *rowsHook) take() []rawRows {
	if len(s.pending) == 0 {
		return nil
	}
	p := s.pending
	s.pending = nil
	return p
}

func (s *rowsHook) keep(e *replication.RowsEvent) bool {
	if s.f == nil || e.Table != nil && s.f.isSignal(string(e.Table.Schema), string(e.Table.Table)) {
		return true
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		if s.f.kinds&(1<<KindInsert) == 0 {
			return false
		}
	case replication.EnumRowsEventTypeUpdate:
		if s.f.kinds&(1<<KindUpdate) == 0 {
			return false
		}
	case replication.EnumRowsEventTypeDelete:
		if s.f.kinds&(1<<KindDelete) == 0 {
			return false
		}
	default:
		return true // the decoder reports it
	}
	if e.Table == nil {
		return true
	}
	return s.keepTable(e.Table)
}

// keepTable applies the table filters to tm's names, cached per table id.
func (s *rowsHook) keepTable(tm *replication.TableMapEvent) bool {
	en, ok := s.ids[tm.TableID]
	if !ok || string(tm.Schema) != en.db || string(tm.Table) != en.table {
		en = skipEntry{db: string(tm.Schema), table: string(tm.Table)}
		en.keep = s.f.keepTable(en.db, en.table)
		if len(s.ids) >= 4096 {
			clear(s.ids)
		}
		s.ids[tm.TableID] = en
	}
	return en.keep
}
