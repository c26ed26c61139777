package mysqlbinlog

import (
	"fmt"
	"slices"
	"strings"
)

// ALTER TABLE specifications.

// alterSpecs applies ALTER TABLE specifications to def. It returns the new
// table key on RENAME TO.
func (p *ddlParser) alterSpecs(def *TableDef, defaultDB string) (string, error) {
	newKey := ""
	for !p.done() {
		t := p.peek()
		if t.up == "," && !t.id {
			p.i++
			continue
		}
		var err error
		switch {
		case p.kw("ADD"):
			err = p.alterAdd(def)
		case p.kw("DROP"):
			err = p.alterDrop(def)
		case p.kw("CHANGE"):
			err = p.alterChange(def)
		case p.kw("MODIFY"):
			err = p.alterModify(def)
		case p.kw("RENAME"):
			var k string
			if k, err = p.alterRename(def, defaultDB); k != "" {
				newKey = k
			}
		case p.kw("ALTER"):
			// ALTER [COLUMN] c SET/DROP DEFAULT, SET VISIBLE..., ALTER
			// INDEX: no layout change.
			p.kw("COLUMN")
			p.skipToComma()
		case p.kw("CONVERT"):
			return "", fmt.Errorf("ALTER TABLE ... CONVERT TO CHARACTER SET is not interpreted")
		case p.kw("ORDER", "BY"), p.kw("ENABLE", "KEYS"), p.kw("DISABLE", "KEYS"), p.kw("FORCE"),
			p.kw("ALGORITHM"), p.kw("LOCK"), p.kw("ENGINE"), p.kw("COMMENT"), p.kw("AUTO_INCREMENT"),
			p.kw("ROW_FORMAT"), p.kw("KEY_BLOCK_SIZE"), p.kw("STATS_PERSISTENT"), p.kw("WAIT"), p.kw("NOWAIT"):
			p.skipToComma()
		case p.kw("DEFAULT"), p.kw("CHARACTER", "SET"), p.kw("CHARSET"), p.kw("COLLATE"):
			// The table default charset affects only columns added later
			// without a charset; existing columns keep theirs.
			p.skipToComma()
		default:
			return "", fmt.Errorf("ALTER TABLE clause %q is not interpreted", p.peek().s)
		}
		if err != nil {
			return "", err
		}
	}
	return newKey, nil
}

// primaryKey reads the "(cols)" of ADD [CONSTRAINT [name]] PRIMARY KEY and
// makes them def's primary key.
func (p *ddlParser) primaryKey(def *TableDef) error {
	names, err := p.keyColumns()
	if err != nil {
		return err
	}
	def.PK = def.PK[:0]
	for _, n := range names {
		idx := def.index(n)
		if idx < 0 {
			return fmt.Errorf("ADD PRIMARY KEY: column %s not found", n)
		}
		def.PK = append(def.PK, idx)
	}
	return nil
}

// alterAdd applies the clause after ADD: a primary key, a constraint or
// index (no layout change), one column, or a parenthesised column list.
func (p *ddlParser) alterAdd(def *TableDef) error {
	switch {
	case p.kw("PRIMARY", "KEY"):
		if err := p.primaryKey(def); err != nil {
			return err
		}
		p.skipToComma()
		return nil
	case p.kw("CONSTRAINT"):
		if u := p.peek(); !u.id && u.up != "PRIMARY" && u.up != "UNIQUE" && u.up != "FOREIGN" && u.up != "CHECK" {
			p.i++
		}
		if p.kw("PRIMARY", "KEY") {
			if err := p.primaryKey(def); err != nil {
				return err
			}
		}
		p.skipToComma()
		return nil
	case isIndexWord(p.peek()):
		p.skipToComma()
		return nil
	}
	p.kw("COLUMN")
	p.kw("IF", "NOT", "EXISTS")
	if p.peek().up == "(" && !p.peek().id {
		p.i++
		for !p.done() && p.peek().up != ")" {
			if p.peek().up == "," {
				p.i++
				continue
			}
			cd, pk, err := p.columnDef()
			if err != nil {
				return err
			}
			if def.index(cd.Name) >= 0 {
				return fmt.Errorf("ADD COLUMN %s: column exists", cd.Name)
			}
			cd.Type = strings.TrimSuffix(cd.Type, csMarker)
			def.Columns = append(def.Columns, cd)
			if pk {
				def.PK = []int{len(def.Columns) - 1}
			}
		}
		p.i++
		return nil
	}
	name, ok := p.ident()
	if !ok {
		return fmt.Errorf("cannot read ADD COLUMN")
	}
	if def.index(name) >= 0 {
		return fmt.Errorf("ADD COLUMN %s: column exists (IF NOT EXISTS is not interpreted)", name)
	}
	cd, pk, where, err := p.columnWithPlace(name)
	if err != nil {
		return err
	}
	insertColumn(def, cd, where, -1)
	if pk {
		def.PK = []int{def.index(cd.Name)}
	}
	return nil
}

// alterDrop applies the clause after DROP.
func (p *ddlParser) alterDrop(def *TableDef) error {
	switch {
	case p.kw("PRIMARY", "KEY"):
		def.PK = nil
	case isIndexWord(p.peek()) || p.kw("CONSTRAINT") || p.kw("CHECK"):
		p.skipToComma()
	default:
		idx, err := p.existingColumn(def, "DROP")
		if err != nil {
			return err
		}
		removeColumn(def, idx)
		p.skipToComma()
	}
	return nil
}

