package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// writeTestCerts writes to dir, with crypto/x509, the files .ci/certs.sh writes (same
// names): ca.pem, server.pem/key (localhost, 127.0.0.1), client.pem/key,
// expired.pem/key, wronghost.pem/key (wrong.example) and other-ca.pem.
// P-256 keys: a few milliseconds.
func writeTestCerts(dir string) error {
	newKey := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	write := func(name string, der []byte, key *ecdsa.PrivateKey) error {
		if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	}
	now := time.Now()
	serial := int64(1)
	mkCA := func(name, cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
		key := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		if err := write(name, der, key); err != nil {
			return nil, nil, err
		}
		ca, err := x509.ParseCertificate(der)
		return ca, key, err
	}
	ca, caKey, err := mkCA("ca", "dbus test CA")
	if err != nil {
		return err
	}
	if _, _, err := mkCA("other-ca", "dbus other test CA"); err != nil {
		return err
	}
	sign := func(name, cn string, dns []string, ips []net.IP, from, to time.Time, eku x509.ExtKeyUsage) error {
		key := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: from, NotAfter: to, DNSNames: dns, IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		return write(name, der, key)
	}
	lo := []net.IP{net.ParseIP("127.0.0.1")}
	for _, err := range []error{
		sign("server", "localhost", []string{"localhost"}, lo, now.Add(-time.Hour), now.Add(24*time.Hour), x509.ExtKeyUsageServerAuth),
		sign("client", "dbus-client", nil, nil, now.Add(-time.Hour), now.Add(24*time.Hour), x509.ExtKeyUsageClientAuth),
		sign("expired", "localhost", []string{"localhost"}, lo, now.Add(-48*time.Hour), now.Add(-24*time.Hour), x509.ExtKeyUsageServerAuth),
		sign("wronghost", "wrong.example", []string{"wrong.example"}, nil, now.Add(-time.Hour), now.Add(24*time.Hour), x509.ExtKeyUsageServerAuth),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func certDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeTestCerts(dir); err != nil {
		t.Fatalf("test certificates: %v", err)
	}
	return dir
}

// opensslCertDir returns a directory of certificates made by .ci/certs.sh
// (DBUS_TEST_TLS_DIR when CI made them already); it skips without openssl
// locally and fails under CI.
func opensslCertDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(testenv.EnvTLSDir); d != "" {
		if _, err := os.Stat(filepath.Join(d, "ca.pem")); err == nil {
			return d
		}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		if testenv.CI() {
			t.Fatal("openssl not found: CI must provide it (apt-get install -y openssl)")
		}
		t.Skip("openssl not found: no certificates from .ci/certs.sh")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "certs.sh")
	dir := t.TempDir()
	if out, err := exec.Command("bash", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", script, dir, err, out)
	}
	return dir
}

// serverTLS is a broker's listener config with the named certificate.
func serverTLS(t testing.TB, dir, name string, requireClient bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if requireClient {
		pemCA, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemCA)
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc
}

