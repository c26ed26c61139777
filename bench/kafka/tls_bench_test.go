package kafkabench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dbus-project/dbus/plugins/kafka/kfaketest"
	"github.com/dbus-project/dbus/plugins/mock"
)

// selfSigned writes a self-signed P-256 certificate for 127.0.0.1 (its
// own CA) to dir/ca.pem and returns the broker's listener config.
func selfSigned(b *testing.B, dir string) *tls.Config {
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
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// BenchmarkKafkaOutputTLS runs MockInput -> KafkaOutput (the shipped
// throughput profile) for n 128-byte records per path per op, once to a
// plaintext kfake cluster and once to the same kind of cluster with a
// TLS listener (verify-full against its CA), alternating which goes
// first. Rates are over the steady-state span (first record acked to the
// n-th: the TLS handshake is not counted); the ratio reported is the
// median of the per-op tls/plaintext ratios (target >= 0.8). kfake runs
// in this process, so the broker's side of TLS is paid on the same two
// cores: a pessimistic figure for dbus's own cost.
func BenchmarkKafkaOutputTLS(b *testing.B) {
	const n = 1000000
	plain := kfaketest.Start(b, 1, 4, nil)
	dir := b.TempDir()
	secure := kfaketest.Start(b, 1, 4, nil, kfake.TLS(selfSigned(b, dir)))

	// The engine builds the output; keep it to read its acked counter.
	reg, out := capturingRegistry(mock.Register, "MockInput")
	run := func(c *kfaketest.Cluster, topic, security string) (steady, cpu time.Duration) {
		return runMockToKafka(b, reg, out, n, c.SeedList(), topic, security)
	}
	tlsKeys := ", tls: {ca_file: " + filepath.Join(dir, "ca.pem") + "}"
	run(plain, "warm", "")
	run(secure, "warm", tlsKeys)

	var ratios, cpuRatios []float64
	var plainSum, tlsSum, plainCPU, tlsCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		topic := fmt.Sprintf("out%d", i)
		var ps, ts, pc, tc time.Duration
		if i%2 == 0 {
			ps, pc = run(plain, topic, "")
			ts, tc = run(secure, topic, tlsKeys)
		} else {
			ts, tc = run(secure, topic, tlsKeys)
			ps, pc = run(plain, topic, "")
		}
		plainSum += ps
		tlsSum += ts
		plainCPU += pc
		tlsCPU += tc
		ratios = append(ratios, ps.Seconds()/ts.Seconds())
		cpuRatios = append(cpuRatios, pc.Seconds()/tc.Seconds())
		b.Logf("op %d: plaintext %.2fM rec/s (%v, %.0f CPU ns/rec), tls %.2fM rec/s (%v, %.0f CPU ns/rec): ratio %.3f, CPU ratio %.3f",
			i, float64(n)/ps.Seconds()/1e6, ps.Round(time.Millisecond), float64(pc.Nanoseconds())/n,
			float64(n)/ts.Seconds()/1e6, ts.Round(time.Millisecond), float64(tc.Nanoseconds())/n, ps.Seconds()/ts.Seconds(), pc.Seconds()/tc.Seconds())
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/plainSum.Seconds(), "plain_rec/s")
	b.ReportMetric(float64(n*b.N)/tlsSum.Seconds(), "tls_rec/s")
	b.ReportMetric(median(ratios), "ratio")
	// Process CPU (kfake, franz-go, dbus) per record: less sensitive to
	// other load on the machine than the wall-clock ratio.
	b.ReportMetric(float64(plainCPU.Nanoseconds())/float64(n*b.N), "plain_cpu_ns/rec")
	b.ReportMetric(float64(tlsCPU.Nanoseconds())/float64(n*b.N), "tls_cpu_ns/rec")
	b.ReportMetric(median(cpuRatios), "cpu_ratio")
	b.ReportMetric(0, "ns/op")
}

// median of xs (sorted in place).
func median(xs []float64) float64 {
	sort.Float64s(xs)
	m := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		m = (xs[len(xs)/2-1] + m) / 2
	}
	return m
}
