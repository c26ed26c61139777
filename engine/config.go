package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a parsed and validated pipeline configuration.
type Config struct {
	File    string
	Engine  EngineConfig
	Plugins []*PluginConfig // inputs, then filters, then outputs, in file order
	// Sections holds the raw top-level blocks other subsystems own
	// (admin, cluster), decoded by them.
	Sections map[string]*yaml.Node
	Raw      []byte
}

// EngineConfig holds engine-wide settings (the "engine:" block).
type EngineConfig struct {
	Batch              int           // packets per hand-off batch
	Ring               int           // ring capacity (power of two)
	Pool               int           // default packets per input pool
	PoolBytes          int64         // default byte bound per input pool
	Window             int           // in-flight window per stream (power of two); 0: twice the input's pool
	MaxPacketBytes     int           // buffers larger than this are not kept pooled
	CheckpointDir      string        // "" keeps checkpoints in memory only
	CheckpointInterval time.Duration // how often acked positions are committed
	ShutdownTimeout    time.Duration // drain budget before a hard stop
	RestartBackoff     time.Duration // first delay before restarting a failed plugin
	HeldWarn           time.Duration // report outputs holding packets longer than this
	FuseOutputs        bool          // chain InlineOutput outputs into their upstream goroutine
}

// DefaultEngineConfig returns the defaults of the engine block.
func DefaultEngineConfig() EngineConfig {
	return EngineConfig{
		Batch:              256,
		Ring:               2048,
		Pool:               8192,
		PoolBytes:          256 << 20,
		Window:             0, // 0: twice the input's pool, rounded up to a power of two
		MaxPacketBytes:     1 << 20,
		CheckpointInterval: time.Second,
		ShutdownTimeout:    30 * time.Second,
		RestartBackoff:     100 * time.Millisecond,
		HeldWarn:           30 * time.Second,
		FuseOutputs:        true,
	}
}

// PluginConfig is one configured plugin instance.
type PluginConfig struct {
	Name  string
	Class string
	Kind  Kind
	Spec  *Spec
	Match []string
	Line  int
	Conf  *Conf

	// Inputs.
	Pool      int
	PoolBytes int64
	Window    int
	// Outputs.
	InFlight        int
	InFlightSet     bool // in_flight was given (else an InFlightDefaulter's value applies)
	Retries         int
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	DeadLetter      string
	// DeadLetterAfter, when set, sends packets whose retryable failure
	// lasted this long to the dead-letter output; 0 (the default) retries
	// them until they succeed or an operator acts.
	DeadLetterAfter time.Duration
	Batch           int
}

// ConfigError is one problem in a config file, located by file and line.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadFile reads and parses path with the registry's specs.
func LoadFile(path string, reg *Registry) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	return Parse(path, data, reg)
}

// Parse parses and validates a config. The returned error lists every
// problem found (errors.Join of *ConfigError), each with file and line.
func Parse(file string, data []byte, reg *Registry) (*Config, error) {
	return ParseWith(file, data, reg, ParseOptions{})
}

// ParseOptions change how Parse treats a config.
type ParseOptions struct {
	// KeepReferences leaves ${env:} and ${file:} references unresolved:
	// for checking a config on a host other than the one that will run it
	// (a cluster config push). Such a Config is not for building plugins.
	KeepReferences bool
	// Reference, when set, is asked before each ${env:} or ${file:}
	// reference (ref as written) is resolved; an error refuses it (a
	// config posted to the admin API may use only the references the
	// operator's config file uses).
	Reference func(ref string) error
}

