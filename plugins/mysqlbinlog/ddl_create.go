package mysqlbinlog

import (
	"fmt"
	"strings"
)

// CREATE TABLE bodies and column definitions (also used for
// information_schema COLUMN_TYPE strings).

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
	base, i := typeWords(toks)
	args, i := typeArgs(toks, i)
	base = canonicalType(base, &cd)
	pk, explicitCS := columnAttributes(toks, i, &cd)
	if err := finishColumnType(&cd, base, args, explicitCS); err != nil {
		return cd, pk, err
	}
	return cd, pk, nil
}

// typeWords reads a possibly multi-word type name ("double precision",
// "long varbinary", "national char", "character varying") and returns the
// base type and the index of the next token.
func typeWords(toks []token) (string, int) {
	base := strings.ToLower(toks[0].s)
	i := 1
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
	return base, i
}

// typeArgs reads a type's "(args)" at toks[i], if any, returning the
// arguments and the index after them.
func typeArgs(toks []token, i int) ([]string, int) {
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
	return args, i
}

// canonicalType maps a type alias to the name the server reports.
func canonicalType(base string, cd *ColumnDef) string {
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
	return base
}

// columnAttributes reads the attributes after a column's type from
// toks[i:] (UNSIGNED, CHARACTER SET, PRIMARY KEY...), skipping the operands
// of the ones that do not change the layout. It reports a PRIMARY KEY and
// an explicit character set.
func columnAttributes(toks []token, i int, cd *ColumnDef) (pk, explicitCS bool) {
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
	return pk, explicitCS
}

// finishColumnType checks that base is a type the decoder interprets and
// sets cd.Type the way the schema history stores it.
func finishColumnType(cd *ColumnDef, base string, args []string, explicitCS bool) error {
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
		return fmt.Errorf("column %s: type %q is not interpreted", cd.Name, base)
	}
	switch base {
	case "inet6", "inet4", "uuid":
		return fmt.Errorf("column %s: MariaDB type %s is not interpreted", cd.Name, base)
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
	return nil
}

// parseColumnType builds a column from information_schema's COLUMN_TYPE
// ("int(10) unsigned", "enum('a','b')", "decimal(10,2)").
func parseColumnType(name, columnType string) (ColumnDef, error) {
	cd, _, err := columnFromTokens(name, tokenize(columnType, 0))
	cd.Type = strings.TrimSuffix(cd.Type, csMarker)
	return cd, err
}
