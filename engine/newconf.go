package engine

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// NewConf builds a Conf from Go values for tests and programmatic use,
// validating them against the class's spec as the YAML loader would
// (types, ranges, enums, required keys, defaults, ${env:}/${file:}
// references, secrets kept out of errors). Values are converted directly,
// without writing and re-parsing YAML: a string, an integer of any width,
// float64, bool, time.Duration (or a duration string), a size as an
// integer or a string with a unit, []string (or one string); an object
// field takes any value Conf.Decode can decode. Engine keys (retries,
// pool...) are checked against their spec and otherwise ignored: they
// belong to the engine, not to the plugin's Conf.
func NewConf(reg *Registry, name, class string, vals map[string]any) (*Conf, error) {
	spec, ok := reg.Lookup(class)
	if !ok {
		return nil, fmt.Errorf("unknown class %q", class)
	}
	c := &Conf{Name: name, Class: class, File: "<" + name + ">", spec: spec,
		vals: map[string]any{}, nodes: map[string]*yaml.Node{}, lines: map[string]int{}}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	// Secrets first, so that no error below quotes one.
	for _, k := range keys {
		if f, ok := spec.Field(k); ok && f.Secret {
			if s, ok := vals[k].(string); ok && s != "" && !IsReference(s) {
				c.secrets = append(c.secrets, s)
			}
		}
	}
	fail := func(key string, err error) {
		errs = append(errs, &ConfigError{File: c.File, Msg: c.Redact(fmt.Sprintf("%s (%s): %s: %v", name, class, key, err))})
	}
	for _, k := range keys {
		v := vals[k]
		switch k {
		case "name", "class", "match", "disabled":
			continue
		}
		if ek := pluginEngineKey(k, spec.Kind); ek != nil {
			x, err := goValue(&ek.Field, v)
			if err == nil && ek.pow2 && asI64(x)&(asI64(x)-1) != 0 {
				err = fmt.Errorf("%d is not a power of two", asI64(x))
			}
			if err != nil {
				fail(k, err)
			}
			continue
		}
		f, ok := spec.Field(k)
		if !ok {
			fail(k, errors.New("unknown key"+(&parser{}).suggestField(spec, spec.Kind, k)))
			continue
		}
		if f.Type == TypeAny {
			n := new(yaml.Node)
			if err := n.Encode(v); err != nil {
				fail(k, err)
				continue
			}
			p := &parser{file: c.File}
			if !p.resolveNode(n, k) {
				for _, e := range p.errs {
					fail(k, e)
				}
				continue
			}
			c.collectSecrets(f, n)
			c.nodes[k] = n
			continue
		}
		x, err := goValue(f, v)
		if err != nil {
			fail(k, err)
			continue
		}
		c.vals[k] = x
	}
	for i := range spec.Fields {
		f := &spec.Fields[i]
		if _, set := c.vals[f.Name]; set {
			continue
		}
		if _, set := c.nodes[f.Name]; set {
			continue
		}
		if f.Required {
			fail(f.Name, errors.New("required key missing: "+f.Doc))
			continue
		}
		if f.Default != nil {
			v, _ := convertDefault(f)
			c.vals[f.Name] = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// goValue converts a Go value to field f's type and checks it (enum,
// range); strings have their ${env:}/${file:} references resolved.
func goValue(f *Field, v any) (any, error) {
	str := func() (string, bool, error) {
		s, ok := v.(string)
		if !ok {
			return "", false, nil
		}
		r, err := resolveRefs(s)
		return r, true, err
	}
	switch f.Type {
	case TypeString:
		s, ok, err := str()
		if err != nil {
			return nil, err
		}
		if !ok {
			switch v.(type) {
			case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, bool:
				s = fmt.Sprint(v) // a YAML scalar reads as this string
			default:
				return nil, fmt.Errorf("want a string, got %T", v)
			}
		}
		if len(f.Enum) > 0 {
			for _, e := range f.Enum {
				if e == s {
					return s, nil
				}
			}
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(f.Enum, ", "))
		}
		return s, nil
	case TypeStrings:
		switch x := v.(type) {
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				r, err := resolveRefs(s)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		case string:
			r, err := resolveRefs(x)
			return []string{r}, err
		case []any:
			out := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("list entries must be strings, got %T", e)
				}
				r, err := resolveRefs(s)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		}
		return nil, fmt.Errorf("want a string or a list of strings, got %T", v)
	case TypeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("want true or false, got %v (%T)", v, v)
	case TypeFloat:
		var x float64
		switch n := v.(type) {
		case float64:
			x = n
		case float32:
			x = float64(n)
		case string:
			var err error
			if x, err = strconv.ParseFloat(n, 64); err != nil {
				return nil, fmt.Errorf("want a number, got %q", n)
			}
		default:
			i, ok := goInt(v)
			if !ok {
				return nil, fmt.Errorf("want a number, got %T", v)
			}
			x = float64(i)
		}
		if f.HasRange && (x < f.Min || x > f.Max) {
			return nil, fmt.Errorf("%v out of range [%v, %v]", x, f.Min, f.Max)
		}
		return x, nil
	case TypeInt, TypeSize:
		n, ok := goInt(v)
		if s, isStr := v.(string); isStr && f.Type == TypeInt {
			if x, err := strconv.ParseInt(s, 0, 64); err == nil {
				n, ok = x, true
			}
		}
		if !ok && f.Type == TypeSize {
			if s, isStr := v.(string); isStr {
				x, err := ParseSize(s)
				if err != nil {
					return nil, fmt.Errorf("want a size like 1048576, 64KiB or 1MB: %v", err)
				}
				n, ok = x, true
			}
		}
		if !ok {
			return nil, fmt.Errorf("want an integer, got %v (%T)", v, v)
		}
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if f.Type == TypeSize {
			lo = 0
		}
		if f.HasRange {
			lo, hi = int64(f.Min), int64(f.Max)
		}
		if n < lo || n > hi {
			return nil, fmt.Errorf("%d out of range [%d, %d]", n, lo, hi)
		}
		return n, nil
	case TypeDuration:
		var d time.Duration
		switch x := v.(type) {
		case time.Duration:
			d = x
		case string:
			var err error
			if d, err = time.ParseDuration(x); err != nil {
				return nil, fmt.Errorf("want a duration like 500ms or 2s, got %q", x)
			}
		default:
			return nil, fmt.Errorf("want a duration, got %T", v)
		}
		lo, hi := time.Duration(0), time.Duration(math.MaxInt64)
		if f.HasRange {
			lo, hi = time.Duration(f.Min), time.Duration(f.Max)
		}
		if d < lo || d > hi {
			return nil, fmt.Errorf("%s out of range [%s, %s]", d, lo, hi)
		}
		return d, nil
	}
	return nil, fmt.Errorf("field type %s cannot be set from %T", f.Type, v)
}

// goInt returns v as an int64 when it is a Go integer (or a float64 with
// no fraction, as JSON decoding gives).
func goInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), n <= math.MaxInt64
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<63 {
			return int64(n), true
		}
	}
	return 0, false
}