// secureRoundTrip runs MockInput -> KafkaOutput -> broker -> KafkaInput ->
// Recorder with the given security keys (a YAML flow map's inside) on
// both Kafka plugins and checks that all n records came back.
func secureRoundTrip(t *testing.T, c *kfaketest.Cluster, topic, security string) {
	t.Helper()
	const n = 2000
	rec := mock.NewRecorder()
	reg := testRegistry(t, rec)
	r := startEngine(t, reg, fmt.Sprintf(`
engine: {checkpoint_interval: 50ms}
inputs:
  - {name: src, class: MockInput, count: %[1]d, keys: 17, payload: 100}
  - {name: kin, class: KafkaInput, brokers: %[2]s, topics: [%[3]s], group: g-%[3]s, start: oldest, %[4]s}
outputs:
  - {name: kout, class: KafkaOutput, match: [src], brokers: %[2]s, topic: %[3]s, linger: 2ms, %[4]s}
  - {name: rec, class: Recorder, match: [kin]}
`, n, c.SeedList(), topic, security), nil)
	waitFor(t, testenv.Scaled(60*time.Second), "all records consumed back", func() bool { return rec.Len() >= n })
	r.stop(t)
	seen := map[string]bool{}
	for _, p := range rec.Payloads() {
		seen[string(p)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct payloads consumed back, want %d", len(seen), n)
	}
}

func TestKafkaTLSEndToEnd(t *testing.T) {
	dir := certDir(t)
	c := kfaketest.Start(t, 1, 3, []string{"sec"}, kfake.TLS(serverTLS(t, dir, "server", false)))
	secureRoundTrip(t, c, "sec", fmt.Sprintf("tls: {ca_file: %s}", filepath.Join(dir, "ca.pem")))
}

// Mutual TLS: the broker requires a client certificate signed by the CA.
func TestKafkaTLSClientCertificate(t *testing.T) {
	dir := certDir(t)
	c := kfaketest.Start(t, 1, 3, []string{"mtls"}, kfake.TLS(serverTLS(t, dir, "server", true)))
	secureRoundTrip(t, c, "mtls", fmt.Sprintf("tls: {ca_file: %s, cert_file: %s, key_file: %s}",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")))
	// Without the client certificate, dbusd -t refuses the config.
	err := buildErr(t, outputYAML(c.Seeds[0], "mtls", "tls: {ca_file: "+filepath.Join(dir, "ca.pem")+"}"))
	wantBuildErr(t, err, c.Seeds[0], "tls.cert_file/key_file")
}

func TestKafkaSASLEndToEnd(t *testing.T) {
	for _, mech := range []string{saslPlain, saslScram256, saslScram512} {
		t.Run(mech, func(t *testing.T) {
			c := kfaketest.Start(t, 1, 3, []string{"s"}, kfake.EnableSASL(), kfake.Superuser(mech, "dbus", "s3cret!"))
			secureRoundTrip(t, c, "s", fmt.Sprintf("sasl: {mechanism: %s, user: dbus, password: \"s3cret!\"}", mech))
		})
	}
}

// The managed-Kafka shape (SASL_SSL): SCRAM over TLS, password from the
// environment.
func TestKafkaSASLOverTLSEndToEnd(t *testing.T) {
	dir := certDir(t)
	t.Setenv("DBUS_TEST_KAFKA_PASSWORD", "pa55word")
	c := kfaketest.Start(t, 1, 3, []string{"ssl"}, kfake.TLS(serverTLS(t, dir, "server", false)),
		kfake.EnableSASL(), kfake.Superuser(saslScram512, "svc", "pa55word"))
	secureRoundTrip(t, c, "ssl", fmt.Sprintf("tls: {ca_file: %s}, sasl: {mechanism: SCRAM-SHA-512, user: svc, password: \"${env:DBUS_TEST_KAFKA_PASSWORD}\"}",
		filepath.Join(dir, "ca.pem")))
}

// The certificates .ci/certs.sh makes with openssl work as the Go-made
// ones do: a round trip over TLS, and the other CA refused.
func TestKafkaTLSOpenSSLCerts(t *testing.T) {
	dir := opensslCertDir(t)
	c := kfaketest.Start(t, 1, 3, []string{"ossl"}, kfake.TLS(serverTLS(t, dir, "server", false)))
	secureRoundTrip(t, c, "ossl", fmt.Sprintf("tls: {ca_file: %s}", filepath.Join(dir, "ca.pem")))
	err := buildErr(t, outputYAML(c.Seeds[0], "ossl", "tls: {ca_file: "+filepath.Join(dir, "other-ca.pem")+"}"))
	wantBuildErr(t, err, c.Seeds[0], "unknown authority", "check tls.ca_file")

	e := kfaketest.Start(t, 1, 1, nil, kfake.TLS(serverTLS(t, dir, "expired", false)))
	err = buildErr(t, outputYAML(e.Seeds[0], "ossl", "tls: {ca_file: "+filepath.Join(dir, "ca.pem")+"}"))
	wantBuildErr(t, err, e.Seeds[0], "expired")
}

func outputYAML(seed, topic, security string) string {
	return fmt.Sprintf("inputs:\n  - {name: src, class: MockInput, count: 1}\noutputs:\n  - {name: kafka_out, class: KafkaOutput, match: [src], brokers: [%s], topic: %s, connect_timeout: 3s, %s}\n", seed, topic, security)
}

func inputYAML(seed, topic, security string) string {
	return fmt.Sprintf("inputs:\n  - {name: kafka_in, class: KafkaInput, brokers: [%s], topics: [%s], connect_timeout: 3s, %s}\noutputs:\n  - {name: o, class: MockOutput, match: [kafka_in]}\n", seed, topic, security)
}

// wantBuildErr checks a dbusd -t error: located in the file, naming the
// plugin and the broker, and saying each of wants.
func wantBuildErr(t *testing.T, err error, broker string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("config accepted, want an error")
	}
	msg := err.Error()
	t.Log(msg)
	for _, w := range append([]string{"bad.yaml:", "(Kafka", broker}, wants...) {
		if !strings.Contains(msg, w) {
			t.Fatalf("error does not say %q:\n%s", w, msg)
		}
	}
}

// dbusd -t (a build with check_seeds) reports every TLS, SASL and ACL
// failure with the plugin, the broker and what to check, within the
// connect timeout.
func TestKafkaSecurityBuildErrors(t *testing.T) {
	dir := certDir(t)
	ca := filepath.Join(dir, "ca.pem")
	good := kfaketest.Start(t, 1, 1, []string{"t"}, kfake.TLS(serverTLS(t, dir, "server", false)))
	expired := kfaketest.Start(t, 1, 1, []string{"t"}, kfake.TLS(serverTLS(t, dir, "expired", false)))
	wrongHost := kfaketest.Start(t, 1, 1, []string{"t"}, kfake.TLS(serverTLS(t, dir, "wronghost", false)))
	plainBroker := kfaketest.Start(t, 1, 1, []string{"t"})
	topicACL := func(op kmsg.ACLOperation, topic string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	sasl := kfaketest.Start(t, 1, 1, []string{"t", "ro", "hidden"}, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(saslScram256, "admin", "admin"),
		kfake.User(saslScram256, "x", "right-pw", topicACL(kmsg.ACLOperationAll, "t"),
			topicACL(kmsg.ACLOperationDescribe, "ro"), topicACL(kmsg.ACLOperationRead, "ro"),
			kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: "gx", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true},
			kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: "gdesc", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	scram := func(user, pw string) string {
		return fmt.Sprintf("sasl: {mechanism: SCRAM-SHA-256, user: %s, password: %q}", user, pw)
	}

	cases := []struct {
		name, yaml, broker string
		want               []string // nil: builds
	}{
		{"verify-full good", outputYAML(good.Seeds[0], "t", "tls: {ca_file: "+ca+"}"), "", nil},
		{"unknown CA", outputYAML(good.Seeds[0], "t", "tls: {ca_file: "+filepath.Join(dir, "other-ca.pem")+"}"), good.Seeds[0],
			[]string{"kafka_out (KafkaOutput): brokers: " + good.Seeds[0] + ": ", "certificate signed by unknown authority", "(check tls.ca_file"}},
		{"system roots", outputYAML(good.Seeds[0], "t", "tls: {enabled: true}"), good.Seeds[0], []string{"unknown authority", "check tls.ca_file"}},
		{"expired", outputYAML(expired.Seeds[0], "t", "tls: {ca_file: "+ca+"}"), expired.Seeds[0], []string{"expired", "renew"}},
		{"wrong host verify-full", outputYAML(wrongHost.Seeds[0], "t", "tls: {ca_file: "+ca+"}"), wrongHost.Seeds[0],
			[]string{"x509: cannot validate certificate for 127.0.0.1", "tls.server_name", "verify-ca"}},
		{"wrong host verify-ca", outputYAML(wrongHost.Seeds[0], "t", "tls: {ca_file: "+ca+", mode: verify-ca}"), "", nil},
		{"wrong host server_name", outputYAML(wrongHost.Seeds[0], "t", "tls: {ca_file: "+ca+", server_name: wrong.example}"), "", nil},
		{"verify-ca still checks the chain", outputYAML(wrongHost.Seeds[0], "t", "tls: {ca_file: "+filepath.Join(dir, "other-ca.pem")+", mode: verify-ca}"), wrongHost.Seeds[0],
			[]string{"unknown authority", "check tls.ca_file"}},
		{"tls to a plaintext broker", outputYAML(plainBroker.Seeds[0], "t", "tls: {ca_file: "+ca+"}"), plainBroker.Seeds[0], []string{"no TLS handshake", "speaks TLS there"}},
		{"no tls to a tls broker", outputYAML(good.Seeds[0], "t", "sasl: {mechanism: PLAIN, user: a, password: b}"), good.Seeds[0], nil},
		{"sasl good output", outputYAML(sasl.Seeds[0], "t", scram("x", "right-pw")), "", nil},
		{"sasl good input", inputYAML(sasl.Seeds[0], "ro", scram("x", "right-pw")), "", nil},
		{"sasl good input group", inputYAML(sasl.Seeds[0], "ro", "group: gx, "+scram("x", "right-pw")), "", nil},
		{"missing group ACL", inputYAML(sasl.Seeds[0], "ro", "group: gnone, "+scram("x", "right-pw")), sasl.Seeds[0],
			[]string{"kafka_in (KafkaInput): group: ", `group "gnone"`, "GROUP_AUTHORIZATION_FAILED", "User:x may not READ it"}},
		{"group DESCRIBE only", inputYAML(sasl.Seeds[0], "ro", "group: gdesc, "+scram("x", "right-pw")), sasl.Seeds[0],
			[]string{`group "gdesc"`, "User:x may not READ it", "READ on group gdesc"}},
		{"wrong password", outputYAML(sasl.Seeds[0], "t", scram("x", "wrong-pw")), sasl.Seeds[0],
			[]string{"kafka_out (KafkaOutput): sasl: ", `SASL SCRAM-SHA-256 authentication failed for user "x" (check sasl.user/password)`}},
		{"unknown user", inputYAML(sasl.Seeds[0], "t", scram("nobody", "pw")), sasl.Seeds[0],
			[]string{"kafka_in (KafkaInput)", `authentication failed for user "nobody"`}},
		{"wrong mechanism", outputYAML(sasl.Seeds[0], "t", "sasl: {mechanism: SCRAM-SHA-512, user: x, password: right-pw}"), sasl.Seeds[0],
			[]string{"SCRAM-SHA-512"}},
		{"missing WRITE ACL", outputYAML(sasl.Seeds[0], "ro", scram("x", "right-pw")), sasl.Seeds[0],
			[]string{"kafka_out (KafkaOutput): topic: ", `topic "ro"`, "TOPIC_AUTHORIZATION_FAILED", "User:x may not WRITE"}},
		{"missing DESCRIBE ACL", inputYAML(sasl.Seeds[0], "hidden", scram("x", "right-pw")), sasl.Seeds[0],
			[]string{"kafka_in (KafkaInput): topics: ", `topic "hidden"`, "TOPIC_AUTHORIZATION_FAILED", "User:x may not DESCRIBE", "READ on topic hidden"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := buildErr(t, tc.yaml)
			if d := time.Since(start); d > testenv.Scaled(5*time.Second) {
				t.Errorf("build took %v", d)
			}
			if tc.broker == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			wantBuildErr(t, err, tc.broker, tc.want...)
			if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "right-pw") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// Start (no build-time check) surfaces a SASL failure clearly too.
func TestKafkaSASLStartError(t *testing.T) {
	c := kfaketest.Start(t, 1, 1, []string{"t"}, kfake.EnableSASL(), kfake.Superuser(saslPlain, "u", "good"))
	reg := testRegistry(t, nil)
	conf, err := engine.NewConf(reg, "out", "KafkaOutput", map[string]any{"brokers": c.Seeds, "topic": "t", "check_seeds": false,
		"connect_timeout": 3 * time.Second, "sasl": map[string]any{"mechanism": "PLAIN", "user": "u", "password": "bad"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutput(conf)
	if err != nil {
		t.Fatal(err)
	}
	err = o.Start(t.Context())
	if err == nil {
		o.Close(t.Context())
		t.Fatal("Start with a wrong password succeeded")
	}
	for _, w := range []string{"kafka output out", `SASL PLAIN authentication failed for user "u"`, "check sasl.user/password"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("Start error does not say %q: %v", w, err)
		}
	}
	if strings.Contains(err.Error(), "bad") && strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestKafkaSASLConfigErrors(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("tok\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	cases := []struct{ sasl, want string }{
		{"{mechanism: GSSAPI, user: a, password: b}", "unknown mechanism"},
		{"{user: a, password: b}", "mechanism is required"},
		{"{mechanism: PLAIN, user: a}", "needs user and password"},
		{"{mechanism: scram-sha-256, user: a, password: b, token_file: " + tok + "}", "token_file is for OAUTHBEARER"},
		{"{mechanism: OAUTHBEARER}", "needs token_file"},
		{"{mechanism: OAUTHBEARER, token_file: " + tok + ", password: x}", "not password"},
		{"{mechanism: OAUTHBEARER, token_file: " + empty + "}", "is empty"},
		{"{mechanism: OAUTHBEARER, token_file: /nonexistent/token}", "no such file"},
		{"{mechanism: PLAIN, user: a, pasword: b}", "pasword"},
	}
	for _, tc := range cases {
		err := buildErr(t, outputYAML("127.0.0.1:1", "t", "check_seeds: false, sasl: "+tc.sasl))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "kafka_out (KafkaOutput): sasl") {
			t.Errorf("sasl %s: error %v, want it to say %q", tc.sasl, err, tc.want)
		}
	}
	if err := buildErr(t, outputYAML("127.0.0.1:1", "t", "check_seeds: false, sasl: {mechanism: OAUTHBEARER, token_file: "+tok+"}")); err != nil {
		t.Fatalf("OAUTHBEARER with a token file rejected: %v", err)
	}
	// The password is a secret in the spec: never shown.
	spec, _ := testRegistry(t, nil).Lookup("KafkaOutput")
	f, ok := spec.Field("sasl")
	if !ok || len(f.SecretKeys) != 1 || f.SecretKeys[0] != "password" {
		t.Fatalf("sasl field %+v: password not marked secret", f)
	}
}

// The OAUTHBEARER token is read at every authentication: a rotated file
// is used by the next connection.
func TestKafkaSASLOAuthTokenRotation(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("first-token\n"), 0o600)
	m := saslConf{Mechanism: saslOAuthBearer, TokenFile: tok}.mechanism()
	first := func() string {
		_, msg, err := m.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}
	if s := first(); !strings.Contains(s, "auth=Bearer first-token") {
		t.Fatalf("first message %q", s)
	}
	os.WriteFile(tok, []byte("second-token"), 0o600)
	if s := first(); !strings.Contains(s, "auth=Bearer second-token") {
		t.Fatalf("after rotation: %q", s)
	}
	os.Remove(tok)
	if _, _, err := m.Authenticate(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Fatalf("missing token file: %v", err)
	}
}

// A topic rendered from a template is known only at run time: a produce
// refused by an ACL fails the packets (not retryable) with an error
// naming the topic, the principal and the operation.
func TestKafkaACLProduceError(t *testing.T) {
	acl := func(op kmsg.ACLOperation, topic string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	c := kfaketest.Start(t, 1, 1, []string{"t", "shop"}, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(saslScram256, "admin", "admin"),
		kfake.User(saslScram256, "x", "pw", acl(kmsg.ACLOperationAll, "t"), acl(kmsg.ACLOperationDescribe, "shop")))
	reg := testRegistry(t, nil)
	conf, err := engine.NewConf(reg, "out", "KafkaOutput", map[string]any{"brokers": c.Seeds, "topic": "{db}",
		"linger": time.Millisecond, "sasl": map[string]any{"mechanism": saslScram256, "user": "x", "password": "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOutput(conf) // -t passes: the topic is a template
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	done := make(chanCompletion, 1)
	o.WriteAsync(ctx, testBatch(4), done)
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("no completion")
	}
	if err == nil {
		t.Fatal("produce without a WRITE ACL succeeded")
	}
	for _, w := range []string{"kafka output out", "produce to shop", "TOPIC_AUTHORIZATION_FAILED", "User:x may not WRITE topic shop"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error does not say %q: %v", w, err)
		}
	}
	var be *engine.BatchError
	if !errors.As(err, &be) || be.Errs[0] == nil || !(Permanent(be.Errs[0]) || engine.IsPermanent(be.Errs[0])) {
		t.Fatalf("authorization failure not marked permanent: %v", err)
	}
}
