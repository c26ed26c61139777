package admin_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
)

// TestAPIConfigRedactsSecrets: GET /api/v1/config shows the running
// config with secret values (a field, a key inside an object, the admin
// token) redacted and references kept; /api/v1/plugins marks the fields.
func TestAPIConfigRedactsSecrets(t *testing.T) {
	t.Setenv("DBUS_TEST_ADMIN_PW", "EnvResolved-Secret-4")
	pipeline := `
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 1000}
outputs:
  - name: out
    class: SecretMock
    match: gen
    password: Literal-Secret-1
    auth: {user: bob, password: Literal-Secret-2}
  - {name: out2, class: SecretMock, match: gen, password: "${env:DBUS_TEST_ADMIN_PW}"}
`
	h := start(t, hopts{pipeline: pipeline, section: "{token: Literal-Token-3}", register: registerSecretMock})
	h.tok = "Literal-Token-3"
	code, body := h.do("GET", "/api/v1/config", "")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var v struct {
		YAML       string `json:"yaml"`
		Generation int64  `json:"generation"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Literal-Secret-1", "Literal-Secret-2", "Literal-Token-3", "EnvResolved-Secret-4"} {
		if strings.Contains(string(body), s) {
			t.Errorf("/api/v1/config shows %s:\n%s", s, v.YAML)
		}
	}
	for _, s := range []string{"${env:DBUS_TEST_ADMIN_PW}", "bob", engine.Redacted} {
		if !strings.Contains(v.YAML, s) {
			t.Errorf("/api/v1/config lacks %s:\n%s", s, v.YAML)
		}
	}
	code, body = h.do("GET", "/api/v1/plugins/SecretMock", "")
	if code != 200 || !strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"secret":true`) {
		t.Errorf("plugin view: %d %s", code, body)
	}
}

// TestAPIReloadReferencesOnlyFromTheFile: a config posted to the API may
// use the ${env:}/${file:} references the config file uses, no others: it
// cannot read the daemon's other files or variables into a pipeline.
func TestAPIReloadReferencesOnlyFromTheFile(t *testing.T) {
	t.Setenv("DBUS_TEST_ADMIN_PW", "EnvResolved-Secret-4")
	t.Setenv("DBUS_TEST_OTHER_VAR", "Other-Secret-5")
	const pipe = `
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 1000}
outputs:
  - {name: out, class: SecretMock, match: gen, password: "%s"}
`
	h := start(t, hopts{pipeline: strings.Replace(pipe, "%s", "${env:DBUS_TEST_ADMIN_PW}", 1), file: true, register: registerSecretMock})
	for _, ref := range []string{"${env:DBUS_TEST_OTHER_VAR}", "${file:/etc/hostname}"} {
		code, b := h.do("POST", "/api/v1/reload", strings.Replace(pipe, "%s", ref, 1), "Content-Type", "application/yaml")
		if code != 400 || !strings.Contains(string(b), "may use only the ${env:} and ${file:} references the config file uses") || !strings.Contains(string(b), ref) {
			t.Errorf("%s: %d %s", ref, code, b)
		}
		if strings.Contains(string(b), "Other-Secret-5") {
			t.Errorf("%s: response shows the value: %s", ref, b)
		}
	}
	if g := h.sup.Generation(); g != 1 {
		t.Fatalf("refused reloads changed the generation to %d", g)
	}
	// The file's own reference is accepted (here with a changed rate).
	body := strings.Replace(strings.Replace(pipe, "%s", "${env:DBUS_TEST_ADMIN_PW}", 1), "rate: 1000", "rate: 2000", 1)
	if code, b := h.do("POST", "/api/v1/reload", body, "Content-Type", "application/yaml"); code != 200 {
		t.Fatalf("reload with the file's reference: %d %s", code, b)
	}
}

func registerSecretMock(reg *engine.Registry) {
	base, _ := reg.Lookup("MockOutput")
	sp := *base
	sp.Class = "SecretMock"
	sp.Fields = append(append([]engine.Field{}, base.Fields...),
		engine.Field{Name: "password", Type: engine.TypeString, Default: "", Secret: true},
		engine.Field{Name: "auth", Type: engine.TypeAny, SecretKeys: []string{"password"}})
	reg.MustRegister(sp)
}