// ParseWith is Parse with options.
func ParseWith(file string, data []byte, reg *Registry, opts ParseOptions) (*Config, error) {
	p := &parser{file: file, reg: reg, keepRefs: opts.KeepReferences, refCheck: opts.Reference}
	cfg := p.parse(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if err := compileCheck(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

type parser struct {
	file     string
	reg      *Registry
	errs     []error
	keepRefs bool               // ParseOptions.KeepReferences
	refCheck func(string) error // ParseOptions.Reference
}

func (p *parser) errf(line int, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) *Config {
	cfg := &Config{File: p.file, Engine: DefaultEngineConfig(), Sections: map[string]*yaml.Node{}, Raw: data}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		msg := err.Error()
		line := 0
		if i := strings.Index(msg, "line "); i >= 0 {
			fmt.Sscanf(msg[i+5:], "%d", &line)
		}
		p.errf(line, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return cfg
	}
	if len(doc.Content) == 0 {
		p.errf(0, "empty config")
		return cfg
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errf(root.Line, "top level must be a mapping with inputs, filters and outputs")
		return cfg
	}
	seen := map[string]bool{}
	// The engine block first: plugins take their defaults from it,
	// wherever it stands in the file.
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "engine" {
			p.engine(root.Content[i+1], &cfg.Engine)
			break
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			p.errf(k.Line, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "engine":
			// parsed above
		case "inputs":
			p.plugins(v, KindInput, cfg)
		case "filters":
			p.plugins(v, KindFilter, cfg)
		case "outputs":
			p.plugins(v, KindOutput, cfg)
		case "admin", "cluster", "log":
			cfg.Sections[k.Value] = v
		default:
			p.errf(k.Line, "unknown top-level key %q (want engine, inputs, filters, outputs, admin, cluster, log)", k.Value)
		}
	}
	// Order: inputs, filters, outputs.
	var ordered []*PluginConfig
	for _, kind := range []Kind{KindInput, KindFilter, KindOutput} {
		for _, pc := range cfg.Plugins {
			if pc.Kind == kind {
				ordered = append(ordered, pc)
			}
		}
	}
	cfg.Plugins = ordered
	if !seen["inputs"] && len(p.errs) == 0 {
		p.errf(root.Line, "no inputs: a pipeline needs at least one input")
	}
	if !seen["outputs"] && len(p.errs) == 0 {
		p.errf(root.Line, "no outputs: a pipeline needs at least one output")
	}
	for _, pc := range cfg.Plugins {
		if pc.DeadLetter != "" {
			found := false
			for _, o := range cfg.Plugins {
				if o.Name == pc.DeadLetter {
					found = true
					if o.Kind != KindOutput {
						p.errf(pc.Line, "%s: dead_letter %q is a %s, not an output", pc.Name, pc.DeadLetter, o.Kind)
					}
					if o.Name == pc.Name {
						p.errf(pc.Line, "%s: dead_letter names the output itself", pc.Name)
					}
				}
			}
			if !found {
				p.errf(pc.Line, "%s: dead_letter %q names no output", pc.Name, pc.DeadLetter)
			}
		}
	}
	return cfg
}

func (p *parser) engine(n *yaml.Node, ec *EngineConfig) {
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, "engine: must be a mapping")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var key *engineKey
		for j := range engineBlockKeys {
			if engineBlockKeys[j].Name == k.Value {
				key = &engineBlockKeys[j]
			}
		}
		if key == nil {
			p.errf(k.Line, "unknown key %q in engine (want %s)", k.Value, strings.Join(engineKeyNames(engineBlockKeys, 0), ", "))
			continue
		}
		if val, ok := p.engineKeyValue(key, v, "engine."+k.Value); ok {
			key.setEngine(ec, val)
		}
	}
	if ec.Pool < 2*ec.Batch && len(p.errs) == 0 {
		p.errf(n.Line, "engine.pool %d must be at least twice engine.batch %d", ec.Pool, ec.Batch)
	}
}

func (p *parser) plugins(n *yaml.Node, kind Kind, cfg *Config) {
	if n.Kind != yaml.SequenceNode {
		p.errf(n.Line, "%ss: must be a list of plugins", kind)
		return
	}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			p.errf(item.Line, "%ss: each entry must be a mapping with name and class", kind)
			continue
		}
		pc := p.plugin(item, kind, cfg)
		if pc == nil {
			continue
		}
		for _, other := range cfg.Plugins {
			if other.Name == pc.Name {
				p.errf(item.Line, "duplicate plugin name %q (first at line %d)", pc.Name, other.Line)
				pc = nil
				break
			}
		}
		if pc != nil {
			cfg.Plugins = append(cfg.Plugins, pc)
		}
	}
}

