package engine

import (
	"reflect"
	"testing"
)

// TestEngineKeysDefaultsMatchTheRuntime keeps the reference honest: the
// defaults the engine-key tables show are the ones the parser applies.
func TestEngineKeysDefaultsMatchTheRuntime(t *testing.T) {
	var ec EngineConfig
	for i := range engineBlockKeys {
		k := &engineBlockKeys[i]
		if k.setEngine == nil {
			t.Fatalf("engine.%s has no setter", k.Name)
		}
		if k.Default == nil {
			continue
		}
		v, err := convertDefault(&k.Field)
		if err != nil {
			t.Fatalf("engine.%s: %v", k.Name, err)
		}
		k.setEngine(&ec, v)
	}
	if want := DefaultEngineConfig(); !reflect.DeepEqual(ec, want) {
		t.Fatalf("engine block defaults from the table:\n%+v\nDefaultEngineConfig:\n%+v", ec, want)
	}
	reg := NewRegistry()
	reg.MustRegister(Spec{Class: "I", Kind: KindInput, NewInput: func(*Conf) (Input, error) { return nil, nil }})
	reg.MustRegister(Spec{Class: "O", Kind: KindOutput, NewOutput: func(*Conf) (Output, error) { return nil, nil }})
	cfg, err := Parse("d.yaml", []byte("inputs: [{name: i, class: I}]\noutputs: [{name: o, class: O, match: i}]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Plugins[1]
	for i := range pluginEngineKeys {
		k := &pluginEngineKeys[i]
		if k.setPlugin == nil || k.Default == nil {
			continue
		}
		v, err := convertDefault(&k.Field)
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		got := *o
		k.setPlugin(&got, v)
		got.InFlightSet = o.InFlightSet
		if !reflect.DeepEqual(got, *o) {
			t.Errorf("%s: the table's default %v is not what the parser applies", k.Name, k.Default)
		}
	}
	for name := range reservedKeys {
		if err := reg.Register(Spec{Class: "X" + name, Kind: KindOutput, Fields: []Field{{Name: name, Type: TypeString}},
			NewOutput: func(*Conf) (Output, error) { return nil, nil }}); err == nil {
			t.Errorf("a class may declare the engine key %q", name)
		}
	}
}
