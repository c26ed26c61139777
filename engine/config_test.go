package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/mock"
)

func mockRegistry() *engine.Registry {
	reg := engine.NewRegistry()
	mock.Register(reg)
	return reg
}

func TestEngineConfigErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown plugin key", `
inputs:
  - {name: gen, class: MockInput}
outputs:
  - name: out
    class: MockOutput
    match: gen
    latncy: 5ms
`, []string{"cfg.yaml:8:", `out (MockOutput): latncy: unknown key`, "latency"}},
		{"unknown class", `
inputs:
  - {name: gen, class: MockInputt}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"cfg.yaml:3:", `unknown class "MockInputt"`, "MockInput"}},
		{"wrong type", `
inputs:
  - {name: gen, class: MockInput, count: lots}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"cfg.yaml:3:", "count: want an integer", `"lots"`}},
		{"unknown top-level key", `
inptus: []
`, []string{"cfg.yaml:2:", `unknown top-level key "inptus"`}},
		{"non power of two ring", `
engine: {ring: 1000}
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"cfg.yaml:2:", "engine.ring: 1000 is not a power of two"}},
		{"absurd size", `
engine: {pool: 999999999999}
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"engine.pool", "out of range"}},
		{"dangling match", `
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: [gen, nothere]}
`, []string{"cfg.yaml:5:", `match "nothere" selects no input or filter`}},
		{"cycle", `
inputs:
  - {name: gen, class: MockInput}
filters:
  - {name: a, class: MockFilter, match: [gen, b]}
  - {name: b, class: MockFilter, match: a}
outputs:
  - {name: out, class: MockOutput, match: b}
`, []string{"cycle in match graph", "a -> b -> a"}},
		{"unreachable output", `
inputs:
  - {name: gen, class: MockInput}
filters:
  - {name: f, class: MockFilter, match: gen}
outputs:
  - {name: out, class: MockOutput, match: f}
  - {name: lonely, class: MockOutput}
`, []string{"cfg.yaml:8:", `output "lonely" is unreachable`}},
		{"input feeding nothing", `
inputs:
  - {name: gen, class: MockInput}
  - {name: idle, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"cfg.yaml:4:", `input "idle" feeds no output`}},
		{"duplicate names", `
inputs:
  - {name: gen, class: MockInput}
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{"cfg.yaml:4:", `duplicate plugin name "gen"`}},
		{"class of the wrong kind", `
inputs:
  - {name: gen, class: MockOutput}
outputs:
  - {name: out, class: MockOutput, match: gen}
`, []string{`class "MockOutput" is a output`}},
		{"bad enum", `
inputs:
  - {name: gen, class: MockInput}
filters:
  - {name: f, class: MockFilter, match: gen, mode: explode}
outputs:
  - {name: out, class: MockOutput, match: f}
`, []string{"cfg.yaml:5:", `mode: "explode" is not one of pass, modify`}},
		{"dead letter names nothing", `
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen, dead_letter: nope}
`, []string{"cfg.yaml:5:", `dead_letter "nope" names no output`}},
		{"invalid yaml", "inputs: [\n", []string{"invalid YAML"}},
	}
	reg := mockRegistry()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := engine.Parse("cfg.yaml", []byte(c.yaml), reg)
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEngineConfigListsEveryError(t *testing.T) {
	_, err := engine.Parse("cfg.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput, count: x, bogus: 1}
outputs:
  - {name: out, class: Nope, match: gen}
`), mockRegistry())
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"count: want an integer", "bogus: unknown key", `unknown class "Nope"`} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q lacks %q", err, w)
		}
	}
}