// alterChange applies CHANGE [COLUMN] old new definition [FIRST|AFTER c].
func (p *ddlParser) alterChange(def *TableDef) error {
	idx, err := p.existingColumn(def, "CHANGE")
	if err != nil {
		return err
	}
	name, ok := p.ident()
	if !ok {
		return fmt.Errorf("cannot read CHANGE COLUMN")
	}
	cd, _, where, err := p.columnWithPlace(name)
	if err != nil {
		return err
	}
	replaceColumn(def, idx, cd, where)
	return nil
}

// alterModify applies MODIFY [COLUMN] c definition [FIRST|AFTER c].
func (p *ddlParser) alterModify(def *TableDef) error {
	idx, err := p.existingColumn(def, "MODIFY")
	if err != nil {
		return err
	}
	cd, _, where, err := p.columnWithPlace(def.Columns[idx].Name)
	if err != nil {
		return err
	}
	replaceColumn(def, idx, cd, where)
	return nil
}

// alterRename applies RENAME COLUMN, RENAME INDEX/KEY, or RENAME [TO|AS]
// table, for which it returns the new table key.
func (p *ddlParser) alterRename(def *TableDef, defaultDB string) (string, error) {
	switch {
	case p.kw("COLUMN"):
		old, ok1 := p.ident()
		if !ok1 || !p.kw("TO") {
			return "", fmt.Errorf("cannot read RENAME COLUMN")
		}
		name, ok2 := p.ident()
		if !ok2 {
			return "", fmt.Errorf("cannot read RENAME COLUMN")
		}
		idx := def.index(old)
		if idx < 0 {
			return "", fmt.Errorf("RENAME COLUMN %s: no such column", old)
		}
		def.Columns[idx].Name = name
	case isIndexWord(p.peek()):
		p.skipToComma()
	default:
		if !p.kw("TO") {
			p.kw("AS")
		}
		k, ok := p.tableName(defaultDB)
		if !ok {
			return "", fmt.Errorf("cannot read RENAME TO")
		}
		return k, nil
	}
	return "", nil
}

// existingColumn reads "[COLUMN] name" after the verb (DROP, CHANGE,
// MODIFY) of an ALTER TABLE clause and returns the column's index in def.
func (p *ddlParser) existingColumn(def *TableDef, verb string) (int, error) {
	p.kw("COLUMN")
	if p.kw("IF", "EXISTS") {
		return 0, fmt.Errorf("%s COLUMN IF EXISTS is not interpreted", verb)
	}
	name, ok := p.ident()
	if !ok {
		return 0, fmt.Errorf("cannot read %s COLUMN", verb)
	}
	idx := def.index(name)
	if idx < 0 {
		return 0, fmt.Errorf("%s COLUMN %s: no such column", verb, name)
	}
	return idx, nil
}

func isIndexWord(t token) bool {
	if t.id || t.str {
		return false
	}
	switch t.up {
	case "INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN":
		return true
	}
	return false
}

// columnWithPlace reads a column definition's type and attributes and an
// optional FIRST / AFTER col. where is "" (end or unchanged), "^" (first)
// or the column to follow.
func (p *ddlParser) columnWithPlace(name string) (ColumnDef, bool, string, error) {
	start := p.i
	p.skipToComma()
	toks := p.t[start:p.i]
	where := ""
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.id || t.str {
			continue
		}
		if t.up == "FIRST" {
			where = "^"
			toks = toks[:i]
			break
		}
		if t.up == "AFTER" && i+1 < len(toks) {
			where = toks[i+1].s
			toks = toks[:i]
			break
		}
	}
	cd, pk, err := columnFromTokens(name, toks)
	cd.Type = strings.TrimSuffix(cd.Type, csMarker)
	return cd, pk, where, err
}

// insertColumn inserts cd by where ("" at the end or at pos if >= 0).
func insertColumn(def *TableDef, cd ColumnDef, where string, pos int) {
	at := len(def.Columns)
	if pos >= 0 {
		at = pos
	}
	switch where {
	case "":
	case "^":
		at = 0
	default:
		if i := def.index(where); i >= 0 {
			at = i + 1
		}
	}
	def.Columns = slices.Insert(def.Columns, at, cd)
	for i, k := range def.PK {
		if k >= at {
			def.PK[i] = k + 1
		}
	}
}

func removeColumn(def *TableDef, idx int) {
	def.Columns = slices.Delete(def.Columns, idx, idx+1)
	pk := def.PK[:0]
	for _, k := range def.PK {
		switch {
		case k == idx:
			// Dropping a key column drops it from the key.
		case k > idx:
			pk = append(pk, k-1)
		default:
			pk = append(pk, k)
		}
	}
	def.PK = pk
}

// replaceColumn replaces column idx by cd, moving it when where is set.
func replaceColumn(def *TableDef, idx int, cd ColumnDef, where string) {
	if where == "" {
		def.Columns[idx] = cd
		return
	}
	inPK := -1
	for i, k := range def.PK {
		if k == idx {
			inPK = i
		}
	}
	removeColumn(def, idx)
	insertColumn(def, cd, where, -1)
	if inPK >= 0 {
		def.PK = slices.Insert(def.PK, min(inPK, len(def.PK)), def.index(cd.Name))
	}
}
