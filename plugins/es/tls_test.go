package es

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// newTLSBulkServer is newBulkServer over TLS (httptest's certificate,
// for 127.0.0.1 and example.com) that refuses requests whose
// Authorization header is not auth (401); it returns the CA file to trust
// and the headers seen.
func newTLSBulkServer(t *testing.T, auth string) (*bulkServer, *httptest.Server, string, func() []string) {
	t.Helper()
	bs := &bulkServer{t: t, docs: map[string]map[string]map[string]any{}, attempts: map[string]int{}}
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != auth {
			w.Header().Set("WWW-Authenticate", `Basic realm="security"`)
			http.Error(w, `{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}`, http.StatusUnauthorized)
			return
		}
		bs.handle(w, r)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return bs, srv, ca, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// otherCA writes a CA certificate that signed nothing the server holds.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func oneDoc() []*pack.Packet {
	p := &pack.Packet{}
	p.Attrs.SetInt("n", 1)
	p.Attrs.SetString("app", "web")
	return []*pack.Packet{p}
}

// TestESTLSAuthWrites: over TLS with the server's CA, basic auth (password
// from ${env:}) and an API key each reach the bulk API with the right
// Authorization header and index the document.
func TestESTLSAuthWrites(t *testing.T) {
	t.Setenv("DBUS_TEST_ES_PASSWORD", "Es-Secret-Pw-1")
	cases := []struct {
		name string
		vals map[string]any
		auth string
	}{
		{"basic", map[string]any{"username": "dbus", "password": "${env:DBUS_TEST_ES_PASSWORD}"}, "Basic ZGJ1czpFcy1TZWNyZXQtUHctMQ=="},
		{"api key", map[string]any{"api_key": "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="}, "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs, srv, ca, seen := newTLSBulkServer(t, tc.auth)
			tc.vals["urls"] = []string{srv.URL}
			tc.vals["index"] = "x"
			tc.vals["tls"] = map[string]any{"ca_file": ca}
			o := newTestOutput(t, tc.vals)
			if err := o.Write(context.Background(), oneDoc()); err != nil {
				t.Fatal(err)
			}
			if bs.items != 1 {
				t.Fatalf("indexed %d", bs.items)
			}
			if h := seen(); len(h) != 1 || h[0] != tc.auth {
				t.Fatalf("Authorization headers %q, want %q", h, tc.auth)
			}
		})
	}
}

// TestESTLSAndAuthRefusals: an untrusted certificate, a wrong host name,
// plain HTTP to a TLS port and refused credentials are each an error that
// names the plugin and what to set, and never shows a secret.
func TestESTLSAndAuthRefusals(t *testing.T) {
	_, srv, ca, _ := newTLSBulkServer(t, "Basic ZGJ1czpyaWdodA==") // dbus:right
	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	cases := []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"unknown CA", map[string]any{"tls": map[string]any{"ca_file": otherCA(t)}},
			[]string{"ESOutput es", "TLS to " + srv.URL, "not signed by a trusted CA", "set tls.ca_file"}},
		{"system roots", map[string]any{},
			[]string{"ESOutput es", "not signed by a trusted CA", "set tls.ca_file"}},
		{"wrong host", map[string]any{"tls": map[string]any{"ca_file": ca, "server_name": "es.internal"}},
			[]string{"does not name this host", "tls.server_name"}},
		{"password in the URL", map[string]any{"urls": []string{"https://dbus:Url-Secret-7@" + strings.TrimPrefix(srv.URL, "https://")}},
			[]string{"ESOutput es", "not signed by a trusted CA", "dbus:xxxxx@"}},
		{"wrong password", map[string]any{"tls": map[string]any{"ca_file": ca}, "username": "dbus", "password": "Wrong-Secret-2"},
			[]string{"ESOutput es", "refused the credentials", "HTTP 401", `sent username "dbus"`, "check user/password/api_key"}},
		{"no credentials", map[string]any{"tls": map[string]any{"ca_file": ca}},
			[]string{"HTTP 401", "no credentials were sent", "check user/password/api_key"}},
		{"wrong api key", map[string]any{"tls": map[string]any{"ca_file": ca}, "api_key": "Wrong-Secret-3"},
			[]string{"HTTP 401", "sent api_key", "check user/password/api_key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.vals["urls"]; !ok {
				tc.vals["urls"] = []string{srv.URL}
			}
			tc.vals["index"] = "x"
			o := newTestOutput(t, tc.vals)
			err := o.Write(context.Background(), oneDoc())
			if err == nil {
				t.Fatal("written")
			}
			t.Logf("%v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), "Secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	// Plain HTTP to the TLS port: the server answers 400 in HTTP; the
	// request fails with the status (not a TLS error).
	o := newTestOutput(t, map[string]any{"urls": []string{plain}, "index": "x"})
	if err := o.Write(context.Background(), oneDoc()); err == nil {
		t.Fatal("plain HTTP to a TLS port written")
	}
}

// TestESSecurityConfigErrors: contradictory auth, tls with an http URL and
// a password in a URL are refused at config time without showing it.
func TestESSecurityConfigErrors(t *testing.T) {
	reg := engine.NewRegistry()
	Register(reg)
	cases := []struct {
		name string
		vals map[string]any
		want string
	}{
		{"api key and user", map[string]any{"urls": []string{"https://h:9200"}, "api_key": "k-Secret-4", "username": "u"}, "set api_key or username/password, not both"},
		{"password alone", map[string]any{"urls": []string{"https://h:9200"}, "password": "p-Secret-5"}, "password without username"},
		{"tls over http", map[string]any{"urls": []string{"http://h:9200"}, "tls": map[string]any{"mode": "required"}}, "is not https://"},
		{"preferred", map[string]any{"urls": []string{"https://h:9200"}, "tls": map[string]any{"mode": "preferred"}}, "not possible"},
		{"url password", map[string]any{"urls": []string{"ftp://u:url-Secret-6@h:9200"}}, "not an http(s) URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.vals["index"] = "x"
			c, err := engine.NewConf(reg, "es", "ESOutput", tc.vals)
			if err == nil {
				_, err = newOutput(c)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "Secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}
