package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is a plugin's role in the DAG.
type Kind uint8

// Plugin kinds.
const (
	KindInput Kind = iota + 1
	KindFilter
	KindOutput
)

func (k Kind) String() string {
	switch k {
	case KindInput:
		return "input"
	case KindFilter:
		return "filter"
	case KindOutput:
		return "output"
	}
	return "unknown"
}

// FieldType is the type of a config field.
type FieldType uint8

// Field types. TypeSize accepts an integer or a string with a unit
// ("64KiB", "1MB"); TypeDuration a Go duration ("500ms"); TypeAny keeps the
// raw YAML for the plugin to decode strictly with Conf.Decode.
const (
	TypeString FieldType = iota + 1
	TypeInt
	TypeFloat
	TypeBool
	TypeDuration
	TypeSize
	TypeStrings
	TypeAny
)

func (t FieldType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeBool:
		return "bool"
	case TypeDuration:
		return "duration"
	case TypeSize:
		return "size"
	case TypeStrings:
		return "[]string"
	case TypeAny:
		return "object"
	}
	return "unknown"
}

// Field describes one config key of a plugin.
type Field struct {
	Name string
	Type FieldType
	Doc  string
	// Default is used when the key is absent: a string, int64/int, float64,
	// bool, time.Duration, []string, or nil for none.
	Default  any
	Required bool
	// Enum lists the accepted values of a string field.
	Enum []string
	// Min and Max bound int, float, size and duration fields when
	// HasRange is set (durations in nanoseconds).
	Min, Max float64
	HasRange bool
	// Secret marks a credential (password, token, key): its value is
	// never shown (admin API, errors) and a literal one is refused where
	// it would be stored for others (ZooKeeper). Write it as ${env:NAME}
	// or ${file:PATH} (see secret.go).
	Secret bool
	// SecretKeys, on an object field (TypeAny), are the secret keys
	// inside it as dot paths ("email.password"; "*" matches any key,
	// lists are walked through).
	SecretKeys []string
	// Path marks a string or list field naming files or directories the
	// plugin opens (globs allowed); PathKeys, on an object field
	// (TypeAny), names such keys inside it as dot paths ("db"). Command
	// marks a string field holding a command the plugin runs. A config
	// posted to the admin API may use them only as the operator's config
	// file allows (admin.allowed_paths, admin.allow_commands).
	Path     bool
	PathKeys []string
	Command  bool
	// Writes, on a Path string field, says the plugin writes there: a
	// file (WritesFile: created or appended to) or a directory it creates
	// files in (WritesDir). dbusd -t checks that the user it runs as can
	// (CheckWritablePaths), so a path the service may not write fails the
	// check, not the run.
	Writes WriteKind
	// PerResource, on a field of a Distributed input, means that in
	// cluster mode every resource must set the field in its own config,
	// to a value no other resource of that input uses (MysqlbinlogInput's
	// server_id: two replicas with one server_id cut each other off).
	PerResource bool
}

// WriteKind says what a path field's plugin writes.
type WriteKind uint8

// Write kinds of Field.Writes.
const (
	WritesNothing WriteKind = iota
	WritesFile              // the path names a file the plugin creates or appends to
	WritesDir               // the path names a directory the plugin creates files in
)

// Spec registers a plugin class: its config fields and constructor.
// Exactly one of NewInput, NewFilter, NewOutput is set, matching Kind.
type Spec struct {
	Class   string
	Kind    Kind
	Summary string
	Fields  []Field
	// Distributed inputs accept cluster resources: the engine starts one
	// instance per owned resource, with the resource's config merged in.
	Distributed bool

	NewInput  func(c *Conf) (Input, error)
	NewFilter func(c *Conf) (Filter, error)
	NewOutput func(c *Conf) (Output, error)
}

// Field returns the field named name.
func (s *Spec) Field(name string) (*Field, bool) {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i], true
		}
	}
	return nil, false
}

// Registry maps class names to specs. It is a value: tests build their own
// with only what they need; Default is filled by plugins' init functions.
// Safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]*Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: make(map[string]*Spec)} }

// Default is the registry plugins register into from init.
var Default = NewRegistry()

