package cluster

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dbus-project/dbus/engine"
)

// Credentials never enter ZooKeeper. Resource configs and the auth block
// refer to them by name, "${cred:NAME}", and each member resolves the
// names locally: from the environment variable DBUS_CRED_<NAME> (upper
// case, '-' and '.' as '_'), else from the credentials file (a YAML
// mapping of name to secret, readable by the dbusd user only).

var credRefRE = regexp.MustCompile(`\$\{cred:([A-Za-z0-9._-]+)\}`)

// IsCredentialRef reports whether s is exactly one credential reference,
// "${cred:NAME}" (dbc -auth-password takes nothing else).
func IsCredentialRef(s string) bool { return isCredRef(s) }

func isCredRef(s string) bool {
	m := credRefRE.FindStringIndex(s)
	return m != nil && m[0] == 0 && m[1] == len(s)
}

// Credentials resolves credential names.
type Credentials struct {
	file string
	vals map[string]string
}

// LoadCredentials reads the credentials file (may be "" for env only).
func LoadCredentials(file string) (*Credentials, error) {
	c := &Credentials{file: file, vals: map[string]string{}}
	if file == "" {
		return c, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	if err := yaml.Unmarshal(data, &c.vals); err != nil {
		return nil, fmt.Errorf("credentials file %s: want a mapping of name to secret: %v", file, err)
	}
	return c, nil
}

func credEnv(name string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return "DBUS_CRED_" + strings.ToUpper(r.Replace(name))
}

// Lookup returns the secret named name.
func (c *Credentials) Lookup(name string) (string, error) {
	if v, ok := os.LookupEnv(credEnv(name)); ok {
		return v, nil
	}
	if v, ok := c.vals[name]; ok {
		return v, nil
	}
	where := "environment variable " + credEnv(name)
	if c.file != "" {
		where += " or credentials file " + c.file
	}
	return "", fmt.Errorf("credential %q not found (set %s)", name, where)
}

// Expand replaces every ${cred:NAME} in s.
func (c *Credentials) Expand(s string) (string, error) {
	var err error
	out := credRefRE.ReplaceAllStringFunc(s, func(ref string) string {
		name := credRefRE.FindStringSubmatch(ref)[1]
		v, e := c.Lookup(name)
		if e != nil && err == nil {
			err = e
		}
		return v
	})
	return out, err
}

// expandAny expands credential references in strings nested in v.
func (c *Credentials) expandAny(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return c.Expand(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := c.expandAny(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := c.expandAny(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

// dsnPassRE finds user:password@ in a DSN or URL.
var dsnPassRE = regexp.MustCompile(`[^\s:/@]+:([^\s@/]+)@`)

// CheckNoSecrets reports keys of a resource config that carry a literal
// secret, so that no credential is ever written to ZooKeeper: a key that
// one of specs (the resource's input class; every class of the registry
// when it is not known yet) declares secret (engine.Field.Secret or
// SecretKeys) whose value is not exactly one reference (${cred:NAME},
// ${env:NAME}, ${file:PATH}), or a string with a DSN or URL carrying an
// inline password.
func CheckNoSecrets(cfg map[string]any, specs ...*engine.Spec) error {
	var bad []string
	for _, sp := range specs {
		lits, err := sp.SecretLiterals(cfg)
		if err != nil {
			return err
		}
		for _, k := range lits {
			bad = append(bad, fmt.Sprintf("%s (secret field of %s with a literal value)", k, sp.Class))
		}
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case string:
			for _, m := range dsnPassRE.FindAllStringSubmatch(x, -1) {
				if !isCredRef(m[1]) && !engine.IsReference(m[1]) {
					bad = append(bad, path+" (inline password in a DSN or URL)")
					return
				}
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case map[string]any:
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, e)
			}
		}
	}
	walk("", cfg)
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	bad = slices.Compact(bad)
	return fmt.Errorf("resource config carries credentials: %s; refer to a named credential instead, e.g. password: \"${cred:mysql-prod}\" or \"user:${cred:mysql-prod}@tcp(host:3306)/\", resolved on each member from DBUS_CRED_<NAME> or the credentials file", strings.Join(bad, ", "))
}

// checkConfigSecrets refuses a pipeline config (a cluster config push)
// whose secret fields, as reg's specs declare them, hold literal values,
// or whose strings carry DSN passwords.
func checkConfigSecrets(data []byte, reg *engine.Registry) error {
	lits, err := engine.SecretLiterals(data, reg)
	if err != nil {
		return err
	}
	var probe map[string]any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("config is not valid YAML: %v", err)
	}
	dsnErr := CheckNoSecrets(probe)
	if len(lits) == 0 {
		return dsnErr
	}
	msg := fmt.Sprintf("secret fields with literal values: %s; write them as \"${cred:NAME}\" (resolved on each member from DBUS_CRED_<NAME> or the credentials file), \"${env:NAME}\" or \"${file:PATH}\" (resolved on each member)", strings.Join(lits, ", "))
	if dsnErr != nil {
		msg += "; " + dsnErr.Error()
	}
	return errors.New(msg)
}

// secretSpecs returns the specs whose fields a resource of input (class
// unknown when "") may set: the input's class, or every registered spec.
func secretSpecs(reg *engine.Registry, class string) []*engine.Spec {
	if s, ok := reg.Lookup(class); ok {
		return []*engine.Spec{s}
	}
	return reg.Specs()
}
