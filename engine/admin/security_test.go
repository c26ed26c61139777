package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine/admin"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/stream"
	"gopkg.in/yaml.v3"
)

// mutations are the requests that change the pipeline or reveal its data.
func mutations() [][3]string {
	return [][3]string{
		{"POST", "/api/v1/reload", fmt.Sprintf(basePipeline, "evil")},
		{"POST", "/api/v1/reload", ""},
		{"POST", "/api/v1/inputs/gen/pause", ""},
		{"POST", "/api/v1/inputs/gen/resume", ""},
		{"GET", "/api/v1/tap/gen?max=1", ""},
		{"GET", "/api/v1/config", ""},
		{"GET", "/api/v1/plugins/gen/query", ""},
		{"GET", "/api/v1/dag", ""},
		{"GET", "/api/v1/checkpoints", ""},
	}
}

// unchanged fails the test when the pipeline changed since gen0: another
// generation, a paused input, a tap started.
func (h *harness) unchanged(gen0 int64) {
	h.t.Helper()
	if g := h.sup.Generation(); g != gen0 {
		h.t.Fatalf("generation %d, want %d: a refused request changed the pipeline", g, gen0)
	}
	if h.node("gen").Paused {
		h.t.Fatalf("input gen paused by a refused request")
	}
	if n := h.srv.TapsStarted(); n != 0 {
		h.t.Fatalf("%d taps started by refused requests", n)
	}
}

func TestAPICrossOriginRequestsRefused(t *testing.T) {
	h := start(t, hopts{section: "{tap: {enabled: true}}", file: true})
	gen0 := h.sup.Generation()
	attacks := [][]string{
		{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://localhost:3000", "Sec-Fetch-Site", "same-site"}, // another port: another origin
		{"Origin", "http://evil.example"},                                  // a browser without Sec-Fetch-*
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
	}
	for _, m := range mutations() {
		for _, a := range attacks {
			code, b := h.do(m[0], m[1], m[2], a...)
			if code != http.StatusForbidden {
				t.Fatalf("%s %s with %v: %d, want 403: %s", m[0], m[1], a, code, b)
			}
			h.wantError(code, b, 403, "origin")
		}
	}
	h.unchanged(gen0)
	// The same requests from the same origin pass.
	same := h.base
	if code, b := h.do("POST", "/api/v1/inputs/gen/pause", "", "Origin", same, "Sec-Fetch-Site", "same-origin"); code != 200 {
		t.Fatalf("same-origin pause: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/inputs/gen/resume", "", "Origin", same); code != 200 {
		t.Fatalf("same-origin resume (Origin only): %d %s", code, b)
	}
}

func TestAPIPreflightNeverGranted(t *testing.T) {
	h := start(t, hopts{})
	req, _ := http.NewRequest("OPTIONS", h.base+"/api/v1/reload", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-dbus-request, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("preflight: %d, want 403", resp.StatusCode)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Fatalf("preflight answered with CORS header %s", k)
		}
	}
}

func TestAPIHostCheckedAgainstDNSRebinding(t *testing.T) {
	h := start(t, hopts{section: "{allowed_hosts: [dbus.internal]}"})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(h.base, "http://"))
	for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil.example"} {
		for _, path := range []string{"/api/v1/status", "/ui/", "/metrics"} {
			code, b := h.do("GET", path, "", "Host", host)
			h.wantError(code, b, 403, "DNS rebinding")
		}
		code, b := h.do("POST", "/api/v1/inputs/gen/pause", "", "Host", host)
		h.wantError(code, b, 403, "admin.allowed_hosts")
	}
	if h.node("gen").Paused {
		t.Fatal("a request with a bad Host paused the input")
	}
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "dbus.internal:" + port, "DBUS.internal"} {
		if code, b := h.do("GET", "/api/v1/status", "", "Host", host); code != 200 {
			t.Fatalf("Host %s: %d %s", host, code, b)
		}
	}
}

