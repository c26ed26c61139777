package cluster

import (
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
)

// TestClusterConfigErrorLines: errors in the cluster section name the
// line of the file, not a line relative to the section (before: an
// unknown key on file line 9 was reported as line 4).
func TestClusterConfigErrorLines(t *testing.T) {
	head := "engine:\n  batch: 16\ninputs: []\n\ncluster:\n  name: prod\n  zookeeper: [zk1:2181]\n"
	for _, c := range []struct {
		tail string
		want []string
	}{
		{"  member: a\n  sesion_timeout: 5s\n", []string{`dbusd.yaml:9: cluster: unknown key "sesion_timeout"`}},
		{"  session_timeout: soon\n", []string{"dbusd.yaml:8: cluster: cannot unmarshal"}},
		{"  member: a\n  session_timeout: 500ms\n  weight: 5000\n", []string{"dbusd.yaml:9: cluster: session_timeout 500ms out of range", "dbusd.yaml:10: cluster: weight 5000 out of range"}},
		{"  auth:\n    user: x\n    pasword: y\n", []string{`dbusd.yaml:10: cluster.auth: unknown key "pasword"`}},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(head+c.tail), &doc); err != nil {
			t.Fatal(err)
		}
		var sec *yaml.Node
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "cluster" {
				sec = root.Content[i+1]
			}
		}
		_, err := ParseConfig("dbusd.yaml", sec)
		if err == nil {
			t.Errorf("%q: accepted", c.tail)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error\n%v\nwant %q", c.tail, err, w)
			}
		}
	}
}

// TestClusterCheckCredentialRefs: dbusd -t reports a ${cred:NAME} this
// member cannot resolve, with its line; comments are ignored.
func TestClusterCheckCredentialRefs(t *testing.T) {
	raw := []byte("# dbc ... -config '{\"password\": \"${cred:in-comment}\"}'\ncluster:\n  name: c\n  auth: {user: dbus, password: \"${cred:zk-dbus-test}\"}\n")
	cc := &Config{}
	err := CheckCredentialRefs("m.yaml", raw, cc)
	if err == nil || !strings.Contains(err.Error(), `m.yaml:4: credential "zk-dbus-test" not found (set environment variable DBUS_CRED_ZK_DBUS_TEST)`) {
		t.Fatalf("missing credential: %v", err)
	}
	if strings.Contains(err.Error(), "in-comment") {
		t.Fatalf("a reference in a comment was checked: %v", err)
	}
	t.Setenv("DBUS_CRED_ZK_DBUS_TEST", "s3cret")
	if err := CheckCredentialRefs("m.yaml", raw, cc); err != nil {
		t.Fatalf("credential set in the environment: %v", err)
	}
}

// TestClusterResourceLargeIntegers: a resource config's numbers come from
// JSON (float64); a large one (a binlog start_pos) must reach an int
// field as an integer, not as 1.162267e+06 (found by
// TestClusterProcessBinlogKill).
func TestClusterResourceLargeIntegers(t *testing.T) {
	h := &harness{t: t, reg: testRegistry()}
	cfg, err := engineParse(h, pipelineYAML("x"))
	if err != nil {
		t.Fatal(err)
	}
	r := NewEngineRunner(cfg, h.reg, nil, nil)
	c, err := r.Config(ResourceSpec{ID: "r", Input: "src", Config: map[string]any{"rate": float64(1162267), "resource": "r"}})
	if err != nil {
		t.Fatalf("a large integer from JSON: %v", err)
	}
	for _, pc := range c.Plugins {
		if pc.Name == "src" && pc.Conf.Int("rate") != 1162267 {
			t.Fatalf("rate %d, want 1162267", pc.Conf.Int("rate"))
		}
	}
	if _, err := r.Config(ResourceSpec{ID: "r", Input: "src", Config: map[string]any{"rate": 1.5}}); err == nil {
		t.Fatalf("a fractional value for an int field was accepted")
	}
}

func engineParse(h *harness, y string) (*engine.Config, error) {
	return engine.Parse("test.yaml", []byte(y), h.reg)
}
