package mysqlbinlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
)

// history is the schema history used when table maps carry no column
// names (binlog_row_metadata is not FULL). It holds, per table, the
// schema versions with the binlog position from which each applies, and
// persists them in a JSON file (rewritten atomically on change), so an
// event is always decoded with the schema current when it was written,
// also after a restart that re-reads events from before an ALTER TABLE.
//
// Versions come from two sources:
//   - a snapshot of information_schema taken at a known binlog position
//     (only when the input starts fresh at "current", where the snapshot
//     and the position provably match);
//   - DDL statements read from the binlog, interpreted by ddl.go. A DDL
//     dbus cannot interpret marks the table unknown from that position:
//     its rows then stop the input with an error rather than be decoded
//     with a guessed schema.
type history struct {
	path string
	doc  historyDoc
}

type historyDoc struct {
	Version int                         `json:"version"`
	Tables  map[string][]*schemaVersion `json:"tables"` // "db.table" -> versions by position
}

// schemaVersion is a table's schema from File:Pos on. Def nil means the
// table does not exist (dropped); Unknown says why the schema is unknown.
type schemaVersion struct {
	File    string    `json:"file"`
	Pos     uint32    `json:"pos"`
	Def     *TableDef `json:"def,omitempty"`
	Unknown string    `json:"unknown,omitempty"`
	Source  string    `json:"source"` // "snapshot" or the DDL text
}

