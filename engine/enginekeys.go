package engine

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The engine's own config keys, described like plugin options: the
// "engine:" block, and the keys every plugin entry may carry besides its
// class's fields (pool, retries, dead_letter...). The parser validates
// them from these tables (type, range, power of two; unknown keys named
// with file:line) and Markdown renders them into the plugin reference.

// engineKey is one engine-owned key.
type engineKey struct {
	Field
	// kinds are the plugin kinds that take a per-plugin key (all when
	// empty); unused in the engine block.
	kinds []Kind
	// pow2: the value must be a power of two.
	pow2 bool
	// def is the default column of the reference when the default is not
	// a constant (Field.Default): "engine.pool".
	def string
	// setEngine stores an engine-block value; setPlugin a plugin value.
	setEngine func(ec *EngineConfig, v any)
	setPlugin func(pc *PluginConfig, v any)
}

func rng(f Field, lo, hi float64) Field {
	f.HasRange, f.Min, f.Max = true, lo, hi
	return f
}

func asInt(v any) int                            { n, _ := v.(int64); return int(n) }
func asDur(v any) time.Duration                  { d, _ := v.(time.Duration); return d }
func asStr(v any) string                         { s, _ := v.(string); return s }
func asI64(v any) int64                          { n, _ := v.(int64); return n }
func asBool(v any) bool                          { b, _ := v.(bool); return b }
func asStrs(v any) []string                      { s, _ := v.([]string); return s }
func durRng(f Field, lo, hi time.Duration) Field { return rng(f, float64(lo), float64(hi)) }

// engineBlockKeys are the keys of the "engine:" block, in reference order.
// Defaults are DefaultEngineConfig's.
var engineBlockKeys = []engineKey{
	{Field: rng(Field{Name: "batch", Type: TypeInt, Default: 256, Doc: "Packets per hand-off batch between goroutines."}, 1, 1<<16),
		setEngine: func(ec *EngineConfig, v any) { ec.Batch = asInt(v) }},
	{Field: rng(Field{Name: "ring", Type: TypeInt, Default: 2048, Doc: "Capacity of the ring in front of each output and unfused filter."}, 2, 1<<24), pow2: true,
		setEngine: func(ec *EngineConfig, v any) { ec.Ring = asInt(v) }},
	{Field: rng(Field{Name: "pool", Type: TypeInt, Default: 8192, Doc: "Default packets per input pool; at least twice batch."}, 1, 1<<22),
		setEngine: func(ec *EngineConfig, v any) { ec.Pool = asInt(v) }},
	{Field: rng(Field{Name: "pool_bytes", Type: TypeSize, Default: 256 << 20, Doc: "Default bound on the payload bytes an input pool keeps and has in flight (0: no bound)."}, 0, 1<<40), def: "256MiB",
		setEngine: func(ec *EngineConfig, v any) { ec.PoolBytes = asI64(v) }},
	{Field: rng(Field{Name: "window", Type: TypeInt, Doc: "In-flight window per stream."}, 2, 1<<24), pow2: true, def: "twice the input's pool",
		setEngine: func(ec *EngineConfig, v any) { ec.Window = asInt(v) }},
	{Field: rng(Field{Name: "max_packet_bytes", Type: TypeSize, Default: 1 << 20, Doc: "Packet buffers grown larger than this are not kept pooled."}, 64, 1<<30), def: "1MiB",
		setEngine: func(ec *EngineConfig, v any) { ec.MaxPacketBytes = int(asI64(v)) }},
	{Field: Field{Name: "checkpoint_dir", Type: TypeString, Path: true, Writes: WritesDir, Doc: "Directory of checkpoints.json; empty keeps checkpoints in memory only (a restart reads from the start)."},
		setEngine: func(ec *EngineConfig, v any) { ec.CheckpointDir = asStr(v) }},
	{Field: durRng(Field{Name: "checkpoint_interval", Type: TypeDuration, Default: time.Second, Doc: "How often acked positions are committed."}, time.Millisecond, 24*time.Hour),
		setEngine: func(ec *EngineConfig, v any) { ec.CheckpointInterval = asDur(v) }},
	{Field: durRng(Field{Name: "shutdown_timeout", Type: TypeDuration, Default: 30 * time.Second, Doc: "Drain budget at stop or reload before a hard stop (what is not acked is read again)."}, time.Millisecond, 24*time.Hour),
		setEngine: func(ec *EngineConfig, v any) { ec.ShutdownTimeout = asDur(v) }},
	{Field: durRng(Field{Name: "restart_backoff", Type: TypeDuration, Default: 100 * time.Millisecond, Doc: "First delay before a failed or panicking plugin is restarted (doubles)."}, time.Millisecond, time.Hour),
		setEngine: func(ec *EngineConfig, v any) { ec.RestartBackoff = asDur(v) }},
	{Field: durRng(Field{Name: "held_warn", Type: TypeDuration, Default: 30 * time.Second, Doc: "Report outputs that hold a batch longer than this."}, time.Millisecond, 24*time.Hour),
		setEngine: func(ec *EngineConfig, v any) { ec.HeldWarn = asDur(v) }},
	{Field: Field{Name: "fuse_outputs", Type: TypeBool, Default: true, Doc: "Run cheap synchronous outputs (InlineOutput) in their single upstream's goroutine."},
		setEngine: func(ec *EngineConfig, v any) { ec.FuseOutputs = asBool(v) }},
}

