package mysqlbinlog

import (
	"fmt"
	"slices"
	"strings"
)

// This file is a deliberately small interpreter of the DDL that changes
// column layouts: CREATE TABLE (with columns or LIKE), ALTER TABLE
// (ADD/DROP/CHANGE/MODIFY/RENAME COLUMN, ADD/DROP PRIMARY KEY, RENAME TO,
// index and option changes), DROP TABLE, RENAME TABLE, DROP DATABASE.
// It fails closed: a statement touching a table in a way it does not
// understand marks that table unknown (rows for it then stop the input)
// instead of guessing.

// ddlChange is the new schema of one table ("db.table"), nil def for a
// dropped table, unknown set when the statement could not be interpreted.
type ddlChange struct {
	key     string
	def     *TableDef
	unknown string
}

// isDDL reports whether a query starts with a schema-changing keyword.
func isDDL(q []byte) bool {
	toks := tokenize(string(q), 1)
	if len(toks) == 0 {
		return false
	}
	switch toks[0].up {
	case "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE":
		return true
	}
	return false
}

// interpretDDL interprets query. get returns the schema of "db.table"
// before the statement (nil if unknown or absent); known reports whether
// the history tracks the table at all.
func interpretDDL(defaultDB, query string, get func(string) *TableDef, known func(string) bool) ([]ddlChange, error) {
	p := &ddlParser{t: tokenize(query, 0)}
	switch {
	case p.kw("CREATE"):
		return p.createTable(defaultDB, query, get)
	case p.kw("ALTER"):
		return p.alterTable(defaultDB, get, known)
	case p.kw("DROP"):
		return p.dropStatement(defaultDB)
	case p.kw("RENAME", "TABLE"):
		return p.renameTables(defaultDB, get)
	}
	return nil, nil
}

// createTable interprets CREATE [OR REPLACE] TABLE after CREATE: columns,
// or LIKE another table.
func (p *ddlParser) createTable(defaultDB, query string, get func(string) *TableDef) ([]ddlChange, error) {
	p.kw("OR", "REPLACE")
	p.kw("TEMPORARY")
	if !p.kw("TABLE") {
		return nil, nil // CREATE INDEX/VIEW/USER/DATABASE...: no column layout change
	}
	if tmp := strings.Contains(strings.ToUpper(query[:min(len(query), 40)]), "TEMPORARY"); tmp {
		return nil, nil // temporary tables are not logged in row format
	}
	p.kw("IF", "NOT", "EXISTS")
	key, ok := p.tableName(defaultDB)
	if !ok {
		return nil, nil
	}
	if p.kw("LIKE") || (p.peek().up == "(" && p.i+1 < len(p.t) && p.t[p.i+1].up == "LIKE") {
		if p.peek().up == "(" {
			p.i += 2
		}
		src, ok := p.tableName(defaultDB)
		if !ok {
			return []ddlChange{{key: key, unknown: "cannot read CREATE TABLE ... LIKE"}}, nil
		}
		d := get(src)
		if d == nil {
			return []ddlChange{{key: key, unknown: "CREATE TABLE LIKE " + src + " whose schema is unknown"}}, nil
		}
		c := cloneDef(d)
		return []ddlChange{{key: key, def: c}}, nil
	}
	def, err := p.createBody()
	if err != nil {
		return []ddlChange{{key: key, unknown: err.Error()}}, nil
	}
	return []ddlChange{{key: key, def: def}}, nil
}

// alterTable interprets ALTER [ONLINE] [IGNORE] TABLE after ALTER.
func (p *ddlParser) alterTable(defaultDB string, get func(string) *TableDef, known func(string) bool) ([]ddlChange, error) {
	p.kw("ONLINE")
	p.kw("IGNORE")
	if !p.kw("TABLE") {
		return nil, nil
	}
	p.kw("IF", "EXISTS")
	key, ok := p.tableName(defaultDB)
	if !ok {
		return nil, nil
	}
	prev := get(key)
	if prev == nil {
		if !known(key) {
			return []ddlChange{{key: key, unknown: "ALTER TABLE of a table whose earlier schema is unknown"}}, nil
		}
		return []ddlChange{{key: key, unknown: "ALTER TABLE of a table whose schema is unknown or dropped"}}, nil
	}
	def := cloneDef(prev)
	newKey, err := p.alterSpecs(def, defaultDB)
	if err != nil {
		return []ddlChange{{key: key, unknown: err.Error()}}, nil
	}
	if newKey != "" && newKey != key {
		return []ddlChange{{key: key}, {key: newKey, def: def}}, nil
	}
	return []ddlChange{{key: key, def: def}}, nil
}

// dropStatement interprets DROP DATABASE/SCHEMA and DROP TABLE after DROP.
func (p *ddlParser) dropStatement(defaultDB string) ([]ddlChange, error) {
	p.kw("TEMPORARY")
	if p.kw("DATABASE") || p.kw("SCHEMA") {
		p.kw("IF", "EXISTS")
		db, ok := p.ident()
		if !ok {
			return nil, nil
		}
		return []ddlChange{{key: db + ".*"}}, nil
	}
	if !p.kw("TABLE") {
		return nil, nil
	}
	p.kw("IF", "EXISTS")
	var out []ddlChange
	for {
		key, ok := p.tableName(defaultDB)
		if !ok {
			break
		}
		out = append(out, ddlChange{key: key})
		if p.peek().up != "," {
			break
		}
		p.i++
	}
	return out, nil
}

// renameTables interprets RENAME TABLE a TO b[, c TO d...]; renames apply
// in order (a swap goes through a third name).
func (p *ddlParser) renameTables(defaultDB string, get func(string) *TableDef) ([]ddlChange, error) {
	var out []ddlChange
	cur := map[string]*TableDef{}
	gone := map[string]bool{}
	look := func(k string) *TableDef {
		if d, ok := cur[k]; ok {
			return d
		}
		if gone[k] {
			return nil
		}
		return get(k)
	}
	var keys []string
	for {
		from, ok := p.tableName(defaultDB)
		if !ok || !p.kw("TO") {
			return nil, fmt.Errorf("cannot read RENAME TABLE")
		}
		to, ok := p.tableName(defaultDB)
		if !ok {
			return nil, fmt.Errorf("cannot read RENAME TABLE")
		}
		d := look(from)
		delete(cur, from)
		gone[from] = true
		cur[to] = d
		delete(gone, to)
		keys = append(keys, from, to)
		if p.peek().up != "," {
			break
		}
		p.i++
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if d, ok := cur[k]; ok {
			if d == nil {
				out = append(out, ddlChange{key: k, unknown: "renamed from a table whose schema is unknown"})
			} else {
				out = append(out, ddlChange{key: k, def: d})
			}
		} else {
			out = append(out, ddlChange{key: k})
		}
	}
	return out, nil
}

func cloneDef(d *TableDef) *TableDef {
	c := &TableDef{Columns: slices.Clone(d.Columns), PK: slices.Clone(d.PK)}
	return c
}