func (p *parser) plugin(n *yaml.Node, kind Kind, cfg *Config) *PluginConfig {
	pc := &PluginConfig{Kind: kind, Line: n.Line, Pool: cfg.Engine.Pool, PoolBytes: cfg.Engine.PoolBytes,
		Window: cfg.Engine.Window, InFlight: 1, Retries: 3, RetryBackoff: 350 * time.Millisecond, RetryBackoffMax: 5 * time.Second, Batch: cfg.Engine.Batch}
	fields := map[string]*yaml.Node{}
	keys := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := fields[k.Value]; dup {
			p.errf(k.Line, "duplicate key %q", k.Value)
			continue
		}
		fields[k.Value] = v
		keys[k.Value] = k
	}
	if v, ok := fields["name"]; ok {
		pc.Name = p.str(v, "name")
	}
	if v, ok := fields["class"]; ok {
		pc.Class = p.str(v, "class")
	}
	if pc.Name == "" {
		p.errf(n.Line, "%s without a name", kind)
		return nil
	}
	if strings.ContainsAny(pc.Name, "*?[]/ \t") {
		p.errf(n.Line, "plugin name %q: must not contain glob characters, '/' or spaces", pc.Name)
	}
	where := func(k string) string { return fmt.Sprintf("%s (%s): %s", pc.Name, pc.Class, k) }
	if pc.Class == "" {
		p.errf(n.Line, "%s %q has no class", kind, pc.Name)
		return nil
	}
	spec, ok := p.reg.Lookup(pc.Class)
	if !ok {
		p.errf(keys["class"].Line, "%s %q: unknown class %q%s", kind, pc.Name, pc.Class, p.suggest(pc.Class, kind))
		return nil
	}
	if spec.Kind != kind {
		p.errf(keys["class"].Line, "%s %q: class %q is a %s, listed under %ss", kind, pc.Name, pc.Class, spec.Kind, kind)
		return nil
	}
	pc.Spec = spec
	conf := &Conf{Name: pc.Name, Class: pc.Class, File: p.file, Line: n.Line, spec: spec, vals: map[string]any{}, nodes: map[string]*yaml.Node{}, lines: map[string]int{}}
	pc.Conf = conf
	for key, v := range fields {
		kl := keys[key].Line
		switch key {
		case "name", "class":
			continue
		case "match":
			if kind == KindInput {
				p.errf(kl, "%s: inputs take no match (they are sources)", where(key))
				continue
			}
			pc.Match = p.strs(v, where(key))
			continue
		case "disabled":
			continue
		}
		if ek := pluginEngineKey(key, kind); ek != nil && ek.setPlugin != nil {
			if val, ok := p.engineKeyValue(ek, v, where(key)); ok {
				ek.setPlugin(pc, val)
			}
			continue
		}
		f, ok := spec.Field(key)
		if !ok {
			p.errf(kl, "%s: unknown key%s", where(key), p.suggestField(spec, kind, key))
			continue
		}
		conf.lines[key] = kl
		p.value(v, f, where(key), conf)
	}
	for i := range spec.Fields {
		f := &spec.Fields[i]
		if _, set := conf.vals[f.Name]; set {
			continue
		}
		if _, set := conf.nodes[f.Name]; set {
			continue
		}
		if f.Required {
			p.errf(n.Line, "%s: required key missing: %s", where(f.Name), f.Doc)
			continue
		}
		if f.Default != nil {
			v, _ := convertDefault(f)
			conf.vals[f.Name] = v
		}
	}
	if kind == KindInput && pc.Pool < 2*pc.Batch {
		p.errf(n.Line, "%s: pool %d must be at least twice the batch %d", where("pool"), pc.Pool, pc.Batch)
	}
	return pc
}