func TestEngineConfigDefaultsAndValues(t *testing.T) {
	cfg, err := engine.Parse("cfg.yaml", []byte(`
engine: {batch: 64, pool_bytes: 64MiB, checkpoint_interval: 250ms}
inputs:
  - {name: gen, class: MockInput, payload: 1KiB, pool: 512}
filters:
  - {name: f, class: MockFilter, match: "g*"}
outputs:
  - {name: out, class: MockOutput, match: f, latency: 2ms, in_flight: 3}
`), mockRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Engine.Batch != 64 || cfg.Engine.PoolBytes != 64<<20 || cfg.Engine.CheckpointInterval.Milliseconds() != 250 {
		t.Fatalf("engine block not applied: %+v", cfg.Engine)
	}
	gen := cfg.Plugins[0]
	if gen.Conf.Size("payload") != 1024 || gen.Conf.Int("count") != 0 || gen.Pool != 512 {
		t.Fatalf("input values: payload %d count %d pool %d", gen.Conf.Size("payload"), gen.Conf.Int("count"), gen.Pool)
	}
	out := cfg.Plugins[2]
	if out.Conf.Duration("latency").Milliseconds() != 2 || out.InFlight != 3 || out.Retries != 3 {
		t.Fatalf("output values: %+v", out)
	}
}

func TestEngineRegistryRejectsBadSpecs(t *testing.T) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	err := reg.Register(engine.Spec{Class: "MockInput", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate class: %v", err)
	}
	err = reg.Register(engine.Spec{Class: "X", Kind: engine.KindFilter,
		NewInput: func(*engine.Conf) (engine.Input, error) { return nil, nil }})
	if err == nil {
		t.Fatalf("constructor of the wrong kind accepted")
	}
	err = reg.Register(engine.Spec{Class: "Y", Kind: engine.KindOutput, Fields: []engine.Field{{Name: "match", Type: engine.TypeString}},
		NewOutput: func(*engine.Conf) (engine.Output, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("reserved field accepted: %v", err)
	}
	if md := reg.Markdown(); !strings.Contains(md, "### MockInput (input)") || !strings.Contains(md, "`payload`") {
		t.Fatalf("markdown reference lacks MockInput: %s", md)
	}
}

func TestEngineConstructorErrorIsLocated(t *testing.T) {
	reg := mockRegistry()
	cfg, err := engine.Parse("cfg.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput}
filters:
  - {name: f, class: MockFilter, match: gen, mode: emit, emit: 0}
outputs:
  - {name: out, class: MockOutput, match: f}
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.New(cfg, engine.Options{Registry: reg})
	if err == nil || !strings.Contains(err.Error(), "cfg.yaml:5:") || !strings.Contains(err.Error(), "emit >= 1") {
		t.Fatalf("constructor error not located: %v", err)
	}
}

func FuzzConfigParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("inputs: [{name: a, class: MockInput}]\noutputs: [{name: b, class: MockOutput, match: a}]"))
	reg := mockRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := engine.Parse("fuzz.yaml", data, reg)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

func TestEngineConfigEngineBlockAppliesWhereverItStands(t *testing.T) {
	cfg, err := engine.Parse("cfg.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
engine: {pool: 1024, batch: 64}
`), mockRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Plugins[0]; p.Pool != 1024 || p.Batch != 64 {
		t.Fatalf("input pool %d batch %d: the engine block after the plugins was ignored", p.Pool, p.Batch)
	}
}

// TestEngineConfigIntFieldWithoutRange: an int field with no declared range
// takes any int64 (the default bounds once overflowed to [MinInt64,
// MinInt64] and rejected every value).
func TestEngineConfigIntFieldWithoutRange(t *testing.T) {
	reg := engine.NewRegistry()
	mock.Register(reg)
	if err := reg.Register(engine.Spec{Class: "Counted", Kind: engine.KindOutput,
		Fields:    []engine.Field{{Name: "n", Type: engine.TypeInt}},
		NewOutput: func(*engine.Conf) (engine.Output, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0", "5", "-3", "9223372036854775807"} {
		cfg, err := engine.Parse("t.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: Counted, n: `+v+`, match: gen}
`), reg)
		if err != nil {
			t.Fatalf("n: %s: %v", v, err)
		}
		for _, pc := range cfg.Plugins {
			if pc.Name == "out" && pc.Conf.Int("n") == 0 && v != "0" {
				t.Fatalf("n: %s read as 0", v)
			}
		}
	}
}

// TestEngineConfigUndeclaredKeyFailsLoudly: a constructor that reads a key
// its spec does not declare (a typo), or reads a key as the wrong type,
// fails the build with an error naming the plugin and the key, instead of
// reading a silent zero.
func TestEngineConfigUndeclaredKeyFailsLoudly(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(c *engine.Conf)
		want string
	}{
		{"misspelt", func(c *engine.Conf) { c.Int("latncy") }, `reads config key "latncy", which its spec does not declare`},
		{"wrong type", func(c *engine.Conf) { c.String("n") }, `reads config key "n" (a int) as a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := engine.NewRegistry()
			mock.Register(reg)
			read := tc.read
			if err := reg.Register(engine.Spec{Class: "Typo", Kind: engine.KindOutput,
				Fields: []engine.Field{{Name: "n", Type: engine.TypeInt, Default: int64(1)}},
				NewOutput: func(c *engine.Conf) (engine.Output, error) {
					read(c)
					return nil, nil
				}}); err != nil {
				t.Fatal(err)
			}
			cfg, err := engine.Parse("t.yaml", []byte(`
inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: Typo, match: gen}
`), reg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = engine.New(cfg, engine.Options{Registry: reg})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "BUG") || !strings.Contains(err.Error(), "out (Typo)") {
				t.Fatalf("build error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