// pluginEngineKeys are the keys every plugin entry may carry besides its
// class's fields, in reference order. name, class, match and disabled are
// read by the parser itself (set nil).
var pluginEngineKeys = []engineKey{
	{Field: Field{Name: "name", Type: TypeString, Required: true, Doc: "Unique name of this plugin instance (no glob characters, '/' or spaces)."}},
	{Field: Field{Name: "class", Type: TypeString, Required: true, Doc: "Plugin class (a heading below)."}},
	{Field: Field{Name: "match", Type: TypeStrings, Doc: "Names (or globs) of the upstream plugins whose packets this one receives."}, kinds: []Kind{KindFilter, KindOutput}},
	{Field: Field{Name: "disabled", Type: TypeBool, Default: false, Doc: "Leave the entry out of the pipeline."}},
	{Field: rng(Field{Name: "pool", Type: TypeInt, Doc: "Packets in this input's pool (back pressure bound); at least twice batch."}, 1, 1<<22), kinds: []Kind{KindInput}, def: "engine.pool",
		setPlugin: func(pc *PluginConfig, v any) { pc.Pool = asInt(v) }},
	{Field: rng(Field{Name: "pool_bytes", Type: TypeSize, Doc: "Bound on the payload bytes this input's pool keeps and has in flight."}, 0, 1<<40), kinds: []Kind{KindInput}, def: "engine.pool_bytes",
		setPlugin: func(pc *PluginConfig, v any) { pc.PoolBytes = asI64(v) }},
	{Field: rng(Field{Name: "window", Type: TypeInt, Doc: "In-flight window per stream of this input."}, 2, 1<<24), kinds: []Kind{KindInput}, pow2: true, def: "engine.window",
		setPlugin: func(pc *PluginConfig, v any) { pc.Window = asInt(v) }},
	{Field: Field{Name: "dead_letter", Type: TypeString, Doc: "Output that receives packets this plugin failed for good (with the error in attrs); without it such packets are held."}, kinds: []Kind{KindFilter, KindOutput},
		setPlugin: func(pc *PluginConfig, v any) { pc.DeadLetter = asStr(v) }},
	{Field: rng(Field{Name: "in_flight", Type: TypeInt, Default: 1, Doc: "Batches written concurrently (async outputs); some classes raise the default."}, 1, 1024), kinds: []Kind{KindOutput},
		setPlugin: func(pc *PluginConfig, v any) { pc.InFlight, pc.InFlightSet = asInt(v), true }},
	{Field: rng(Field{Name: "retries", Type: TypeInt, Default: 3, Doc: "Retries of a failed write before its packets count as failed."}, 0, 1<<20), kinds: []Kind{KindOutput},
		setPlugin: func(pc *PluginConfig, v any) { pc.Retries = asInt(v) }},
	{Field: durRng(Field{Name: "retry_backoff", Type: TypeDuration, Default: 350 * time.Millisecond, Doc: "First delay between retries; doubles up to retry_backoff_max."}, time.Millisecond, time.Hour), kinds: []Kind{KindOutput},
		setPlugin: func(pc *PluginConfig, v any) { pc.RetryBackoff = asDur(v) }},
	{Field: durRng(Field{Name: "retry_backoff_max", Type: TypeDuration, Default: 5 * time.Second, Doc: "Longest delay between retries."}, time.Millisecond, time.Hour), kinds: []Kind{KindOutput},
		setPlugin: func(pc *PluginConfig, v any) { pc.RetryBackoffMax = asDur(v) }},
	{Field: durRng(Field{Name: "dead_letter_after", Type: TypeDuration, Doc: "Also dead-letter packets whose retryable failure lasted this long (permanent errors go at once)."}, time.Millisecond, 365*24*time.Hour), kinds: []Kind{KindOutput}, def: "never",
		setPlugin: func(pc *PluginConfig, v any) { pc.DeadLetterAfter = asDur(v) }},
	{Field: rng(Field{Name: "batch", Type: TypeInt, Doc: "Packets per write."}, 1, 1<<16), kinds: []Kind{KindOutput}, def: "engine.batch",
		setPlugin: func(pc *PluginConfig, v any) { pc.Batch = asInt(v) }},
}

