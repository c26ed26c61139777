package mysqlbinlog

import (
	"strings"
)

// The DDL lexer and the parser primitives the statements share.

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