func loadHistory(path string) (*history, error) {
	h := &history{path: path, doc: historyDoc{Version: 1, Tables: map[string][]*schemaVersion{}}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return h, nil
	case err != nil:
		return nil, fmt.Errorf("schema history %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &h.doc); err != nil {
		return nil, fmt.Errorf("schema history %s is corrupt: %w", path, err)
	}
	if h.doc.Version != 1 {
		return nil, fmt.Errorf("schema history %s: unknown version %d", path, h.doc.Version)
	}
	if h.doc.Tables == nil {
		h.doc.Tables = map[string][]*schemaVersion{}
	}
	return h, nil
}

func (h *history) save() error {
	data, err := json.MarshalIndent(&h.doc, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(h.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := engine.WriteFileAtomic(h.path, data); err != nil {
		return fmt.Errorf("write schema history %s: %w", h.path, err)
	}
	return nil
}

// at returns the version of key in force at file:pos (nil if none).
func (h *history) at(key, file string, pos uint32) *schemaVersion {
	var best *schemaVersion
	for _, v := range h.doc.Tables[key] {
		if comparePos(v.File, v.Pos, file, pos) <= 0 {
			best = v
		}
	}
	return best
}

// add records v for key unless a version at the same position exists
// (re-reading a DDL after a restart). Versions stay sorted.
func (h *history) add(key string, v *schemaVersion) bool {
	list := h.doc.Tables[key]
	for _, o := range list {
		if o.File == v.File && o.Pos == v.Pos {
			return false
		}
	}
	list = append(list, v)
	sort.SliceStable(list, func(i, j int) bool { return comparePos(list[i].File, list[i].Pos, list[j].File, list[j].Pos) < 0 })
	h.doc.Tables[key] = list
	return true
}

// lookup returns the schema of db.name for a table map at file:pos.
func (h *history) lookup(db, name, file string, pos uint32, tm *replication.TableMapEvent) (TableDef, error) {
	key := db + "." + name
	v := h.at(key, file, pos)
	switch {
	case v == nil:
		return TableDef{}, fmt.Errorf("no schema known for %s at %s:%d (schema history %s starts later or lacks the table). "+
			"The server does not log column names: set binlog_row_metadata=FULL on the server, or start this input fresh with start: current so dbus can snapshot the schema",
			key, file, pos, h.path)
	case v.Unknown != "":
		return TableDef{}, fmt.Errorf("schema of %s unknown since %s:%d: %s. Set binlog_row_metadata=FULL on the server, or restart with start: current after removing the checkpoint and %s",
			key, v.File, v.Pos, v.Unknown, h.path)
	case v.Def == nil:
		return TableDef{}, fmt.Errorf("schema history says %s was dropped at %s:%d but the binlog has rows for it at %s:%d", key, v.File, v.Pos, file, pos)
	}
	if len(v.Def.Columns) != int(tm.ColumnCount) {
		return TableDef{}, fmt.Errorf("schema history for %s (from %s:%d) has %d columns, the binlog row has %d: the history does not match the binlog",
			key, v.File, v.Pos, len(v.Def.Columns), tm.ColumnCount)
	}
	for i := range v.Def.Columns {
		if !compatible(tm.ColumnType[i], tm.ColumnMeta[i], &v.Def.Columns[i]) {
			return TableDef{}, fmt.Errorf("schema history for %s (from %s:%d): column %d %s is %s, the binlog has %s: the history does not match the binlog",
				key, v.File, v.Pos, i, v.Def.Columns[i].Name, v.Def.Columns[i].Type, typeName(tm.ColumnType[i], tm.ColumnMeta[i], false, false))
		}
	}
	return *v.Def, nil
}

// apply interprets a standalone statement read at file:pos (the end of
// its event) and records the schema versions it creates. It reports
// whether any table changed.
func (h *history) apply(defaultDB, query, file string, pos uint32) (bool, error) {
	changes, err := interpretDDL(defaultDB, query, func(key string) *TableDef {
		v := h.at(key, file, pos)
		if v == nil || v.Def == nil {
			return nil
		}
		return v.Def
	}, func(key string) bool {
		_, ok := h.doc.Tables[key]
		return ok
	})
	if err != nil {
		return false, err
	}
	if len(changes) == 0 {
		return false, nil
	}
	changed := false
	src := query
	if len(src) > 500 {
		src = src[:500] + "..."
	}
	var expanded []ddlChange
	for _, c := range changes {
		if db, ok := strings.CutSuffix(c.key, ".*"); ok {
			for k := range h.doc.Tables {
				if strings.HasPrefix(k, db+".") {
					expanded = append(expanded, ddlChange{key: k})
				}
			}
			continue
		}
		expanded = append(expanded, c)
	}
	for _, c := range expanded {
		v := &schemaVersion{File: file, Pos: pos, Def: c.def, Unknown: c.unknown, Source: src}
		if h.add(c.key, v) {
			changed = true
		}
	}
	if changed {
		if err := h.save(); err != nil {
			return false, err
		}
	}
	return len(expanded) > 0, nil
}

// snapshot records (without saving) the current schema of every table
// (except the system schemas) at position at. The caller guarantees that
// at is the binlog position the schema belongs to.
func (h *history) snapshot(c *client.Conn, at Position) error {
	r, err := c.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IFNULL(CHARACTER_SET_NAME, ''), COLUMN_KEY
		FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		return fmt.Errorf("read information_schema.COLUMNS: %w", err)
	}
	defs := map[string]*TableDef{}
	var order []string
	for i := 0; i < r.RowNumber(); i++ {
		db, _ := r.GetString(i, 0)
		tb, _ := r.GetString(i, 1)
		col, _ := r.GetString(i, 2)
		ctype, _ := r.GetString(i, 3)
		cs, _ := r.GetString(i, 5)
		key, _ := r.GetString(i, 6)
		k := db + "." + tb
		d := defs[k]
		if d == nil {
			d = &TableDef{}
			defs[k] = d
			order = append(order, k)
		}
		cd, err := parseColumnType(col, ctype)
		if err != nil {
			return fmt.Errorf("%s.%s: %v", k, col, err)
		}
		if cs == "binary" {
			cd.Binary = true
		}
		cd.Latin1 = cs == "latin1"
		if key == "PRI" {
			d.PK = append(d.PK, len(d.Columns))
		}
		d.Columns = append(d.Columns, cd)
	}
	// COLUMN_KEY=PRI gives primary key columns in column order; the key
	// order comes from STATISTICS.
	r, err = c.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`)
	if err == nil {
		pks := map[string][]int{}
		for i := 0; i < r.RowNumber(); i++ {
			db, _ := r.GetString(i, 0)
			tb, _ := r.GetString(i, 1)
			col, _ := r.GetString(i, 2)
			k := db + "." + tb
			if d := defs[k]; d != nil {
				for j := range d.Columns {
					if strings.EqualFold(d.Columns[j].Name, col) {
						pks[k] = append(pks[k], j)
					}
				}
			}
		}
		for k, pk := range pks {
			defs[k].PK = pk
		}
	}
	for _, k := range order {
		h.add(k, &schemaVersion{File: at.File, Pos: at.Pos, Def: defs[k], Source: "snapshot"})
	}
	return nil
}

// openHistory loads the schema history when one is configured and, on a
// fresh start at the current position, snapshots the schema there.
func (in *Input) openHistory(ctx context.Context, info *serverInfo, start Position, log *slog.Logger) (*history, error) {
	if in.cfg.SchemaFile == "" {
		if !info.FullMetadata {
			log.Warn("the server does not log full row metadata and schema_file is not set: rows of tables without column names in the binlog will stop the input; set binlog_row_metadata=FULL")
		}
		return nil, nil
	}
	h, err := loadHistory(in.cfg.SchemaFile)
	if err != nil {
		return nil, fatal("%v", err)
	}
	if len(h.doc.Tables) > 0 || info.FullMetadata {
		return h, nil
	}
	// Snapshot only where schema and position provably match: at the
	// server's current position, with no binlog write between the two
	// reads around the snapshot.
	if start != info.Current {
		log.Warn("schema history is empty and the input does not start at the current position: tables without column names in the binlog cannot be decoded until a DDL defines them", "schema_file", in.cfg.SchemaFile)
		return h, nil
	}
	c, err := connect(ctx, &in.cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for attempt := 0; attempt < 10; attempt++ {
		var before, after serverInfo
		before.MariaDB, after.MariaDB = info.MariaDB, info.MariaDB
		if err := currentPosition(c, &in.cfg, &before); err != nil {
			return nil, err
		}
		if before.Current.File != start.File || before.Current.Pos != start.Pos {
			break
		}
		snap := &history{path: h.path, doc: historyDoc{Version: 1, Tables: map[string][]*schemaVersion{}}}
		if err := snap.snapshot(c, start); err != nil {
			return nil, fatal("schema snapshot: %v", err)
		}
		if err := currentPosition(c, &in.cfg, &after); err != nil {
			return nil, err
		}
		if after.Current.File == start.File && after.Current.Pos == start.Pos {
			if err := snap.save(); err != nil {
				return nil, fatal("%v", err)
			}
			log.Info("schema history: snapshot taken", "position", start.String(), "tables", len(snap.doc.Tables))
			return snap, nil
		}
		break
	}
	log.Warn("schema history: the binlog moved while taking the schema snapshot; tables are known only once a DDL defines them", "schema_file", in.cfg.SchemaFile)
	return h, nil
}
