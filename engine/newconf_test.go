package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// TestEngineNewConfConvertsGoValues: NewConf builds a Conf from Go values
// directly (no YAML text in between) and checks them as the loader does.
func TestEngineNewConfConvertsGoValues(t *testing.T) {
	reg := engine.NewRegistry()
	reg.MustRegister(engine.Spec{Class: "T", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return nil, nil },
		Fields: []engine.Field{
			{Name: "s", Type: engine.TypeString, Enum: []string{"a", "b"}, Default: "a"},
			{Name: "n", Type: engine.TypeInt, HasRange: true, Min: 1, Max: 10, Default: 2},
			{Name: "big", Type: engine.TypeInt},
			{Name: "f", Type: engine.TypeFloat},
			{Name: "b", Type: engine.TypeBool},
			{Name: "d", Type: engine.TypeDuration, Default: time.Second},
			{Name: "sz", Type: engine.TypeSize},
			{Name: "l", Type: engine.TypeStrings},
			{Name: "o", Type: engine.TypeAny, SecretKeys: []string{"pw"}},
			{Name: "pw", Type: engine.TypeString, Secret: true},
			{Name: "req", Type: engine.TypeString, Required: true, Doc: "needed"},
		}})
	t.Setenv("DBUS_TEST_NEWCONF", "from-env")
	c, err := engine.NewConf(reg, "x", "T", map[string]any{
		"req": "${env:DBUS_TEST_NEWCONF}", "n": int32(7), "big": uint64(1 << 40), "f": 3, "b": true,
		"d": 250 * time.Millisecond, "sz": "64KiB", "l": "one", "o": map[string]any{"k": []any{1, 2}},
		"retries": 5, // an engine key: checked, not the plugin's
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.String("req") != "from-env" || c.String("s") != "a" || c.Int("n") != 7 || c.Int("big") != 1<<40 || c.Float("f") != 3 ||
		!c.Bool("b") || c.Duration("d") != 250*time.Millisecond || c.Size("sz") != 64<<10 || len(c.Strings("l")) != 1 {
		t.Fatalf("values: req %q s %q n %d big %d f %v b %v d %v sz %d l %v", c.String("req"), c.String("s"), c.Int("n"),
			c.Int("big"), c.Float("f"), c.Bool("b"), c.Duration("d"), c.Size("sz"), c.Strings("l"))
	}
	var o struct{ K []int }
	if err := c.Decode("o", &o); err != nil || len(o.K) != 2 {
		t.Fatalf("object: %+v %v", o, err)
	}
	for _, tc := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"req": "r", "s": "c"}, `s: "c" is not one of a, b`},
		{map[string]any{"req": "r", "n": 11}, "n: 11 out of range [1, 10]"},
		{map[string]any{"req": "r", "n": "lots"}, "n: want an integer"},
		{map[string]any{"req": "r", "d": "soon"}, "d: want a duration"},
		{map[string]any{"req": "r", "b": "maybe"}, "b: want true or false"},
		{map[string]any{"req": "r", "nope": 1}, "nope: unknown key"},
		{map[string]any{}, "req: required key missing: needed"},
		{map[string]any{"req": "r", "in_flight": 0}, "in_flight: 0 out of range [1, 1024]"},
		{map[string]any{"req": "r", "pw": "hunter2-Secret", "n": 0}, "n: 0 out of range"},
	} {
		_, err := engine.NewConf(reg, "x", "T", tc.vals)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.vals, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
	if _, err := engine.NewConf(reg, "x", "Nope", nil); err == nil || !strings.Contains(err.Error(), `unknown class "Nope"`) {
		t.Fatalf("unknown class: %v", err)
	}
}