// reservedKeys are per-plugin keys the engine owns: no class may declare
// them.
var reservedKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range pluginEngineKeys {
		m[k.Name] = true
	}
	return m
}()

// pluginEngineKey returns the engine key named name that a plugin of kind
// takes, or nil.
func pluginEngineKey(name string, kind Kind) *engineKey {
	for i := range pluginEngineKeys {
		k := &pluginEngineKeys[i]
		if k.Name == name && k.takes(kind) {
			return k
		}
	}
	return nil
}

func (k *engineKey) takes(kind Kind) bool {
	if len(k.kinds) == 0 {
		return true
	}
	for _, x := range k.kinds {
		if x == kind {
			return true
		}
	}
	return false
}

func engineKeyNames(keys []engineKey, kind Kind) []string {
	var out []string
	for i := range keys {
		if kind == 0 || keys[i].takes(kind) {
			out = append(out, keys[i].Name)
		}
	}
	return out
}

// engineKeyValue validates v against k (type, range, power of two) and
// returns the value; ok is false after an error was recorded.
func (p *parser) engineKeyValue(k *engineKey, v *yaml.Node, where string) (any, bool) {
	before := len(p.errs)
	c := &Conf{vals: map[string]any{}, nodes: map[string]*yaml.Node{}, lines: map[string]int{}}
	p.value(v, &k.Field, where, c)
	if len(p.errs) > before {
		return nil, false
	}
	val := c.vals[k.Name]
	if k.pow2 {
		if x := asI64(val); x&(x-1) != 0 {
			p.errf(v.Line, "%s: %d is not a power of two", where, x)
			return nil, false
		}
	}
	return val, true
}

// engineKeysMarkdown renders the engine block and the per-plugin engine
// keys for the plugin reference.
func engineKeysMarkdown(b *strings.Builder) {
	row := func(k *engineKey, extra string) {
		def := k.def
		if k.Required {
			def = "required"
		} else if def == "" && k.Default != nil {
			def = fmt.Sprintf("`%v`", k.Default)
		} else if def != "" && !strings.Contains(def, " ") {
			def = "`" + def + "`"
		}
		doc := k.Doc
		if k.HasRange {
			doc += " Range " + rangeText(&k.Field) + "."
		}
		if k.pow2 {
			doc += " A power of two."
		}
		if extra != "" {
			doc += " " + extra
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", k.Name, k.Type, def, strings.ReplaceAll(doc, "|", "\\|"))
	}
	b.WriteString("### engine (block)\n\nThe `engine:` block: settings of the whole pipeline; plugins take their defaults from it.\n\n")
	b.WriteString("| field | type | default | description |\n|---|---|---|---|\n")
	for i := range engineBlockKeys {
		row(&engineBlockKeys[i], "")
	}
	b.WriteString("\n### Engine keys of every plugin\n\nKeys any plugin entry may carry besides its class's fields, read by the engine.\n\n")
	b.WriteString("| field | type | default | description |\n|---|---|---|---|\n")
	for i := range pluginEngineKeys {
		k := &pluginEngineKeys[i]
		extra := ""
		if len(k.kinds) > 0 {
			var ks []string
			for _, x := range k.kinds {
				ks = append(ks, x.String()+"s")
			}
			extra = "(" + strings.Join(ks, " and ") + ")"
		}
		row(k, extra)
	}
	b.WriteString("\n")
}

func rangeText(f *Field) string {
	switch f.Type {
	case TypeDuration:
		return fmt.Sprintf("%s..%s", time.Duration(f.Min), time.Duration(f.Max))
	case TypeSize:
		return fmt.Sprintf("%s..%s", sizeText(int64(f.Min)), sizeText(int64(f.Max)))
	}
	return fmt.Sprintf("%d..%d", int64(f.Min), int64(f.Max))
}

func sizeText(n int64) string {
	for _, u := range []struct {
		s string
		n int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.s)
		}
	}
	return fmt.Sprint(n)
}
