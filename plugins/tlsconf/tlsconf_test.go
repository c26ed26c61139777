package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	caFile = filepath.Join(dir, "ca.pem")
	keyFile = filepath.Join(dir, "key.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return caFile, caFile, keyFile
}

func TestTLSConfValidate(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeCA(t, dir)
	cases := []struct {
		name string
		cfg  Config
		opts Options
		err  string
		on   bool
		mode string
	}{
		{name: "off", cfg: Config{}, on: false},
		{name: "enabled defaults to verify-full", cfg: Config{Enabled: true}, on: true, mode: ModeVerifyFull},
		{name: "ca implies on", cfg: Config{CAFile: ca}, on: true, mode: ModeVerifyFull},
		{name: "insecure is required", cfg: Config{InsecureSkipVerify: true}, on: true, mode: ModeRequired},
		{name: "insecure contradicts verify-ca", cfg: Config{InsecureSkipVerify: true, Mode: ModeVerifyCA}, err: "contradicts"},
		{name: "unknown mode", cfg: Config{Mode: "sometimes"}, err: "unknown mode"},
		{name: "preferred refused", cfg: Config{Mode: ModePreferred}, err: "not possible"},
		{name: "preferred allowed", cfg: Config{Mode: ModePreferred}, opts: Options{AllowPreferred: true}, on: true, mode: ModePreferred},
		{name: "missing ca", cfg: Config{CAFile: filepath.Join(dir, "nope.pem")}, err: "ca_file"},
		{name: "ca not pem", cfg: Config{CAFile: key + ".x"}, err: "ca_file"},
		{name: "cert without key", cfg: Config{CertFile: cert}, err: "go together"},
		{name: "pair", cfg: Config{CertFile: cert, KeyFile: key}, on: true, mode: ModeVerifyFull},
		{name: "bad min version", cfg: Config{Enabled: true, MinVersion: "1.0"}, err: "min_version"},
	}
	os.WriteFile(key+".x", []byte("not pem"), 0o600)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.Validate(tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.On() != tc.on || (tc.on && c.Mode != tc.mode) {
				t.Fatalf("on=%v mode=%q, want %v %q", c.On(), c.Mode, tc.on, tc.mode)
			}
			tc2, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			if (tc2 != nil) != tc.on {
				t.Fatalf("Build returned %v for on=%v", tc2, tc.on)
			}
			if tc2 != nil && tc2.MinVersion < tls.VersionTLS12 {
				t.Fatalf("min version %x", tc2.MinVersion)
			}
		})
	}
}

// A key file's content never appears in an error.
func TestTLSConfErrorsNameFilesNotContent(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	secret := "-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
	os.WriteFile(ca, []byte(secret), 0o600)
	c := Config{CAFile: ca, CertFile: ca, KeyFile: ca}
	err := c.Validate(Options{})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "SECRETMATERIAL") {
		t.Fatalf("error leaks file content: %v", err)
	}
}
