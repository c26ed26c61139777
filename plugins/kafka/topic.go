package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dbus-project/dbus/pack"
)

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

// validTopic reports why name is not a legal Kafka topic name, or nil.
func validTopic(name []byte) error {
	if len(name) == 0 {
		return errors.New("empty topic name")
	}
	if len(name) > maxTopicLen {
		return fmt.Errorf("topic name of %d bytes is longer than %d", len(name), maxTopicLen)
	}
	if string(name) == "." || string(name) == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has character %q (allowed: letters, digits, '.', '_', '-')", name, c)
		}
	}
	return nil
}

// topicTemplate renders a topic name from packet attributes: "{db}.{table}"
// replaces {db} with the text of attribute db. A template without braces is
// a fixed topic. Literal braces are not allowed (Kafka topic names cannot
// contain them anyway).
type topicTemplate struct {
	src   string
	parts []tmplPart
	fixed string // set when the template has no attribute reference
}

type tmplPart struct {
	lit  string
	attr string // "" for a literal part
}

// parseTopicTemplate validates and compiles a template.
func parseTopicTemplate(s string) (*topicTemplate, error) {
	t := &topicTemplate{src: s}
	if s == "" {
		return nil, errors.New("empty topic template")
	}
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if cl := strings.IndexByte(rest, '}'); cl >= 0 && (open < 0 || cl < open) {
			return nil, fmt.Errorf("topic template %q: '}' at byte %d has no matching '{'", s, len(s)-len(rest)+cl)
		}
		if open < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("topic template %q: '{' at byte %d is not closed", s, len(s)-len(rest)+open)
		}
		name := rest[open+1 : open+end]
		if name == "" {
			return nil, fmt.Errorf("topic template %q: empty attribute name {}", s)
		}
		if strings.ContainsAny(name, "{ \t") {
			return nil, fmt.Errorf("topic template %q: bad attribute name %q", s, name)
		}
		t.parts = append(t.parts, tmplPart{attr: name})
		rest = rest[open+end+1:]
	}
	// Literal parts must be legal topic characters.
	for _, p := range t.parts {
		if p.attr == "" {
			for _, c := range []byte(p.lit) {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
					return nil, fmt.Errorf("topic template %q: character %q is not allowed in a Kafka topic name", s, c)
				}
			}
		}
	}
	if len(t.parts) == 1 && t.parts[0].attr == "" {
		t.fixed = t.parts[0].lit
		if err := validTopic([]byte(t.fixed)); err != nil {
			return nil, fmt.Errorf("topic %q: %v", s, err)
		}
	}
	return t, nil
}

// errMissingAttr is wrapped with the attribute's name at the failure site.
var errMissingAttr = errors.New("packet has no attribute")

// render appends the topic of p to dst. It allocates only on error.
func (t *topicTemplate) render(dst []byte, p *pack.Packet) ([]byte, error) {
	for i := range t.parts {
		part := &t.parts[i]
		if part.attr == "" {
			dst = append(dst, part.lit...)
			continue
		}
		a, ok := p.Attrs.Get(part.attr)
		if !ok {
			return dst, fmt.Errorf("topic template %q: %w %q", t.src, errMissingAttr, part.attr)
		}
		dst = a.AppendText(dst)
	}
	return dst, nil
}

// internTable turns rendered topic names into strings without allocating
// for names seen before. It belongs to one goroutine.
type internTable struct {
	m   map[string]string
	max int
}

func newInternTable(max int) *internTable { return &internTable{m: make(map[string]string), max: max} }

// get returns b as a string, reusing a stored copy.
func (t *internTable) get(b []byte) string {
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t.m) < t.max {
		t.m[s] = s
	}
	return s
}
