package engine

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secrets in configs.
//
// Any string value of a plugin config (a string field, an entry of a
// string list, a string inside an object field) may hold references that
// the parser replaces:
//
//	${env:NAME}   the environment variable NAME (an unset variable is an error)
//	${file:PATH}  the content of PATH, one trailing newline trimmed
//
// ${cred:NAME} is left as written: cluster members resolve it from their
// own credentials (package cluster) so that no secret reaches ZooKeeper.
//
// A spec marks the fields that hold credentials with Field.Secret, or,
// for an object field, the keys inside it with Field.SecretKeys. Their
// values are collected in the Conf so that Conf.Errorf and Conf.Redact
// never show them, RedactConfig replaces them in a config shown to an
// operator (admin API), and SecretLiterals finds literal values that must
// not be stored in ZooKeeper.

// Redacted replaces a secret value in anything shown.
const Redacted = "<redacted>"

var refRE = regexp.MustCompile(`\$\{(env|file|cred):([^}]*)\}`)

// IsReference reports whether s is exactly one secret reference
// (${env:NAME}, ${file:PATH} or ${cred:NAME}): safe to show and to store.
func IsReference(s string) bool {
	m := refRE.FindStringIndex(s)
	return m != nil && m[0] == 0 && m[1] == len(s)
}

// resolveRefs replaces ${env:} and ${file:} references in s. The error
// names the reference, never a value.
func resolveRefs(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var err error
	out := refRE.ReplaceAllStringFunc(s, func(ref string) string {
		m := refRE.FindStringSubmatch(ref)
		kind, arg := m[1], m[2]
		if err != nil {
			return ref
		}
		switch kind {
		case "env":
			if arg == "" {
				err = fmt.Errorf("%s: empty variable name", ref)
				return ref
			}
			v, ok := os.LookupEnv(arg)
			if !ok {
				err = fmt.Errorf("%s: environment variable %s is not set", ref, arg)
				return ref
			}
			return v
		case "file":
			if arg == "" {
				err = fmt.Errorf("%s: empty file name", ref)
				return ref
			}
			b, e := os.ReadFile(arg)
			if e != nil {
				// The *PathError names the path and the cause only.
				err = fmt.Errorf("%s: cannot read: %v", ref, e)
				return ref
			}
			v := strings.TrimSuffix(string(b), "\n")
			return strings.TrimSuffix(v, "\r")
		}
		return ref // cred: resolved by cluster members
	})
	return out, err
}

// References returns the ${env:} and ${file:} references written in the
// config data (as written, "${env:NAME}").
func References(data []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range refRE.FindAllStringSubmatch(string(data), -1) {
		if m[1] != "cred" {
			out[m[0]] = true
		}
	}
	return out
}

// resolveNode resolves references in every scalar under n, in place.
// Resolved scalars inside objects are kept strings.
func (p *parser) resolveNode(n *yaml.Node, where string) bool {
	if p.keepRefs {
		return true
	}
	ok := true
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return true
		}
		if p.refCheck != nil {
			for _, m := range refRE.FindAllStringSubmatch(n.Value, -1) {
				if m[1] == "cred" {
					continue
				}
				if err := p.refCheck(m[0]); err != nil {
					p.errf(n.Line, "%s: %s: %v", where, m[0], err)
					return false
				}
			}
		}
		v, err := resolveRefs(n.Value)
		if err != nil {
			p.errf(n.Line, "%s: %v", where, err)
			return false
		}
		if v != n.Value {
			n.Value, n.Tag, n.Style = v, "!!str", yaml.DoubleQuotedStyle
		}
	case yaml.SequenceNode, yaml.MappingNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if !p.resolveNode(c, where) {
				ok = false
			}
		}
	case yaml.AliasNode:
		// Aliases point at nodes resolved where they are defined.
	}
	return ok
}

// secretNodes calls fn for every scalar under v that f declares secret:
// all of v when f.Secret, else the scalars at f.SecretKeys.
func secretNodes(f *Field, v *yaml.Node, fn func(*yaml.Node)) {
	if f.Secret {
		eachScalar(v, fn)
	}
	for _, path := range f.SecretKeys {
		walkPath(v, strings.Split(path, "."), fn)
	}
}

func eachScalar(n *yaml.Node, fn func(*yaml.Node)) {
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n)
	case yaml.SequenceNode, yaml.MappingNode, yaml.DocumentNode:
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys are not secret
			}
			eachScalar(c, fn)
		}
	case yaml.AliasNode:
		if n.Alias != nil {
			eachScalar(n.Alias, fn)
		}
	}
}

// walkPath finds the nodes at path under n: each element is a mapping
// key or "*" (any key); lists are walked through transparently.
func walkPath(n *yaml.Node, path []string, fn func(*yaml.Node)) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		walkPath(n.Alias, path, fn)
		return
	}
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			walkPath(c, path, fn)
		}
		return
	}
	if len(path) == 0 {
		eachScalar(n, fn)
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if path[0] == "*" || n.Content[i].Value == path[0] {
			walkPath(n.Content[i+1], path[1:], fn)
		}
	}
}