func TestAPIMutationContentTypes(t *testing.T) {
	h := start(t, hopts{file: true})
	gen0 := h.sup.Generation()
	body := fmt.Sprintf(basePipeline, "b")
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream", ""} {
		code, b := h.do("POST", "/api/v1/reload", body, "Content-Type", ct)
		h.wantError(code, b, 415, "application/yaml")
		code, b = h.do("POST", "/api/v1/inputs/gen/pause", "a=b", "Content-Type", ct)
		h.wantError(code, b, 415, "application/yaml")
	}
	h.unchanged(gen0)
	for _, ct := range []string{"application/yaml", "application/x-yaml", "application/json"} {
		body := fmt.Sprintf(basePipeline, ct)
		if ct == "application/json" {
			body = `{"engine": {"checkpoint_interval": "10ms"}, "inputs": [{"name": "gen", "class": "MockInput", "payload": 32, "rate": 20000}],
"outputs": [{"name": "out", "class": "Rec", "match": "gen"}]}`
		}
		if code, b := h.do("POST", "/api/v1/reload", body, "Content-Type", ct); code != 200 {
			t.Fatalf("reload as %s: %d %s", ct, code, b)
		}
	}
}

func TestAPIRequestHeaderOrTokenRequired(t *testing.T) {
	h := start(t, hopts{file: true})
	gen0 := h.sup.Generation()
	for _, m := range mutations() {
		code, b := h.do(m[0], m[1], m[2], admin.RequestHeader, "")
		h.wantError(code, b, 403, admin.RequestHeader+": 1")
	}
	code, b := h.do("GET", "/api/v1/status", "", admin.RequestHeader, "")
	h.wantError(code, b, 403, admin.RequestHeader)
	h.unchanged(gen0)
	// /metrics stays scrapable without it, /ui/ loads without it.
	for _, p := range []string{"/metrics", "/ui/"} {
		if code, _ := h.do("GET", p, "", admin.RequestHeader, ""); code != 200 {
			t.Fatalf("%s without the header: %d", p, code)
		}
	}

	// With a token, the token is what counts.
	ht := start(t, hopts{section: "{token: s3cret}"})
	ht.tok = "s3cret"
	if code, b := ht.do("POST", "/api/v1/inputs/gen/pause", "", admin.RequestHeader, ""); code != 200 {
		t.Fatalf("token without header: %d %s", code, b)
	}
	ht.tok = "wrong"
	code, b = ht.do("POST", "/api/v1/inputs/gen/resume", "")
	ht.wantError(code, b, 401, "invalid token")
	if !ht.node("gen").Paused {
		t.Fatal("a wrong token resumed the input")
	}
}

// TestAPIDbcStyleClient drives the API as dbc does: the header, a YAML
// body for reload, nothing else.
func TestAPIDbcStyleClient(t *testing.T) {
	h := start(t, hopts{file: true})
	send := func(method, path, body string) int {
		req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
		req.Header.Set("X-Dbus-Request", "1")
		if body != "" {
			req.Header.Set("Content-Type", "application/yaml")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ m, p, b string }{
		{"GET", "/api/v1/status", ""}, {"GET", "/api/v1/dag", ""}, {"POST", "/api/v1/inputs/gen/pause", ""},
		{"POST", "/api/v1/inputs/gen/resume", ""}, {"POST", "/api/v1/reload", fmt.Sprintf(basePipeline, "dbc")}, {"POST", "/api/v1/reload", ""},
	} {
		if code := send(c.m, c.p, c.b); code != 200 {
			t.Fatalf("%s %s: %d", c.m, c.p, code)
		}
	}
	if g := h.sup.Generation(); g < 2 {
		t.Fatalf("generation %d after a reload", g)
	}
}

func TestAPINonLoopbackWithoutTokenRefusedAtStart(t *testing.T) {
	h := start(t, hopts{})
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8714"} {
		srv, err := admin.Start(context.Background(), admin.Options{Supervisor: h.sup, Registry: h.reg, ListenOverride: addr, Logger: testLogger(t)})
		if err == nil {
			srv.Close()
			t.Fatalf("-admin %s without a token started", addr)
		}
		for _, want := range []string{"not a loopback address", "admin.token_file", "client_ca_file"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("-admin %s: error %q does not say %q", addr, err, want)
			}
		}
	}
	// The same from the config file, as dbusd -t checks it.
	_, err := admin.ParseSection("d.yaml", sectionNode(t, "{listen: '0.0.0.0:8714'}"))
	if err == nil || !strings.Contains(err.Error(), "d.yaml:1: admin: listen 0.0.0.0:8714 is not a loopback address") {
		t.Fatalf("ParseSection: %v", err)
	}
	for _, ok := range []string{"{listen: '0.0.0.0:8714', token: x}", "{listen: 'localhost:8714'}", "{listen: '[::1]:8714'}"} {
		if _, err := admin.ParseSection("d.yaml", sectionNode(t, ok)); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
}

