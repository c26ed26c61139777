package kafkabench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// brokerCertFiles writes a self-signed P-256 certificate for 127.0.0.1
// (its own CA) and its key to dir; it returns the two paths.
func brokerCertFiles(b *testing.B, dir string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "broker.pem"), filepath.Join(dir, "broker.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		b.Fatal(err)
	}
	return certFile, keyFile
}

// BenchmarkKafkaOutputTLSBrokerProcess is BenchmarkKafkaOutputTLS with
// the brokers in child processes (kfake, blackhole produce), as a real
// broker would be: the broker's side of TLS (decryption) is no longer in
// the measured process, so cpu_ratio (plaintext/TLS CPU per record of
// this process only: MockInput, engine, KafkaOutput, franz-go, TLS
// encryption) is dbus's own cost of TLS. The wall-clock ratio still
// shares the machine's cores with the broker processes. Paired and
// alternating; ratios are medians of the per-op ratios (target >= 0.8).
func BenchmarkKafkaOutputTLSBrokerProcess(b *testing.B) {
	const n = 1000000
	dir := b.TempDir()
	certFile, keyFile := brokerCertFiles(b, dir)
	plain := kfaketest.StartProcess(b, kfaketest.ProcessSpec{Partitions: 4, Topics: []string{"out"}, Blackhole: true})
	secure := kfaketest.StartProcess(b, kfaketest.ProcessSpec{Partitions: 4, Topics: []string{"out"}, Blackhole: true,
		TLSCert: certFile, TLSKey: keyFile})

	reg, out := capturingRegistry(mock.Register, "MockInput")
	run := func(seeds, security string) (steady, cpu time.Duration) {
		return runMockToKafka(b, reg, out, n, seeds, "out", security)
	}
	tlsKeys := ", tls: {ca_file: " + certFile + "}"
	run(plain.SeedList(), "")
	run(secure.SeedList(), tlsKeys)

	var ratios, cpuRatios []float64
	var plainSum, tlsSum, plainCPU, tlsCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ps, ts, pc, tc time.Duration
		if i%2 == 0 {
			ps, pc = run(plain.SeedList(), "")
			ts, tc = run(secure.SeedList(), tlsKeys)
		} else {
			ts, tc = run(secure.SeedList(), tlsKeys)
			ps, pc = run(plain.SeedList(), "")
		}
		plainSum += ps
		tlsSum += ts
		plainCPU += pc
		tlsCPU += tc
		ratios = append(ratios, ps.Seconds()/ts.Seconds())
		cpuRatios = append(cpuRatios, pc.Seconds()/tc.Seconds())
		b.Logf("op %d: plaintext %.2fM rec/s (%v, %.0f dbus CPU ns/rec), tls %.2fM rec/s (%v, %.0f dbus CPU ns/rec): ratio %.3f, CPU ratio %.3f",
			i, float64(n)/ps.Seconds()/1e6, ps.Round(time.Millisecond), float64(pc.Nanoseconds())/n,
			float64(n)/ts.Seconds()/1e6, ts.Round(time.Millisecond), float64(tc.Nanoseconds())/n, ps.Seconds()/ts.Seconds(), pc.Seconds()/tc.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/plainSum.Seconds(), "plain_rec/s")
	b.ReportMetric(float64(n*b.N)/tlsSum.Seconds(), "tls_rec/s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(float64(plainCPU.Nanoseconds())/float64(n*b.N), "plain_cpu_ns/rec")
	b.ReportMetric(float64(tlsCPU.Nanoseconds())/float64(n*b.N), "tls_cpu_ns/rec")
	b.ReportMetric(median(cpuRatios), "cpu_ratio")
	b.ReportMetric(0, "ns/op")
}