// Register adds s, checking that it is well formed.
func (r *Registry) Register(s Spec) error {
	if s.Class == "" {
		return errors.New("register: empty class name")
	}
	n := 0
	if s.NewInput != nil {
		n++
		if s.Kind != KindInput {
			return fmt.Errorf("register %s: NewInput set on a %s", s.Class, s.Kind)
		}
	}
	if s.NewFilter != nil {
		n++
		if s.Kind != KindFilter {
			return fmt.Errorf("register %s: NewFilter set on a %s", s.Class, s.Kind)
		}
	}
	if s.NewOutput != nil {
		n++
		if s.Kind != KindOutput {
			return fmt.Errorf("register %s: NewOutput set on a %s", s.Class, s.Kind)
		}
	}
	if n != 1 {
		return fmt.Errorf("register %s: exactly one constructor must be set", s.Class)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if f.Name == "" || f.Type == 0 {
			return fmt.Errorf("register %s: field with empty name or type", s.Class)
		}
		if seen[f.Name] {
			return fmt.Errorf("register %s: field %q declared twice", s.Class, f.Name)
		}
		if reservedKeys[f.Name] {
			return fmt.Errorf("register %s: field %q is reserved by the engine", s.Class, f.Name)
		}
		seen[f.Name] = true
		if len(f.SecretKeys) > 0 && f.Type != TypeAny {
			return fmt.Errorf("register %s: field %q: SecretKeys on a %s field (only objects have keys; use Secret)", s.Class, f.Name, f.Type)
		}
		if f.Default != nil {
			if _, err := convertDefault(&f); err != nil {
				return fmt.Errorf("register %s: field %q: bad default: %v", s.Class, f.Name, err)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Class]; dup {
		return fmt.Errorf("register %s: class already registered", s.Class)
	}
	sc := s
	r.specs[s.Class] = &sc
	return nil
}

// MustRegister is Register that panics on error; for init functions.
func (r *Registry) MustRegister(s Spec) {
	if err := r.Register(s); err != nil {
		panic("BUG: " + err.Error())
	}
}

// Lookup returns the spec of class.
func (r *Registry) Lookup(class string) (*Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[class]
	return s, ok
}

// Specs returns every spec sorted by kind then class.
func (r *Registry) Specs() []*Spec {
	r.mu.RLock()
	out := make([]*Spec, 0, len(r.specs))
	for _, s := range r.specs {
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// Markdown renders the plugin reference from the specs: the engine block
// and the engine keys of every plugin first (enginekeys.go), then each
// class.
func (r *Registry) Markdown() string {
	var b strings.Builder
	engineKeysMarkdown(&b)
	for _, s := range r.Specs() {
		fmt.Fprintf(&b, "### %s (%s)\n\n%s\n\n", s.Class, s.Kind, s.Summary)
		if len(s.Fields) == 0 {
			b.WriteString("No fields.\n\n")
			continue
		}
		b.WriteString("| field | type | default | description |\n|---|---|---|---|\n")
		for _, f := range s.Fields {
			def := ""
			if f.Required {
				def = "required"
			} else if f.Default != nil {
				def = fmt.Sprintf("`%v`", f.Default)
			}
			doc := f.Doc
			if f.Secret {
				doc += " Secret: never shown; write it as `${env:NAME}` or `${file:PATH}`."
			} else if len(f.SecretKeys) > 0 {
				doc += " Secret keys inside (never shown; use `${env:NAME}` or `${file:PATH}`): " + strings.Join(f.SecretKeys, ", ") + "."
			}
			if len(f.Enum) > 0 {
				doc += " One of: " + strings.Join(f.Enum, ", ") + "."
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, def, strings.ReplaceAll(doc, "|", "\\|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func convertDefault(f *Field) (any, error) {
	switch f.Type {
	case TypeString:
		if v, ok := f.Default.(string); ok {
			return v, nil
		}
	case TypeInt, TypeSize:
		switch v := f.Default.(type) {
		case int:
			return int64(v), nil
		case int64:
			return v, nil
		}
	case TypeFloat:
		switch v := f.Default.(type) {
		case float64:
			return v, nil
		case int:
			return float64(v), nil
		}
	case TypeBool:
		if v, ok := f.Default.(bool); ok {
			return v, nil
		}
	case TypeDuration:
		if v, ok := f.Default.(time.Duration); ok {
			return v, nil
		}
	case TypeStrings:
		if v, ok := f.Default.([]string); ok {
			return v, nil
		}
	case TypeAny:
		return f.Default, nil
	}
	return nil, fmt.Errorf("default %v (%T) does not fit type %s", f.Default, f.Default, f.Type)
}