// writePEM writes a certificate and its key signed by parent (self-signed
// when parent is nil) and returns the cert, key and file paths.
func writePEM(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key, cf, kf
}

func TestAPITLSListenerWithClientCertificates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey, caFile, _ := writePEM(t, dir, "ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	_, _, srvCert, srvKey := writePEM(t, dir, "server", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)
	_, _, cliCert, cliKey := writePEM(t, dir, "client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "operator"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, caKey)

	section := fmt.Sprintf("{cert_file: %s, key_file: %s, client_ca_file: %s}", srvCert, srvKey, caFile)
	h := start(t, hopts{section: section})
	h.base = strings.Replace(h.base, "http://", "https://", 1)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	pair, err := tls.LoadX509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	req, _ := http.NewRequest("GET", h.base+"/api/v1/status", nil)
	req.Header.Set(admin.RequestHeader, "1")
	resp, err := client(pair).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status over TLS with a client certificate: %d", resp.StatusCode)
	}
	if _, err := client().Do(req); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// Plain HTTP to the TLS listener gets nothing useful.
	if resp, err := http.Get(strings.Replace(h.base, "https://", "http://", 1) + "/api/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served by the TLS listener")
		}
	}
	// A non-loopback listener is allowed with client certificates only.
	if _, err := admin.ParseSection("d.yaml", sectionNode(t, "{listen: '0.0.0.0:8714', "+strings.Trim(section, "{}")+"}")); err != nil {
		t.Fatalf("non-loopback with client_ca_file: %v", err)
	}
	if _, err := admin.ParseSection("d.yaml", sectionNode(t, "{client_ca_file: "+caFile+"}")); err == nil || !strings.Contains(err.Error(), "client_ca_file needs cert_file") {
		t.Fatalf("client_ca_file without a certificate: %v", err)
	}
}

// TestAPISlowClientsBounded: many clients trickling request bodies (the
// slowloris of issue 11) hold at most max_connections descriptors, are
// cut off after read_timeout, and the API keeps answering.
func TestAPISlowClientsBounded(t *testing.T) {
	const slow, maxConns = 120, 16
	h := start(t, hopts{section: fmt.Sprintf("{max_connections: %d, read_timeout: 10s}", maxConns)})
	addr := strings.TrimPrefix(h.base, "http://")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var cutMu sync.Mutex
	var cut []time.Duration // how long each slow client was kept
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			t0 := time.Now()
			fmt.Fprintf(c, "POST /api/v1/reload HTTP/1.1\r\nHost: %s\r\nX-Dbus-Request: 1\r\nContent-Type: application/yaml\r\nContent-Length: 100000\r\n\r\n", addr)
			buf := make([]byte, 512)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			done := make(chan struct{})
			go func() { // the server's answer or close
				c.Read(buf)
				close(done)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					cutMu.Lock()
					cut = append(cut, time.Since(t0))
					cutMu.Unlock()
					return
				case <-stop:
					return
				case <-tick.C:
					c.Write([]byte("#"))
				}
			}
		}()
	}
	// While they hold every slot, an operator's request displaces the
	// oldest of them and is answered at once (not after read_timeout).
	testenv.Eventually(t, 10*time.Second, func() bool { open, _ := h.srv.ConnStats(); return open == maxConns }, "slow clients holding every connection")
	t0 := time.Now()
	var st admin.Status
	h.getJSON("/api/v1/status", &st)
	latency := time.Since(t0)
	testenv.Eventually(t, 60*time.Second, func() bool {
		cutMu.Lock()
		defer cutMu.Unlock()
		return len(cut) == slow
	}, "all %d slow clients cut off", slow)
	close(stop)
	wg.Wait()
	_, peak := h.srv.ConnStats()
	if peak > maxConns {
		t.Fatalf("%d connections open at once, max_connections %d", peak, maxConns)
	}
	var longest time.Duration
	for _, d := range cut {
		longest = max(longest, d)
	}
	// read_timeout is 10s: an answer queued behind the slow clients takes
	// at least that; displacing slow clients answers it within evictGrace
	// for each max_connections of them queued before it.
	if bound := testenv.Scaled(2 * time.Second); latency > bound {
		t.Fatalf("status took %v under %d slow clients (bound %v): the slow clients held the API", latency, slow, bound)
	}
	if ev := h.srv.Evictions(); ev == 0 {
		t.Fatalf("no slow client was displaced")
	}
	t.Logf("%d slow clients: peak %d connections (cap %d), status answered in %v, %d displaced, all cut off within %v", slow, peak, maxConns, latency, h.srv.Evictions(), longest)
}

