package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
)

// TestKafkaSecurityDbusdCheck runs dbusd -t itself against kfake brokers
// with TLS listeners (certificates from .ci/certs.sh, openssl), SASL
// SCRAM users and ACLs: a good config passes, and an unknown CA, an
// expired or wrong-host certificate, a wrong password and a missing ACL
// each fail with the plugin, the broker and what to check, never the
// password. -t -offline does not probe.
func TestKafkaSecurityDbusdCheck(t *testing.T) {
	dir := testenv.Require(t, testenv.EnvTLSDir, "test certificates (.ci/certs.sh)")
	listener := func(name string) kfake.Opt {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		return kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	allow := func(op kmsg.ACLOperation, topic string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	const scram = "SCRAM-SHA-256"
	good := kfaketest.Start(t, 1, 1, []string{"orders", "audit"}, listener("server"),
		kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser(scram, "admin", "admin-pw"),
		kfake.User(scram, "dbus", "right-pw", allow(kmsg.ACLOperationAll, "orders"),
			allow(kmsg.ACLOperationDescribe, "audit"), allow(kmsg.ACLOperationRead, "audit")))
	expired := kfaketest.Start(t, 1, 1, []string{"orders"}, listener("expired"))
	wrongHost := kfaketest.Start(t, 1, 1, []string{"orders"}, listener("wronghost"))

	ca := filepath.Join(dir, "ca.pem")
	pwFile := filepath.Join(t.TempDir(), "kafka.password")
	if err := os.WriteFile(pwFile, []byte("right-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_TEST_KAFKA_PW", "wrong-pw")
	conf := func(seed, topic, tlsKeys, sasl string) string {
		s := fmt.Sprintf("inputs:\n  - {name: src, class: MockInput, count: 1}\noutputs:\n  - name: kafka_out\n    class: KafkaOutput\n    match: [src]\n    brokers: [%s]\n    topic: %s\n    connect_timeout: 3s\n    tls: %s\n", seed, topic, tlsKeys)
		if sasl != "" {
			s += "    sasl: " + sasl + "\n"
		}
		return s
	}
	saslFile := "{mechanism: SCRAM-SHA-256, user: dbus, password: \"${file:" + pwFile + "}\"}"
	saslWrong := "{mechanism: SCRAM-SHA-256, user: dbus, password: \"${env:DBUS_TEST_KAFKA_PW}\"}"
	seed := good.Seeds[0]
	cases := []struct {
		name, yaml string
		offline    bool
		want       []string // nil: -t passes
	}{
		{"SASL_SSL good", conf(seed, "orders", "{ca_file: "+ca+"}", saslFile), false, nil},
		{"unknown CA", conf(seed, "orders", "{ca_file: "+filepath.Join(dir, "other-ca.pem")+"}", saslFile), false,
			[]string{"kafka_out (KafkaOutput): brokers: " + seed + ": ", "certificate signed by unknown authority", "check tls.ca_file"}},
		{"expired certificate", conf(expired.Seeds[0], "orders", "{ca_file: "+ca+"}", ""), false,
			[]string{"kafka_out (KafkaOutput): brokers: " + expired.Seeds[0] + ": ", "expired", "renew"}},
		{"wrong host verify-full", conf(wrongHost.Seeds[0], "orders", "{ca_file: "+ca+"}", ""), false,
			[]string{"kafka_out (KafkaOutput): brokers: " + wrongHost.Seeds[0] + ": ", "127.0.0.1", "tls.server_name", "verify-ca"}},
		{"wrong host verify-ca", conf(wrongHost.Seeds[0], "orders", "{ca_file: "+ca+", mode: verify-ca}", ""), false, nil},
		{"wrong password", conf(seed, "orders", "{ca_file: "+ca+"}", saslWrong), false,
			[]string{"kafka_out (KafkaOutput)", seed, `SASL SCRAM-SHA-256 authentication failed for user "dbus"`, "check sasl.user/password"}},
		{"wrong password offline", conf(seed, "orders", "{ca_file: "+ca+"}", saslWrong), true, nil},
		{"missing WRITE ACL", conf(seed, "audit", "{ca_file: "+ca+"}", saslFile), false,
			[]string{"kafka.yaml:8: kafka_out (KafkaOutput): topic: " + seed, `topic "audit"`, "TOPIC_AUTHORIZATION_FAILED", "User:dbus may not WRITE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "kafka.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-t", "-conf", f}
			if tc.offline {
				args = []string{"-t", "-offline", "-conf", f}
			}
			var out, errb bytes.Buffer
			code := run(args, &out, &errb)
			msg := out.String() + errb.String()
			if tc.want == nil {
				if code != 0 {
					t.Fatalf("dbusd %s = %d, want 0:\n%s", strings.Join(args, " "), code, msg)
				}
				return
			}
			if code == 0 {
				t.Fatalf("dbusd %s passed, want a failure saying %q:\n%s", strings.Join(args, " "), tc.want, msg)
			}
			t.Log(msg)
			for _, w := range append([]string{"config invalid", f}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("dbusd -t output does not say %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "right-pw") || strings.Contains(msg, "wrong-pw") {
				t.Errorf("dbusd -t output shows the password:\n%s", msg)
			}
		})
	}
}
