package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
)

// TestEngineKeysValidatedBySpec: the engine block and the per-plugin
// engine keys are checked from their spec (type, range, power of two,
// kind), every problem named with file:line and the keys that exist.
func TestEngineKeysValidatedBySpec(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown engine key", `
engine:
  batch: 64
  chekpoint_dir: /tmp
inputs: [{name: gen, class: MockInput}]
outputs: [{name: out, class: MockOutput, match: gen}]
`, []string{"cfg.yaml:4:", `unknown key "chekpoint_dir" in engine`, "checkpoint_dir", "fuse_outputs"}},
		{"engine duration out of range", `
engine: {checkpoint_interval: 0s}
inputs: [{name: gen, class: MockInput}]
outputs: [{name: out, class: MockOutput, match: gen}]
`, []string{"cfg.yaml:2:", "engine.checkpoint_interval: 0s out of range [1ms, 24h0m0s]"}},
		{"engine bool", `
engine: {fuse_outputs: maybe}
inputs: [{name: gen, class: MockInput}]
outputs: [{name: out, class: MockOutput, match: gen}]
`, []string{"cfg.yaml:2:", "engine.fuse_outputs: want true or false"}},
		{"output key on an input", `
inputs:
  - name: gen
    class: MockInput
    retries: 5
outputs: [{name: out, class: MockOutput, match: gen}]
`, []string{"cfg.yaml:5:", "gen (MockInput): retries: unknown key", "engine keys of inputs: name, class, disabled, pool, pool_bytes, window"}},
		{"input window not a power of two", `
inputs:
  - name: gen
    class: MockInput
    window: 1000
outputs: [{name: out, class: MockOutput, match: gen}]
`, []string{"cfg.yaml:5:", "gen (MockInput): window: 1000 is not a power of two"}},
		{"in_flight out of range", `
inputs: [{name: gen, class: MockInput}]
outputs:
  - name: out
    class: MockOutput
    match: gen
    in_flight: 0
`, []string{"cfg.yaml:7:", "out (MockOutput): in_flight: 0 out of range [1, 1024]"}},
		{"dead_letter_after wrong type", `
inputs: [{name: gen, class: MockInput}]
outputs:
  - name: out
    class: MockOutput
    match: gen
    dead_letter_after: soon
`, []string{"cfg.yaml:7:", "out (MockOutput): dead_letter_after: want a duration"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.Parse("cfg.yaml", []byte(tc.yaml), mockRegistry())
			if err == nil {
				t.Fatal("config accepted")
			}
			var ce *engine.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a ConfigError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	cfg, err := engine.Parse("cfg.yaml", []byte(`
engine: {batch: 32, pool: 128, pool_bytes: 1MiB, window: 512, fuse_outputs: false, held_warn: 2s}
inputs: [{name: gen, class: MockInput, pool: 64}]
outputs: [{name: out, class: MockOutput, match: gen, in_flight: 4, retries: 0, retry_backoff: 10ms, retry_backoff_max: 1s, dead_letter_after: 1m, batch: 16}]
`), mockRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Engine
	if e.Batch != 32 || e.Pool != 128 || e.PoolBytes != 1<<20 || e.Window != 512 || e.FuseOutputs || e.HeldWarn.Seconds() != 2 {
		t.Fatalf("engine block not applied: %+v", e)
	}
	in, out := cfg.Plugins[0], cfg.Plugins[1]
	if in.Pool != 64 || in.PoolBytes != 1<<20 || in.Window != 512 {
		t.Fatalf("input engine keys: pool %d pool_bytes %d window %d", in.Pool, in.PoolBytes, in.Window)
	}
	if out.InFlight != 4 || !out.InFlightSet || out.Retries != 0 || out.RetryBackoff.Milliseconds() != 10 ||
		out.RetryBackoffMax.Seconds() != 1 || out.DeadLetterAfter.Minutes() != 1 || out.Batch != 16 {
		t.Fatalf("output engine keys: %+v", out)
	}
}

// TestEngineKeysInReference: every engine key is in the generated plugin
// reference (README, make docs).
func TestEngineKeysInReference(t *testing.T) {
	md := mockRegistry().Markdown()
	for _, w := range []string{"### engine (block)", "### Engine keys of every plugin",
		"| `checkpoint_dir` |", "| `fuse_outputs` | bool | `true` |", "| `ring` | int | `2048` |",
		"| `retries` | int | `3` |", "| `dead_letter_after` | duration | `never` |", "| `in_flight` | int | `1` |",
		"| `pool` | int | `engine.pool` |", "### MockInput (input)"} {
		if !strings.Contains(md, w) {
			t.Errorf("reference lacks %q", w)
		}
	}
}