// collectSecrets records the values of f's secret scalars in c.
func (c *Conf) collectSecrets(f *Field, v *yaml.Node) {
	secretNodes(f, v, func(n *yaml.Node) {
		if n.Value != "" && !IsReference(n.Value) {
			c.secrets = append(c.secrets, n.Value)
		}
	})
}

// Redact returns s with every secret value of this plugin's config
// replaced by <redacted>; plugins pass library errors and messages that
// may quote a credential (a URL, a DSN) through it.
func (c *Conf) Redact(s string) string {
	if c == nil {
		return s
	}
	return redactValues(s, c.secrets)
}

// redactValues replaces each value of secrets found in s; values shorter
// than 4 bytes are left (replacing "a" everywhere would garble the message
// and such a value protects nothing).
func redactValues(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Secret reports whether the field holds a credential (Secret or
// SecretKeys set).
func (f *Field) IsSecret() bool { return f.Secret || len(f.SecretKeys) > 0 }

// nonPluginSecrets are secret paths of the top-level sections other
// subsystems own.
var nonPluginSecrets = [][]string{{"admin", "token"}, {"cluster", "auth", "password"}}

// eachSecret calls fn with a path ("outputs[es].password") and the node of
// every secret scalar of a config document root, as declared by reg's
// specs. A plugin of a class reg does not know (a third-party plugin
// linked into dbusd, not into dbc) is checked against the secret fields of
// every registered spec: its key "password" is secret if any spec's is.
func eachSecret(root *yaml.Node, reg *Registry, fn func(path string, n *yaml.Node)) {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		sec, v := root.Content[i].Value, root.Content[i+1]
		switch sec {
		case "inputs", "filters", "outputs":
		default:
			for _, p := range nonPluginSecrets {
				if p[0] == sec {
					walkPath(v, p[1:], func(n *yaml.Node) { fn(strings.Join(p, "."), n) })
				}
			}
			continue
		}
		if v.Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range v.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			name := fmt.Sprintf("%d", j)
			var spec *Spec
			for k := 0; k+1 < len(item.Content); k += 2 {
				switch item.Content[k].Value {
				case "name":
					name = item.Content[k+1].Value
				case "class":
					spec, _ = reg.Lookup(item.Content[k+1].Value)
				}
			}
			for k := 0; k+1 < len(item.Content); k += 2 {
				var f *Field
				if spec != nil {
					f, _ = spec.Field(item.Content[k].Value)
				} else {
					f = anySecretField(reg, item.Content[k].Value)
				}
				if f == nil || !f.IsSecret() {
					continue
				}
				path := fmt.Sprintf("%s[%s].%s", sec, name, f.Name)
				secretNodes(f, item.Content[k+1], func(n *yaml.Node) { fn(path, n) })
			}
		}
	}
}

// anySecretField returns a secret field named key of any spec of reg.
func anySecretField(reg *Registry, key string) *Field {
	for _, s := range reg.Specs() {
		if f, ok := s.Field(key); ok && f.IsSecret() {
			return f
		}
	}
	return nil
}

// RedactConfig returns the YAML config data with the value of every
// secret field (as declared by reg's specs, plus admin.token and
// cluster.auth.password) replaced by <redacted>, unless it is a reference
// (${env:}, ${file:}, ${cred:}), which is kept. Comments are kept.
func RedactConfig(data []byte, reg *Registry) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %v", err)
	}
	if len(doc.Content) == 0 {
		return data, nil
	}
	var lits []string
	eachSecret(&doc, reg, func(_ string, n *yaml.Node) {
		if n.Value != "" && !IsReference(n.Value) {
			lits = append(lits, n.Value)
			n.Value, n.Tag, n.Style = Redacted, "!!str", 0
		}
	})
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	// A secret repeated elsewhere (an anchor, a comment) is not shown either.
	return []byte(redactValues(string(out), lits)), nil
}

// SecretLiterals returns the paths of secret fields of the YAML config
// data that hold a literal value rather than exactly one reference: what
// must not be stored where others read it (ZooKeeper).
func SecretLiterals(data []byte, reg *Registry) ([]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %v", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	eachSecret(&doc, reg, func(path string, n *yaml.Node) {
		if n.Value != "" && !IsReference(n.Value) {
			seen[path] = true
		}
	})
	return sortedKeys(seen), nil
}

// SecretLiterals returns the keys of conf (a plugin's settings, as a
// cluster resource carries them) whose spec field is secret and whose
// value is literal rather than exactly one reference.
func (s *Spec) SecretLiterals(conf map[string]any) ([]string, error) {
	seen := map[string]bool{}
	for k, v := range conf {
		f, ok := s.Field(k)
		if !ok || !f.IsSecret() {
			continue
		}
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		secretNodes(f, &n, func(sn *yaml.Node) {
			if sn.Value != "" && !IsReference(sn.Value) {
				seen[k] = true
			}
		})
	}
	return sortedKeys(seen), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
