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

type token struct {
	s   string // text (identifiers unquoted, strings unescaped)
	up  string // upper-case text for keywords ("" for quoted)
	str bool   // a quoted string literal
	id  bool   // a quoted identifier
}

// tokenize splits SQL into tokens, skipping comments (but not the body of
// /*! versioned comments). limit > 0 stops after that many tokens.
func tokenize(q string, limit int) []token {
	var out []token
	i := 0
	for i < len(q) && (limit <= 0 || len(out) < limit) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' || (c == '-' && i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t')):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if i+2 < len(q) && q[i+2] == '!' {
				// Versioned comment: its body is SQL.
				i += 3
				for i < len(q) && q[i] >= '0' && q[i] <= '9' {
					i++
				}
				continue
			}
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				i = len(q)
			} else {
				i += end + 4
			}
		case c == '*' && i+1 < len(q) && q[i+1] == '/':
			i += 2 // end of a versioned comment
		case c == '`' || c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			out = append(out, token{s: b.String(), id: true})
			i = j + 1
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for j < len(q) {
				if q[j] == '\\' && j+1 < len(q) {
					switch q[j+1] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case '0':
						b.WriteByte(0)
					default:
						b.WriteByte(q[j+1])
					}
					j += 2
					continue
				}
				if q[j] == '\'' {
					if j+1 < len(q) && q[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			out = append(out, token{s: b.String(), str: true})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			w := q[i:j]
			out = append(out, token{s: w, up: strings.ToUpper(w)})
			i = j
		default:
			out = append(out, token{s: q[i : i+1], up: q[i : i+1]})
			i++
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// parser walks a token list.
type ddlParser struct {
	t []token
	i int
}

func (p *ddlParser) peek() token {
	if p.i < len(p.t) {
		return p.t[p.i]
	}
	return token{}
}
func (p *ddlParser) next() token { t := p.peek(); p.i++; return t }
func (p *ddlParser) done() bool  { return p.i >= len(p.t) }

// kw consumes the keyword sequence if present.
func (p *ddlParser) kw(words ...string) bool {
	for k, w := range words {
		if p.i+k >= len(p.t) || p.t[p.i+k].id || p.t[p.i+k].str || p.t[p.i+k].up != w {
			return false
		}
	}
	p.i += len(words)
	return true
}

// ident reads an identifier (quoted or bare).
func (p *ddlParser) ident() (string, bool) {
	t := p.peek()
	if t.str || t.s == "" || (!t.id && !isWordByte(t.s[0])) {
		return "", false
	}
	p.i++
	return t.s, true
}

// tableName reads [db.]table, returning "db.table".
func (p *ddlParser) tableName(defaultDB string) (string, bool) {
	a, ok := p.ident()
	if !ok {
		return "", false
	}
	if p.peek().up == "." {
		p.i++
		b, ok := p.ident()
		if !ok {
			return "", false
		}
		return a + "." + b, true
	}
	if defaultDB == "" {
		return "", false
	}
	return defaultDB + "." + a, true
}

// skipGroup skips a balanced (...) group starting at '('.
func (p *ddlParser) skipGroup() {
	depth := 0
	for !p.done() {
		t := p.next()
		if t.str || t.id {
			continue
		}
		switch t.up {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// skipToComma skips to the next top-level ',' or ')' (not consumed).
func (p *ddlParser) skipToComma() {
	depth := 0
	for !p.done() {
		t := p.peek()
		if !t.str && !t.id {
			switch t.up {
			case "(":
				depth++
			case ")":
				if depth == 0 {
					return
				}
				depth--
			case ",":
				if depth == 0 {
					return
				}
			}
		}
		p.i++
	}
}

// interpretDDL interprets query. get returns the schema of "db.table"
// before the statement (nil if unknown or absent); known reports whether
// the history tracks the table at all.
func interpretDDL(defaultDB, query string, get func(string) *TableDef, known func(string) bool) ([]ddlChange, error) {
	p := &ddlParser{t: tokenize(query, 0)}
	switch {
	case p.kw("CREATE"):
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
	case p.kw("ALTER"):
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
	case p.kw("DROP"):
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
	case p.kw("RENAME", "TABLE"):
		var out []ddlChange
		// Renames apply in order (a swap goes through a third name).
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
	return nil, nil
}

func cloneDef(d *TableDef) *TableDef {
	c := &TableDef{Columns: slices.Clone(d.Columns), PK: slices.Clone(d.PK)}
	return c
}

// createBody reads "( defs ) options" of CREATE TABLE.
func (p *ddlParser) createBody() (*TableDef, error) {
	if p.peek().up != "(" {
		return nil, fmt.Errorf("CREATE TABLE without a column list (CREATE TABLE ... SELECT is not interpreted)")
	}
	p.i++
	def := &TableDef{}
	var pkNames []string
	for !p.done() {
		t := p.peek()
		if t.up == ")" && !t.id {
			p.i++
			break
		}
		if t.up == "," && !t.id {
			p.i++
			continue
		}
		if !t.id {
			switch t.up {
			case "PRIMARY":
				p.i++
				p.kw("KEY")
				names, err := p.keyColumns()
				if err != nil {
					return nil, err
				}
				pkNames = names
				p.skipToComma()
				continue
			case "KEY", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "CONSTRAINT", "PERIOD", "SYSTEM":
				if t.up == "CONSTRAINT" {
					p.i++
					if u := p.peek(); !u.id && u.up != "PRIMARY" && u.up != "UNIQUE" && u.up != "FOREIGN" && u.up != "CHECK" {
						p.i++ // constraint name
					}
					if p.kw("PRIMARY") {
						p.kw("KEY")
						names, err := p.keyColumns()
						if err != nil {
							return nil, err
						}
						pkNames = names
					}
				}
				p.skipToComma()
				continue
			}
		}
		cd, pk, err := p.columnDef()
		if err != nil {
			return nil, err
		}
		if pk {
			pkNames = []string{cd.Name}
		}
		def.Columns = append(def.Columns, cd)
	}
	// Table options: a default charset applies to columns without one.
	for !p.done() {
		if p.kw("DEFAULT") {
			continue
		}
		if p.kw("CHARACTER", "SET") || p.kw("CHARSET") {
			if p.peek().up == "=" {
				p.i++
			}
			cs := strings.ToLower(p.next().s)
			for i := range def.Columns {
				c := &def.Columns[i]
				if c.Type != "" && isTextType(c.Type) && !c.Binary && !c.explicitCS() {
					c.Latin1 = cs == "latin1"
					c.Binary = cs == "binary"
				}
			}
			continue
		}
		if p.kw("AS") || p.kw("SELECT") || p.kw("IGNORE") || p.kw("REPLACE") {
			return nil, fmt.Errorf("CREATE TABLE ... SELECT is not interpreted")
		}
		p.i++
	}
	for i := range def.Columns {
		def.Columns[i].Type = strings.TrimSuffix(def.Columns[i].Type, csMarker)
	}
	for _, n := range pkNames {
		idx := def.index(n)
		if idx < 0 {
			return nil, fmt.Errorf("primary key column %s not found", n)
		}
		def.PK = append(def.PK, idx)
	}
	return def, nil
}

// csMarker is appended to a type while parsing CREATE TABLE to remember an
// explicit column charset (removed before the definition is stored).
const csMarker = "\x00cs"

func (c *ColumnDef) explicitCS() bool { return strings.HasSuffix(c.Type, csMarker) }

func isTextType(t string) bool {
	switch family(strings.TrimSuffix(t, csMarker)) {
	case "string", "blob":
		return !strings.Contains(t, "blob") && !strings.Contains(t, "binary")
	case "enum", "set":
		return false
	}
	return false
}

func (d *TableDef) index(name string) int {
	for i := range d.Columns {
		if strings.EqualFold(d.Columns[i].Name, name) {
			return i
		}
	}
	return -1
}

// keyColumns reads "(a, b(10), c DESC)".
func (p *ddlParser) keyColumns() ([]string, error) {
	// Optional index name / USING before the list.
	for !p.done() && p.peek().up != "(" {
		p.i++
	}
	if p.peek().up != "(" {
		return nil, fmt.Errorf("cannot read key column list")
	}
	p.i++
	var names []string
	for !p.done() {
		n, ok := p.ident()
		if !ok {
			return nil, fmt.Errorf("cannot read key column list")
		}
		names = append(names, n)
		p.skipToComma()
		t := p.next()
		if t.up == ")" {
			return names, nil
		}
	}
	return nil, fmt.Errorf("unterminated key column list")
}

// columnDef reads "name type [attributes]" up to the next top-level ','
// or ')'. pk reports an inline PRIMARY KEY.
func (p *ddlParser) columnDef() (ColumnDef, bool, error) {
	name, ok := p.ident()
	if !ok {
		return ColumnDef{}, false, fmt.Errorf("cannot read column definition near %q", p.peek().s)
	}
	start := p.i
	p.skipToComma()
	attrs := p.t[start:p.i]
	cd, pk, err := columnFromTokens(name, attrs)
	return cd, pk, err
}

// columnFromTokens builds a column from its type and attribute tokens.
func columnFromTokens(name string, toks []token) (ColumnDef, bool, error) {
	if len(toks) == 0 {
		return ColumnDef{}, false, fmt.Errorf("column %s without a type", name)
	}
	cd := ColumnDef{Name: name}
	base := strings.ToLower(toks[0].s)
	i := 1
	// Multi-word types.
	switch base {
	case "double":
		if i < len(toks) && toks[i].up == "PRECISION" {
			i++
		}
	case "long":
		base = "mediumtext"
		if i < len(toks) && (toks[i].up == "VARCHAR" || toks[i].up == "VARBINARY") {
			if toks[i].up == "VARBINARY" {
				base = "mediumblob"
			}
			i++
		}
	case "national", "nchar":
		if base == "national" && i < len(toks) {
			base = strings.ToLower(toks[i].s)
			i++
		} else {
			base = "char"
		}
	case "character":
		base = "char"
		if i < len(toks) && toks[i].up == "VARYING" {
			base = "varchar"
			i++
		}
	}
	var args []string
	if i < len(toks) && toks[i].up == "(" {
		depth := 0
		for ; i < len(toks); i++ {
			t := toks[i]
			if !t.str && !t.id {
				if t.up == "(" {
					depth++
					if depth == 1 {
						continue
					}
				}
				if t.up == ")" {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
				if t.up == "," && depth == 1 {
					continue
				}
			}
			args = append(args, t.s)
		}
	}
	switch base {
	case "bool", "boolean":
		base = "tinyint"
	case "integer":
		base = "int"
	case "int1":
		base = "tinyint"
	case "int2":
		base = "smallint"
	case "int3", "middleint":
		base = "mediumint"
	case "int4":
		base = "int"
	case "int8":
		base = "bigint"
	case "dec", "numeric", "fixed":
		base = "decimal"
	case "real", "float8":
		base = "double"
	case "float4":
		base = "float"
	case "json":
		base = "longtext" // MariaDB: JSON is LONGTEXT; MySQL logs FULL metadata
	case "serial":
		base = "bigint"
		cd.Unsigned = true
	case "nvarchar":
		base = "varchar"
	}
	explicitCS := false
	pk := false
	for ; i < len(toks); i++ {
		t := toks[i]
		if t.str || t.id {
			continue
		}
		switch t.up {
		case "UNSIGNED":
			cd.Unsigned = true
		case "SIGNED":
			cd.Unsigned = false
		case "CHARACTER", "CHARSET":
			if t.up == "CHARACTER" && i+1 < len(toks) && toks[i+1].up == "SET" {
				i++
			}
			if i+1 < len(toks) {
				i++
				cs := strings.ToLower(toks[i].s)
				cd.Latin1 = cs == "latin1"
				cd.Binary = cs == "binary"
				explicitCS = true
			}
		case "BINARY":
			// "varchar(10) BINARY" is a binary collation of the charset,
			// still text.
		case "PRIMARY":
			pk = true
		case "DEFAULT", "COMMENT", "COLLATE", "ON", "AS", "GENERATED", "CHECK", "REFERENCES":
			// Skip the attribute's operand (a literal or a group).
			if i+1 < len(toks) && toks[i+1].up == "(" {
				depth := 0
				for i++; i < len(toks); i++ {
					if toks[i].str || toks[i].id {
						continue
					}
					if toks[i].up == "(" {
						depth++
					} else if toks[i].up == ")" {
						depth--
						if depth == 0 {
							break
						}
					}
				}
			} else if t.up != "AS" && t.up != "GENERATED" && i+1 < len(toks) {
				i++
			}
		}
	}
	switch base {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		cd.Binary = true
	case "enum":
		cd.Enum = args
	case "set":
		cd.Set = args
	}
	switch base {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "float", "double", "year", "bit", "date", "time",
		"datetime", "timestamp", "char", "varchar", "binary", "varbinary", "tinytext", "text", "mediumtext", "longtext",
		"tinyblob", "blob", "mediumblob", "longblob", "enum", "set", "geometry", "point", "linestring", "polygon",
		"multipoint", "multilinestring", "multipolygon", "geometrycollection", "inet6", "inet4", "uuid", "vector":
	case "decimal":
	default:
		return cd, pk, fmt.Errorf("column %s: type %q is not interpreted", name, base)
	}
	switch base {
	case "inet6", "inet4", "uuid":
		return cd, pk, fmt.Errorf("column %s: MariaDB type %s is not interpreted", name, base)
	case "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		base = "geometry"
	}
	cd.Type = base
	switch base {
	case "decimal":
		prec, scale := "10", "0"
		if len(args) > 0 {
			prec = args[0]
		}
		if len(args) > 1 {
			scale = args[1]
		}
		cd.Type = "decimal(" + prec + "," + scale + ")"
	case "bit":
		n := "1"
		if len(args) > 0 {
			n = args[0]
		}
		cd.Type = "bit(" + n + ")"
	case "datetime", "timestamp", "time":
		if len(args) > 0 && args[0] != "0" {
			cd.Type = base + "(" + args[0] + ")"
		}
	}
	if cd.Unsigned {
		switch base {
		case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double":
			cd.Type += " unsigned"
		}
	}
	if explicitCS {
		cd.Type += csMarker
	}
	return cd, pk, nil
}

// parseColumnType builds a column from information_schema's COLUMN_TYPE
// ("int(10) unsigned", "enum('a','b')", "decimal(10,2)").
func parseColumnType(name, columnType string) (ColumnDef, error) {
	cd, _, err := columnFromTokens(name, tokenize(columnType, 0))
	cd.Type = strings.TrimSuffix(cd.Type, csMarker)
	return cd, err
}

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
		switch {
		case p.kw("ADD"):
			switch {
			case p.kw("PRIMARY", "KEY"):
				names, err := p.keyColumns()
				if err != nil {
					return "", err
				}
				def.PK = def.PK[:0]
				for _, n := range names {
					idx := def.index(n)
					if idx < 0 {
						return "", fmt.Errorf("ADD PRIMARY KEY: column %s not found", n)
					}
					def.PK = append(def.PK, idx)
				}
				p.skipToComma()
			case p.kw("CONSTRAINT"):
				if u := p.peek(); !u.id && u.up != "PRIMARY" && u.up != "UNIQUE" && u.up != "FOREIGN" && u.up != "CHECK" {
					p.i++
				}
				if p.kw("PRIMARY", "KEY") {
					names, err := p.keyColumns()
					if err != nil {
						return "", err
					}
					def.PK = def.PK[:0]
					for _, n := range names {
						idx := def.index(n)
						if idx < 0 {
							return "", fmt.Errorf("ADD PRIMARY KEY: column %s not found", n)
						}
						def.PK = append(def.PK, idx)
					}
				}
				p.skipToComma()
			case isIndexWord(p.peek()):
				p.skipToComma()
			default:
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
							return "", err
						}
						if def.index(cd.Name) >= 0 {
							return "", fmt.Errorf("ADD COLUMN %s: column exists", cd.Name)
						}
						cd.Type = strings.TrimSuffix(cd.Type, csMarker)
						def.Columns = append(def.Columns, cd)
						if pk {
							def.PK = []int{len(def.Columns) - 1}
						}
					}
					p.i++
					continue
				}
				name, ok := p.ident()
				if !ok {
					return "", fmt.Errorf("cannot read ADD COLUMN")
				}
				if def.index(name) >= 0 {
					return "", fmt.Errorf("ADD COLUMN %s: column exists (IF NOT EXISTS is not interpreted)", name)
				}
				cd, pk, where, err := p.columnWithPlace(name)
				if err != nil {
					return "", err
				}
				insertColumn(def, cd, where, -1)
				if pk {
					def.PK = []int{def.index(cd.Name)}
				}
			}
		case p.kw("DROP"):
			switch {
			case p.kw("PRIMARY", "KEY"):
				def.PK = nil
			case isIndexWord(p.peek()) || p.kw("CONSTRAINT") || p.kw("CHECK"):
				p.skipToComma()
			default:
				idx, err := p.existingColumn(def, "DROP")
				if err != nil {
					return "", err
				}
				removeColumn(def, idx)
				p.skipToComma()
			}
		case p.kw("CHANGE"):
			idx, err := p.existingColumn(def, "CHANGE")
			if err != nil {
				return "", err
			}
			name, ok := p.ident()
			if !ok {
				return "", fmt.Errorf("cannot read CHANGE COLUMN")
			}
			cd, _, where, err := p.columnWithPlace(name)
			if err != nil {
				return "", err
			}
			replaceColumn(def, idx, cd, where)
		case p.kw("MODIFY"):
			idx, err := p.existingColumn(def, "MODIFY")
			if err != nil {
				return "", err
			}
			cd, _, where, err := p.columnWithPlace(def.Columns[idx].Name)
			if err != nil {
				return "", err
			}
			replaceColumn(def, idx, cd, where)
		case p.kw("RENAME"):
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
				newKey = k
			}
		case p.kw("ALTER"):
			p.kw("COLUMN")
			if isIndexWord(p.peek()) {
				p.skipToComma()
				continue
			}
			// ALTER [COLUMN] c SET/DROP DEFAULT, SET VISIBLE...: no layout change.
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
	}
	return newKey, nil
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
