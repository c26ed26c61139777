package cluster

import (
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
)

func secretTestRegistry() *engine.Registry {
	reg := testRegistry()
	reg.MustRegister(engine.Spec{Class: "ClusterSecretInput", Kind: engine.KindInput, Distributed: true,
		Fields: []engine.Field{
			{Name: "addr", Type: engine.TypeString, Default: ""},
			{Name: "password", Type: engine.TypeString, Default: "", Secret: true},
			{Name: "token_file", Type: engine.TypeString, Default: ""},
			{Name: "auth", Type: engine.TypeAny, SecretKeys: []string{"password"}},
		},
		NewInput: func(c *engine.Conf) (engine.Input, error) { return &testInput{res: "x", rate: 1}, nil }})
	return reg
}

// TestClusterSecretsRefusedBySpec: what is secret comes from the spec's
// Secret/SecretKeys, not from key names: a literal in a secret field (or
// a DSN password) is refused with the key named and the value not shown;
// references pass; a non-secret key named like a secret passes.
func TestClusterSecretsRefusedBySpec(t *testing.T) {
	reg := secretTestRegistry()
	sp, _ := reg.Lookup("ClusterSecretInput")
	cases := []struct {
		name string
		conf map[string]any
		want string // "" for accepted
	}{
		{"literal password", map[string]any{"password": "Hunter2-Secret"}, "password (secret field of ClusterSecretInput"},
		{"literal in object", map[string]any{"auth": map[string]any{"user": "u", "password": "Hunter2-Secret"}}, "auth (secret field"},
		{"cred reference", map[string]any{"password": "${cred:db}"}, ""},
		{"env reference", map[string]any{"password": "${env:DB_PW}", "auth": map[string]any{"password": "${file:/run/pw}"}}, ""},
		{"dsn password", map[string]any{"addr": "repl:Hunter2-Secret@tcp(db:3306)/"}, "addr (inline password"},
		{"dsn reference", map[string]any{"addr": "repl:${cred:db}@tcp(db:3306)/"}, ""},
		{"secret-looking but not secret", map[string]any{"token_file": "/etc/dbus/token"}, ""},
		{"reference with literal around", map[string]any{"password": "x${cred:db}"}, "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNoSecrets(tc.conf, sp)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Hunter2") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
	// Class not known yet (no config pushed): every spec is consulted.
	if err := CheckNoSecrets(map[string]any{"password": "Hunter2-Secret"}, secretSpecs(reg, "")...); err == nil {
		t.Fatal("literal password accepted for an unknown class")
	}
}

// TestClusterConfigPushSecrets: a pushed pipeline config is refused when a
// secret field holds a literal, accepted with references.
func TestClusterConfigPushSecrets(t *testing.T) {
	reg := secretTestRegistry()
	const base = "inputs:\n  - {name: src, class: ClusterSecretInput, password: %s}\noutputs:\n  - {name: out, class: MockOutput, match: src}\n"
	err := checkConfigSecrets([]byte(strings.Replace(base, "%s", "Hunter2-Secret", 1)), reg)
	if err == nil || !strings.Contains(err.Error(), "inputs[src].password") || strings.Contains(err.Error(), "Hunter2") {
		t.Fatalf("err = %v", err)
	}
	for _, ref := range []string{`"${cred:db}"`, `"${env:DB_PW}"`, `"${file:/run/db.pw}"`, `""`} {
		if err := checkConfigSecrets([]byte(strings.Replace(base, "%s", ref, 1)), reg); err != nil {
			t.Errorf("%s refused: %v", ref, err)
		}
	}
	// A class this registry lacks (a third-party plugin): its keys named
	// like a registered secret field are checked.
	err = checkConfigSecrets([]byte("inputs:\n  - {name: src, class: NoSuchClass, password: Hunter2-Secret, token_file: /x}\n"), reg)
	if err == nil || !strings.Contains(err.Error(), "inputs[src].password") || strings.Contains(err.Error(), "token_file") {
		t.Fatalf("unknown class: err = %v", err)
	}
}