func (p *parser) suggest(class string, kind Kind) string {
	var names []string
	for _, s := range p.reg.Specs() {
		if s.Kind == kind {
			names = append(names, s.Class)
		}
	}
	for _, n := range names {
		if strings.EqualFold(n, class) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return fmt.Sprintf(" (known %s classes: %s)", kind, strings.Join(names, ", "))
}

func (p *parser) suggestField(spec *Spec, kind Kind, key string) string {
	var names []string
	for _, f := range spec.Fields {
		names = append(names, f.Name)
	}
	eng := strings.Join(engineKeyNames(pluginEngineKeys, kind), ", ")
	if len(names) == 0 {
		return fmt.Sprintf(" (this class takes no keys of its own; engine keys of %ss: %s)", kind, eng)
	}
	return fmt.Sprintf(" (known keys: %s; engine keys of %ss: %s)", strings.Join(names, ", "), kind, eng)
}

func (p *parser) value(v *yaml.Node, f *Field, where string, c *Conf) {
	if f.Type == TypeString || f.Type == TypeStrings || f.Type == TypeAny {
		if !p.resolveNode(v, where) {
			return
		}
		c.collectSecrets(f, v)
	}
	switch f.Type {
	case TypeString:
		s := p.str(v, where)
		if len(f.Enum) > 0 {
			ok := false
			for _, e := range f.Enum {
				if e == s {
					ok = true
				}
			}
			if !ok {
				p.errf(v.Line, "%s: %q is not one of %s", where, s, strings.Join(f.Enum, ", "))
				return
			}
		}
		c.vals[f.Name] = s
	case TypeInt:
		// Bounds as integers: float64(math.MaxInt64) converts back to
		// int64 as MinInt64 on amd64, which rejected every value of an
		// int field without a range.
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if f.HasRange {
			lo, hi = int64(f.Min), int64(f.Max)
		}
		c.vals[f.Name] = p.intRange(v, where, lo, hi)
	case TypeFloat:
		x, err := strconv.ParseFloat(v.Value, 64)
		if v.Kind != yaml.ScalarNode || err != nil {
			p.errf(v.Line, "%s: want a number, got %q", where, v.Value)
			return
		}
		if f.HasRange && (x < f.Min || x > f.Max) {
			p.errf(v.Line, "%s: %v out of range [%v, %v]", where, x, f.Min, f.Max)
			return
		}
		c.vals[f.Name] = x
	case TypeBool:
		b, err := strconv.ParseBool(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil {
			p.errf(v.Line, "%s: want true or false, got %q", where, v.Value)
			return
		}
		c.vals[f.Name] = b
	case TypeDuration:
		lo, hi := time.Duration(0), time.Duration(math.MaxInt64)
		if f.HasRange {
			lo, hi = time.Duration(f.Min), time.Duration(f.Max)
		}
		c.vals[f.Name] = p.durRange(v, where, lo, hi)
	case TypeSize:
		lo, hi := int64(0), int64(math.MaxInt64)
		if f.HasRange {
			lo, hi = int64(f.Min), int64(f.Max)
		}
		c.vals[f.Name] = p.sizeRange(v, where, lo, hi)
	case TypeStrings:
		c.vals[f.Name] = p.strs(v, where)
	case TypeAny:
		c.nodes[f.Name] = v
	}
}

func (p *parser) str(v *yaml.Node, where string) string {
	if v.Kind != yaml.ScalarNode {
		p.errf(v.Line, "%s: want a string", where)
		return ""
	}
	return v.Value
}

func (p *parser) strs(v *yaml.Node, where string) []string {
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}
	}
	if v.Kind != yaml.SequenceNode {
		p.errf(v.Line, "%s: want a string or a list of strings", where)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			p.errf(e.Line, "%s: list entries must be strings", where)
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (p *parser) intRange(v *yaml.Node, where string, lo, hi int64) int64 {
	x, err := strconv.ParseInt(v.Value, 0, 64)
	if v.Kind != yaml.ScalarNode || err != nil {
		p.errf(v.Line, "%s: want an integer, got %q", where, v.Value)
		return lo
	}
	if x < lo || x > hi {
		p.errf(v.Line, "%s: %d out of range [%d, %d]", where, x, lo, hi)
		return lo
	}
	return x
}

func (p *parser) sizeRange(v *yaml.Node, where string, lo, hi int64) int64 {
	x, err := ParseSize(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil {
		p.errf(v.Line, "%s: want a size like 1048576, 64KiB or 1MB, got %q", where, v.Value)
		return lo
	}
	if x < lo || x > hi {
		p.errf(v.Line, "%s: %d out of range [%d, %d]", where, x, lo, hi)
		return lo
	}
	return x
}

func (p *parser) durRange(v *yaml.Node, where string, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil {
		p.errf(v.Line, "%s: want a duration like 500ms or 2s, got %q", where, v.Value)
		return lo
	}
	if d < lo || d > hi {
		p.errf(v.Line, "%s: %s out of range [%s, %s]", where, d, lo, hi)
		return lo
	}
	return d
}

// ParseSize parses "1048576", "64KiB", "64KB", "1M", "2GiB".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
	case "k", "kb":
		mult = 1000
	case "kib":
		mult = 1 << 10
	case "m", "mb":
		mult = 1000 * 1000
	case "mib":
		mult = 1 << 20
	case "g", "gb":
		mult = 1000 * 1000 * 1000
	case "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("size %q: unknown unit", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return n * mult, nil
}

// Conf holds one plugin's validated config values, as declared by its
// spec (defaults filled in). Constructors read it; it is read-only.
type Conf struct {
	Name  string
	Class string
	File  string
	Line  int
	vals  map[string]any
	nodes map[string]*yaml.Node
	lines map[string]int
	// spec declares the keys the accessors may read.
	spec *Spec
	// offline is set when the engine is built with Options.Offline.
	offline bool
	// secrets are the values of secret fields, kept out of errors.
	secrets []string
}

// Offline reports that the plugin is being built without its environment
// (dbusd -t -offline, sample validation): constructors then check the
// config itself but skip probes of the network and of deployment files
// (seed brokers, database files).
func (c *Conf) Offline() bool { return c.offline }

// Has reports whether key was set in the file or has a default.
func (c *Conf) Has(key string) bool {
	c.field(key)
	_, a := c.vals[key]
	_, b := c.nodes[key]
	return a || b
}

// field returns the spec's declaration of key. Reading a key the spec does
// not declare, or as another type, is a bug in the plugin (a misspelt key
// would otherwise read as a silent zero): it panics with BUG:, which the
// engine's constructor call turns into an error naming the plugin, so
// every test and `dbusd -t` that builds the plugin finds it.
func (c *Conf) field(key string, types ...FieldType) *Field {
	if c.spec == nil {
		return nil
	}
	f, ok := c.spec.Field(key)
	if !ok {
		panic(fmt.Sprintf("BUG: %s (%s) reads config key %q, which its spec does not declare", c.Name, c.Class, key))
	}
	if len(types) > 0 {
		for _, t := range types {
			if f.Type == t {
				return f
			}
		}
		panic(fmt.Sprintf("BUG: %s (%s) reads config key %q (a %s) as a %s", c.Name, c.Class, key, f.Type, types[0]))
	}
	return f
}

// String returns a string field.
func (c *Conf) String(key string) string {
	c.field(key, TypeString)
	s, _ := c.vals[key].(string)
	return s
}

// Int returns an int field.
func (c *Conf) Int(key string) int64 {
	c.field(key, TypeInt, TypeSize)
	n, _ := c.vals[key].(int64)
	return n
}

// Float returns a float field.
func (c *Conf) Float(key string) float64 {
	c.field(key, TypeFloat)
	f, _ := c.vals[key].(float64)
	return f
}

// Bool returns a bool field.
func (c *Conf) Bool(key string) bool {
	c.field(key, TypeBool)
	b, _ := c.vals[key].(bool)
	return b
}

// Duration returns a duration field.
func (c *Conf) Duration(key string) time.Duration {
	c.field(key, TypeDuration)
	d, _ := c.vals[key].(time.Duration)
	return d
}

// Size returns a size field in bytes.
func (c *Conf) Size(key string) int64 {
	c.field(key, TypeSize, TypeInt)
	n, _ := c.vals[key].(int64)
	return n
}

// Strings returns a list field.
func (c *Conf) Strings(key string) []string {
	c.field(key, TypeStrings)
	s, _ := c.vals[key].([]string)
	return s
}

// Decode decodes an object field into dst strictly: unknown keys are
// errors that name the file and line.
func (c *Conf) Decode(key string, dst any) error {
	c.field(key)
	n, ok := c.nodes[key]
	if !ok {
		if v, ok := c.vals[key]; ok {
			raw, err := yaml.Marshal(v)
			if err != nil {
				return err
			}
			return c.decodeBytes(key, raw, 0, dst)
		}
		return nil
	}
	raw, err := yaml.Marshal(n)
	if err != nil {
		return c.Errorf(key, "%v", err)
	}
	return c.decodeBytes(key, raw, n.Line, dst)
}

func (c *Conf) decodeBytes(key string, raw []byte, line int, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		// Lines in msg are relative to the block; make them absolute.
		if line > 0 {
			msg = relLines(msg, line-1)
		}
		return &ConfigError{File: c.File, Line: line, Msg: c.Redact(fmt.Sprintf("%s (%s): %s: %s", c.Name, c.Class, key, msg))}
	}
	return nil
}

func relLines(msg string, base int) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, "line ")
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i+5])
		msg = msg[i+5:]
		j := 0
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(msg[:j]); err == nil {
			b.WriteString(strconv.Itoa(n + base))
		} else {
			b.WriteString(msg[:j])
		}
		msg = msg[j:]
	}
}

// Errorf returns a config error located at key's line.
func (c *Conf) Errorf(key string, format string, args ...any) error {
	line := c.lines[key]
	if n, ok := c.nodes[key]; ok {
		line = n.Line
	}
	if line == 0 {
		line = c.Line
	}
	return &ConfigError{File: c.File, Line: line, Msg: c.Redact(fmt.Sprintf("%s (%s): %s: %s", c.Name, c.Class, key, fmt.Sprintf(format, args...)))}
}
