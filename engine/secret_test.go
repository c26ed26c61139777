package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
)

// secretRegistry: the mock plugins plus SecretOutput, with a secret field,
// a plain one and an object with a secret key.
func secretRegistry(t *testing.T) *engine.Registry {
	t.Helper()
	reg := mockRegistry()
	reg.MustRegister(engine.Spec{Class: "SecretOutput", Kind: engine.KindOutput,
		Fields: []engine.Field{
			{Name: "password", Type: engine.TypeString, Default: "", Secret: true},
			{Name: "endpoint", Type: engine.TypeString, Default: ""},
			{Name: "hosts", Type: engine.TypeStrings},
			{Name: "auth", Type: engine.TypeAny, SecretKeys: []string{"password"}},
			{Name: "port", Type: engine.TypeInt, Default: 1},
		},
		NewOutput: func(c *engine.Conf) (engine.Output, error) { return nil, errors.New("not built in this test") },
	})
	return reg
}

func secretYAML(out string) string {
	return "inputs:\n  - {name: gen, class: MockInput}\noutputs:\n  - name: out\n    class: SecretOutput\n    match: gen\n" + out
}

// TestEngineSecretReferences: ${env:} and ${file:} are resolved in string
// fields, list entries and object values; ${cred:} is left for cluster
// members; a resolved secret never appears in a Conf error.
func TestEngineSecretReferences(t *testing.T) {
	reg := secretRegistry(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("FromFileSecret9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_TEST_PW", "FromEnvSecret7")
	t.Setenv("DBUS_TEST_HOST", "db.internal")
	cfg, err := engine.Parse("cfg.yaml", []byte(secretYAML(`    password: ${env:DBUS_TEST_PW}
    endpoint: https://${env:DBUS_TEST_HOST}:9200/${cred:keep}
    hosts: [a, "${env:DBUS_TEST_HOST}"]
    auth: {user: u, password: "${file:`+pwFile+`}"}
`)), reg)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Plugins[1].Conf
	if got := c.String("password"); got != "FromEnvSecret7" {
		t.Errorf("password = %q", got)
	}
	if got := c.String("endpoint"); got != "https://db.internal:9200/${cred:keep}" {
		t.Errorf("endpoint = %q", got)
	}
	if got := c.Strings("hosts"); len(got) != 2 || got[1] != "db.internal" {
		t.Errorf("hosts = %q", got)
	}
	var auth struct{ User, Password string }
	if err := c.Decode("auth", &auth); err != nil {
		t.Fatal(err)
	}
	if auth.Password != "FromFileSecret9" {
		t.Errorf("auth.password = %q (trailing newline trimmed?)", auth.Password)
	}
	// A constructor error quoting a secret (say, a URL with it) is redacted.
	msg := c.Errorf("endpoint", "cannot log in as u/%s or %s", c.String("password"), auth.Password).Error()
	if strings.Contains(msg, "FromEnvSecret7") || strings.Contains(msg, "FromFileSecret9") || !strings.Contains(msg, engine.Redacted) {
		t.Errorf("Errorf shows a secret: %s", msg)
	}
	if got := c.Redact("dial https://u:FromEnvSecret7@h"); strings.Contains(got, "FromEnvSecret7") {
		t.Errorf("Redact = %q", got)
	}
	// A strict decode error of an object quoting a secret is redacted too.
	var wrong struct{ Password int }
	if err := c.Decode("auth", &wrong); err == nil || strings.Contains(err.Error(), "FromFileSecret9") {
		t.Errorf("decode error = %v", err)
	}
}

// TestEngineSecretReferenceErrors: an unset variable or an unreadable
// file is a config error naming the plugin, key, file and line and the
// reference, never a value.
func TestEngineSecretReferenceErrors(t *testing.T) {
	reg := secretRegistry(t)
	dir := t.TempDir()
	t.Setenv("DBUS_TEST_OTHER", "NeverShownValue5")
	cases := []struct {
		name, conf string
		want       []string
	}{
		{"unset env", "    password: ${env:DBUS_TEST_UNSET_VAR}\n",
			[]string{"cfg.yaml:7:", "out (SecretOutput): password", "${env:DBUS_TEST_UNSET_VAR}", "environment variable DBUS_TEST_UNSET_VAR is not set"}},
		{"missing file", "    password: ${file:" + dir + "/nope}\n",
			[]string{"cfg.yaml:7:", "out (SecretOutput): password", "cannot read", "no such file"}},
		{"directory", "    endpoint: x\n    auth:\n      password: ${file:" + dir + "}\n",
			[]string{"cfg.yaml:9:", "out (SecretOutput): auth", "cannot read"}},
		{"unset among set", "    password: ${env:DBUS_TEST_OTHER}${env:DBUS_TEST_UNSET_2}\n",
			[]string{"cfg.yaml:7:", "DBUS_TEST_UNSET_2 is not set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := engine.Parse("cfg.yaml", []byte(secretYAML(tc.conf)), reg)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "NeverShownValue5") {
				t.Errorf("error shows a value: %v", err)
			}
		})
	}
}

// TestEngineRedactConfig: literal secrets (fields, object keys, the admin
// token) are replaced, references kept, the rest untouched.
func TestEngineRedactConfig(t *testing.T) {
	reg := secretRegistry(t)
	data := []byte(secretYAML(`    password: Literal-Pass-1
    endpoint: http://h
    auth: {user: bob, password: Literal-Pass-2}
  - {name: out2, class: SecretOutput, match: gen, password: "${file:/run/pw}"}
admin: {token: Literal-Token-3}
`))
	out, err := engine.RedactConfig(data, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Literal-Pass-1", "Literal-Pass-2", "Literal-Token-3"} {
		if strings.Contains(string(out), v) {
			t.Errorf("shows %s:\n%s", v, out)
		}
	}
	for _, v := range []string{"${file:/run/pw}", "http://h", "bob"} {
		if !strings.Contains(string(out), v) {
			t.Errorf("lost %s:\n%s", v, out)
		}
	}
	lits, err := engine.SecretLiterals(data, reg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(lits, ",") != "admin.token,outputs[out].auth,outputs[out].password" {
		t.Errorf("SecretLiterals = %v", lits)
	}
	sp, _ := reg.Lookup("SecretOutput")
	got, err := sp.SecretLiterals(map[string]any{"password": "x1234", "auth": map[string]any{"password": "${cred:a}"}, "endpoint": "e"})
	if err != nil || strings.Join(got, ",") != "password" {
		t.Errorf("Spec.SecretLiterals = %v, %v", got, err)
	}
}
