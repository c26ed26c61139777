package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAPIDbcWithoutTokenAndOverTLS: dbc drives an admin API without a
// token (it sends X-Dbus-Request, which the API requires), and one over
// HTTPS that requires client certificates (-cacert, -cert, -key).
func TestAPIDbcWithoutTokenAndOverTLS(t *testing.T) {
	n := startNodeWith(t, "{}")
	run1 := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errs := run1("-addr", n.addr, "pause", "gen"); code != 0 || !n.paused("gen") {
		t.Fatalf("dbc pause without a token: %d %s", code, errs)
	}

	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name string, der []byte, key *ecdsa.PrivateKey) {
		os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		if key != nil {
			kb, _ := x509.MarshalECPrivateKey(key)
			os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		}
	}
	write("ca", caDER, nil)
	for i, name := range []string{"server", "client"} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(name, der, key)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	tn := startNodeWith(t, fmt.Sprintf("{cert_file: %s, key_file: %s, client_ca_file: %s}", f("server.crt"), f("server.key"), f("ca.crt")))
	addr := "https://" + tn.addr
	if code, _, errs := run1("-addr", addr, "-cacert", f("ca.crt"), "-cert", f("client.crt"), "-key", f("client.key"), "pause", "gen"); code != 0 || !tn.paused("gen") {
		t.Fatalf("dbc over TLS with a client certificate: %d %s", code, errs)
	}
	if code, _, errs := run1("-addr", addr, "-cacert", f("ca.crt"), "resume", "gen"); code == 0 || !strings.Contains(errs, "cannot reach") {
		t.Fatalf("dbc without a client certificate: %d %s", code, errs)
	}
	if code, _, errs := run1("-addr", tn.addr, "-cacert", f("ca.crt"), "status"); code != 2 || !strings.Contains(errs, "https://") {
		t.Fatalf("-cacert with an http address: %d %s", code, errs)
	}
}
