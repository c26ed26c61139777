package mysqlbinlog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// tlsDB is testDB on the test server that requires TLS
// (require_secure_transport=ON, certificates from .ci/certs.sh).
func tlsDB(t *testing.T) (*db, string) {
	t.Helper()
	addr, user, pw, dir := testenv.MySQLTLS(t)
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := client.Connect(addr, user, pw, "", func(c *client.Conn) error {
		c.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		return nil
	})
	if err != nil {
		t.Fatalf("connect %s over TLS: %v", addr, err)
	}
	name := "dbus_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	d := &db{t: t, addr: addr, user: user, pw: pw, name: name, c: c}
	d.exec("DROP DATABASE IF EXISTS " + name)
	d.exec("CREATE DATABASE " + name + " DEFAULT CHARSET utf8mb4")
	d.exec("USE " + name)
	t.Cleanup(func() {
		d.c.Execute("DROP DATABASE IF EXISTS " + name)
		d.c.Close()
	})
	return d, dir
}

// tlsCfg is a Config for d's server with tls.
func tlsCfg(t *testing.T, d *db, tc tlsconf.Config) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.User, cfg.Password, cfg.ServerID = d.addr, d.user, d.pw, serverIDs.Add(1)
	cfg.ConnectTimeout = 5 * time.Second
	cfg.TLS = tc
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBinlogTLSReadsRows: against a server that refuses plaintext, the
// input reads row changes over TLS in modes verify-full (chain and host
// 127.0.0.1 checked), verify-ca (chain only: a wrong server_name passes),
// required (nothing verified) and preferred (TLS since the server offers it).
func TestBinlogTLSReadsRows(t *testing.T) {
	d, dir := tlsDB(t)
	ca := filepath.Join(dir, "ca.pem")
	d.exec("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64))")
	cases := []struct{ name, tls string }{
		{"verify-full", "tls: {mode: verify-full, ca_file: " + ca + "}"},
		{"verify-full-localhost", "tls: {ca_file: " + ca + ", server_name: localhost}"},
		{"verify-ca", "tls: {mode: verify-ca, ca_file: " + ca + ", server_name: wrong.example}"},
		{"required", "tls: {mode: required}"},
		{"preferred", "tls: {mode: preferred}"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := d.pos()
			d.exec("INSERT INTO t VALUES (?, ?)", i*10+1, tc.name)
			d.exec("INSERT INTO t VALUES (?, ?)", i*10+2, tc.name)
			p := startPipeline(t, d, fileStart(start)+"\n"+tc.tls, engine.NewMemoryStore())
			rows := decodeAll(t, p.wait(2, 20*time.Second))
			if len(rows) != 2 || string(rows[1].After["v"]) != `"`+tc.name+`"` {
				t.Fatalf("rows = %+v", rows)
			}
		})
	}
	// preferred found TLS on the server, so the stream uses it too.
	cfg := tlsCfg(t, d, tlsconf.Config{Mode: tlsconf.ModePreferred})
	info, err := preflight(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !info.TLS {
		t.Fatal("preferred against a TLS server: the connection was plaintext")
	}
	if sc, err := cfg.streamTLS(info); err != nil || sc == nil {
		t.Fatalf("stream TLS = %v, %v; want TLS", sc, err)
	}
}

// TestBinlogTLSRefusals: each misconfiguration is refused at the first
// connection with an error that says what to set, and is not retried.
func TestBinlogTLSRefusals(t *testing.T) {
	d, dir := tlsDB(t)
	cases := []struct {
		name string
		tls  tlsconf.Config
		want []string
	}{
		{"unknown CA", tlsconf.Config{CAFile: filepath.Join(dir, "other-ca.pem")},
			[]string{"TLS to " + d.addr, "not signed by a trusted CA", "set tls.ca_file", "other-ca.pem"}},
		{"system roots", tlsconf.Config{Enabled: true},
			[]string{"not signed by a trusted CA", "set tls.ca_file"}},
		{"wrong host", tlsconf.Config{CAFile: filepath.Join(dir, "ca.pem"), ServerName: "db.example"},
			[]string{"does not name the host", "server_name", "verify-ca"}},
		{"plaintext against require_secure_transport", tlsconf.Config{},
			[]string{"access denied", "the server offers TLS", "set tls:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsCfg(t, d, tc.tls)
			_, err := preflight(context.Background(), &cfg)
			if err == nil {
				t.Fatal("connected")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			t.Logf("%s: %v", tc.name, err)
			if isRetryable(err) {
				t.Errorf("retryable: %v", err)
			}
		})
	}
}

// TestBinlogTLSPreferredFallsBack: preferred against a server without TLS
// (the default test server) reads in plaintext; verify-full is refused
// there with a message naming preferred.
func TestBinlogTLSPreferredFallsBack(t *testing.T) {
	d := testDB(t)
	cfg := tlsCfg(t, d, tlsconf.Config{Mode: tlsconf.ModePreferred})
	info, err := preflight(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.TLS {
		t.Skip("the default test server offers TLS: nothing to fall back from")
	}
	if sc, err := cfg.streamTLS(info); err != nil || sc != nil {
		t.Fatalf("stream TLS = %v, %v; want plaintext", sc, err)
	}
	start := d.pos()
	d.exec("CREATE TABLE t (id INT PRIMARY KEY)")
	d.exec("INSERT INTO t VALUES (1)")
	p := startPipeline(t, d, fileStart(start)+"\ntls: {mode: preferred}", engine.NewMemoryStore())
	p.wait(1, 20*time.Second)

	cfg = tlsCfg(t, d, tlsconf.Config{Mode: tlsconf.ModeRequired})
	_, err = preflight(context.Background(), &cfg)
	if err == nil || !strings.Contains(err.Error(), "does not offer TLS") || !strings.Contains(err.Error(), "preferred") {
		t.Fatalf("err = %v", err)
	}
}
