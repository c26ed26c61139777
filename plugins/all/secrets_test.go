package all_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dbus-project/dbus/engine"
	_ "github.com/dbus-project/dbus/plugins/all"
)

// credentialName matches field names (and words in an object field's
// doc) that hold credentials.
var credentialName = regexp.MustCompile(`(?i)^(.*_)?(pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credentials?|auth_header)$`)

var credentialWord = regexp.MustCompile(`(?i)\b(pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credentials?)\b`)

// TestEngineSecretFieldsMarked walks every registered spec: a field named
// like a credential is Secret, and an object field whose doc lists a
// credential key declares it in SecretKeys.
func TestEngineSecretFieldsMarked(t *testing.T) {
	n := 0
	for _, s := range engine.Default.Specs() {
		for _, f := range s.Fields {
			if credentialName.MatchString(f.Name) && !f.Secret {
				t.Errorf("%s.%s looks like a credential but is not marked Secret", s.Class, f.Name)
			}
			if f.Secret {
				n++
				if f.Type != engine.TypeString && f.Type != engine.TypeStrings {
					t.Errorf("%s.%s: Secret on a %s field (use SecretKeys for objects)", s.Class, f.Name, f.Type)
				}
			}
			if f.Type != engine.TypeAny {
				continue
			}
			for _, w := range credentialWord.FindAllString(f.Doc, -1) {
				covered := false
				for _, k := range f.SecretKeys {
					last := k[strings.LastIndex(k, ".")+1:]
					if strings.EqualFold(last, w) || last == "*" {
						covered = true
					}
				}
				if !covered {
					t.Errorf("%s.%s: its doc names key %q but SecretKeys %v does not declare it", s.Class, f.Name, w, f.SecretKeys)
				}
			}
			n += len(f.SecretKeys)
		}
	}
	if n < 4 {
		t.Fatalf("only %d secret fields found: is plugins/all imported?", n)
	}
}

// secretConfig builds a config with one plugin of every registered class,
// each secret field (and each SecretKeys path) holding a recognizable
// value; it returns the YAML and the values.
func secretConfig(t *testing.T) ([]byte, []string) {
	t.Helper()
	sections := map[string][]any{}
	var values []string
	for _, s := range engine.Default.Specs() {
		name := strings.ToLower(s.Class)
		item := map[string]any{"name": name, "class": s.Class}
		for _, f := range s.Fields {
			if f.Secret {
				v := fmt.Sprintf("S3cr3t-%s-%s", s.Class, f.Name)
				values = append(values, v)
				if f.Type == engine.TypeStrings {
					item[f.Name] = []any{v}
				} else {
					item[f.Name] = v
				}
			}
			if len(f.SecretKeys) > 0 {
				obj := map[string]any{}
				for _, path := range f.SecretKeys {
					v := fmt.Sprintf("S3cr3t-%s-%s-%s", s.Class, f.Name, path)
					values = append(values, v)
					m := obj
					parts := strings.Split(path, ".")
					for i, p := range parts {
						if p == "*" {
							p = "Authorization"
						}
						if i == len(parts)-1 {
							m[p] = v
							break
						}
						next, ok := m[p].(map[string]any)
						if !ok {
							next = map[string]any{}
							m[p] = next
						}
						m = next
					}
				}
				item[f.Name] = obj
			}
		}
		sec := map[engine.Kind]string{engine.KindInput: "inputs", engine.KindFilter: "filters", engine.KindOutput: "outputs"}[s.Kind]
		sections[sec] = append(sections[sec], item)
	}
	doc := map[string]any{"admin": map[string]any{"token": "S3cr3t-admin-token"}}
	values = append(values, "S3cr3t-admin-token")
	for k, v := range sections {
		doc[k] = v
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data, values
}

// TestEngineRedactConfigEverySecret: the config shown to an operator
// (RedactConfig, used by GET /api/v1/config) contains no secret value of
// any registered plugin, and SecretLiterals (used to refuse a ZooKeeper
// push) names every one of them; references are kept and accepted.
func TestEngineRedactConfigEverySecret(t *testing.T) {
	data, values := secretConfig(t)
	out, err := engine.RedactConfig(data, engine.Default)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if !strings.Contains(string(data), v) {
			t.Fatalf("BUG: test config lacks %q", v)
		}
		if strings.Contains(string(out), v) {
			t.Errorf("redacted config shows %q:\n%s", v, out)
		}
	}
	lits, err := engine.SecretLiterals(data, engine.Default)
	if err != nil {
		t.Fatal(err)
	}
	if len(lits) == 0 {
		t.Fatal("SecretLiterals found none")
	}
	// The same config with references instead of values: nothing to
	// redact, nothing refused.
	refs := string(data)
	for i, v := range values {
		refs = strings.ReplaceAll(refs, v, fmt.Sprintf("${env:DBUS_TEST_SECRET_%d}", i))
	}
	out, err = engine.RedactConfig([]byte(refs), engine.Default)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), engine.Redacted) || !strings.Contains(string(out), "${env:DBUS_TEST_SECRET_0}") {
		t.Errorf("references were redacted or lost:\n%s", out)
	}
	if lits, _ := engine.SecretLiterals([]byte(refs), engine.Default); len(lits) != 0 {
		t.Errorf("references refused: %v", lits)
	}
}
