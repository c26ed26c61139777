package engine_test

import (
	"fmt"
	"testing"

	"github.com/dbus-project/dbus/engine"
)

// TestEngineReloadRebuildsOnEveryEngineKey: a reload that changes only one
// per-plugin engine key rebuilds that plugin's component (the key of a
// component covers every setting that configures its plugins). Found by
// the engine-keys spec: retry_backoff_max, dead_letter_after and an
// explicit in_flight equal to a class's default were left out, so such a
// reload changed nothing.
func TestEngineReloadRebuildsOnEveryEngineKey(t *testing.T) {
	const base = `
inputs:
  - {name: gen, class: MockInput, count: 10%s}
outputs:
  - {name: out, class: MockOutput, match: gen%s}
  - {name: dlq, class: MockOutput, match: gen}
`
	cases := []struct{ in, out string }{
		{"", ", retry_backoff_max: 7s"},
		{"", ", dead_letter_after: 1m"},
		{"", ", in_flight: 1"},
		{"", ", retries: 9"},
		{"", ", retry_backoff: 1s"},
		{"", ", batch: 16"},
		{"", ", dead_letter: dlq"},
		{", pool: 1024", ""},
		{", pool_bytes: 1MiB", ""},
		{", window: 4096", ""},
	}
	for _, tc := range cases {
		t.Run(tc.in+tc.out, func(t *testing.T) {
			reg := mockRegistry()
			cfg, err := engine.Parse("a.yaml", []byte(fmt.Sprintf(base, "", "")), reg)
			if err != nil {
				t.Fatal(err)
			}
			sup, err := engine.NewSupervisor(cfg, engine.Options{Registry: reg, Store: engine.NewMemoryStore()})
			if err != nil {
				t.Fatal(err)
			}
			defer sup.Close()
			before := sup.Engines()
			cfg2, err := engine.Parse("b.yaml", []byte(fmt.Sprintf(base, tc.in, tc.out)), reg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sup.Reload(cfg2); err != nil {
				t.Fatal(err)
			}
			after := sup.Engines()
			if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
				t.Fatalf("the component was not rebuilt (%d engines before, %d after, same: %v)", len(before), len(after), len(after) == 1 && len(before) == 1 && before[0] == after[0])
			}
		})
	}
}