// policyPipeline is a pipeline with a StreamInput and a StreamOutput.
const policyPipeline = `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 2000}
  - {name: lines, class: StreamInput, source: %s}
outputs:
  - {name: out, class: Rec, match: [gen, lines]}
  - {name: file, class: StreamOutput, path: %s, match: gen}
`

func TestAPIReloadCannotGainPowerOverTheFile(t *testing.T) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "out.log")
	fileCfg := fmt.Sprintf(policyPipeline, `command, command: "echo from-file"`, outFile)
	h := start(t, hopts{pipeline: fileCfg, file: true, register: stream.Register})
	gen0 := h.sup.Generation()
	refused := func(body, substr string) {
		t.Helper()
		code, b := h.do("POST", "/api/v1/reload", body)
		h.wantError(code, b, 400, substr)
		if g := h.sup.Generation(); g != gen0 {
			t.Fatalf("refused reload applied: generation %d", g)
		}
	}
	// Another command, a file outside the file's, a checkpoint dir elsewhere.
	refused(fmt.Sprintf(policyPipeline, `command, command: "id > /tmp/pwned"`, outFile), "admin.allow_commands: true")
	refused(fmt.Sprintf(policyPipeline, `file, path: /etc/passwd`, outFile), "lines.path: /etc/passwd")
	refused(fmt.Sprintf(policyPipeline, "stdin", filepath.Join(dir, "..", "elsewhere.log")), "admin.allowed_paths")
	refused(strings.Replace(fmt.Sprintf(policyPipeline, "stdin", outFile), "checkpoint_interval: 10ms", "checkpoint_interval: 10ms, checkpoint_dir: /tmp/x", 1), "engine.checkpoint_dir")
	// The settings that allow more cannot be posted.
	refused(fmt.Sprintf(policyPipeline, "stdin", outFile)+"admin: {allow_commands: true}\n", "cannot change it")
	refused(fmt.Sprintf(policyPipeline, "stdin", outFile)+"admin: {allowed_paths: [/]}\n", "cannot change it")
	// What the file has is fine.
	if code, b := h.do("POST", "/api/v1/reload", fmt.Sprintf(policyPipeline, `command, command: "echo from-file"`, outFile)+"# same\n"); code != 200 {
		t.Fatalf("the file's own command and path: %d %s", code, b)
	}

	// With the opt-in in the file: any command, paths below allowed_paths.
	dir2 := t.TempDir()
	h2 := start(t, hopts{pipeline: fmt.Sprintf(policyPipeline, "stdin", filepath.Join(dir2, "base.log")), file: true, register: stream.Register,
		section: fmt.Sprintf("{allow_commands: true, allowed_paths: [%s]}", dir2)})
	body := fmt.Sprintf(policyPipeline, `command, command: "echo posted"`, filepath.Join(dir2, "sub", "..", "out.log"))
	if code, b := h2.do("POST", "/api/v1/reload", body); code != 200 {
		t.Fatalf("allowed command and path: %d %s", code, b)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		for _, r := range h2.rec.Payloads() {
			if string(r) == "posted" {
				return true
			}
		}
		return false
	}, "the posted command's output")
	code, b := h2.do("POST", "/api/v1/reload", fmt.Sprintf(policyPipeline, "stdin", filepath.Join(dir2+"-other", "x.log")))
	h2.wantError(code, b, 400, "admin.allowed_paths")
}

// sectionNode parses an admin: section body.
func sectionNode(t *testing.T, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("admin: "+s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0].Content[1]
}
