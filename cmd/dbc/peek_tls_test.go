package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mysqlclient "github.com/go-mysql-org/go-mysql/client"

	"github.com/dbus-project/dbus/internal/testenv"
)

// TestBinlogDbcPeekTLS: dbc peek reads a server that requires TLS with
// -tls-mode/-tls-ca; without them, or with a CA that did not sign the
// server's certificate, it exits 1 saying what to set.
func TestBinlogDbcPeekTLS(t *testing.T) {
	addr, user, password, dir := testenv.MySQLTLS(t)
	ca := filepath.Join(dir, "ca.pem")
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := mysqlclient.Connect(addr, user, password, "", func(c *mysqlclient.Conn) error {
		c.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS dbcpeektls", "CREATE TABLE IF NOT EXISTS dbcpeektls.t (id INT PRIMARY KEY, v VARCHAR(20))", "DELETE FROM dbcpeektls.t"} {
		if _, err := c.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	for i := 1; i <= 3; i++ {
		if _, err := c.Execute("INSERT INTO dbcpeektls.t VALUES (?, ?)", i, fmt.Sprintf("tls-row-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"peek", "-mysql", addr, "-user", user, "-password", password, "-include", "dbcpeektls.*", "-start", fmt.Sprintf("%s:%d", file, pos), "-duration", "2s"}
	var out, errb bytes.Buffer
	if code := run(append(base, "-tls-mode", "verify-full", "-tls-ca", ca), nil, &out, &errb); code != 0 {
		t.Fatalf("dbc peek exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "tls-row-"); n != 3 {
		t.Fatalf("peek showed %d rows, want 3:\n%s", n, out.String())
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plaintext", nil, "set tls"},
		{"unknown CA", []string{"-tls-ca", filepath.Join(dir, "other-ca.pem")}, "not signed by a trusted CA"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(append(append([]string{}, base...), tc.args...), nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.name, code, errb.String(), tc.want)
		}
		if strings.Contains(errb.String(), password) && password != "" {
			t.Errorf("%s: stderr shows the password", tc.name)
		}
	}
}
