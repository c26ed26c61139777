package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClusterDbusdCheckCredentials: dbusd -t refuses a cluster config
// whose ${cred:NAME} does not resolve on this machine (it used to accept
// it and the member failed at start), and cluster-section errors name
// lines of the file.
func TestClusterDbusdCheckCredentials(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "member.yaml")
	os.WriteFile(f, []byte(`inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
cluster:
  name: prod
  zookeeper: [127.0.0.1:2181]
  auth: {user: dbus, password: "${cred:zk-dbus-check}"}
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"-t", "-conf", f}, &out, &errb); code == 0 || !strings.Contains(errb.String(), `member.yaml:8: credential "zk-dbus-check" not found`) {
		t.Fatalf("dbusd -t with a missing credential: exit %d, stderr:\n%s", code, errb.String())
	}
	t.Setenv("DBUS_CRED_ZK_DBUS_CHECK", "x")
	out.Reset()
	errb.Reset()
	if code := run([]string{"-t", "-conf", f}, &out, &errb); code != 0 {
		t.Fatalf("dbusd -t with the credential set: exit %d, stderr:\n%s", code, errb.String())
	}
	os.WriteFile(f, []byte(`inputs:
  - {name: gen, class: MockInput}
outputs:
  - {name: out, class: MockOutput, match: gen}
cluster:
  name: prod
  zookeeper: [127.0.0.1:2181]
  sesion_timeout: 5s
`), 0o644)
	errb.Reset()
	if code := run([]string{"-t", "-conf", f}, &out, &errb); code == 0 || !strings.Contains(errb.String(), `member.yaml:8: cluster: unknown key "sesion_timeout"`) {
		t.Fatalf("dbusd -t with a misspelt cluster key: exit %d, stderr:\n%s", code, errb.String())
	}
}
