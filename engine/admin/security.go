package admin

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RequestHeader is the header every API request must carry when no token
// is configured (value "1"). A browser cannot add it to a cross-origin
// request without a CORS preflight, which the admin API never grants, so
// a web page on another origin cannot drive the API. dbc and the /ui/
// page send it.
const RequestHeader = "X-Dbus-Request"

// Route classes: what guard checks for each.
const (
	routeStatic  = iota // /ui/ assets, redirects: Host only
	routeMetrics        // /metrics: Host, cross-origin, token
	routeAPI            // /api/, /debug/pprof/: all checks
)

// mutationTypes are the Content-Types accepted on a request with a body
// that changes state: none of them is one a browser may send cross-site
// without a preflight (text/plain, form types).
var mutationTypes = map[string]bool{
	"application/yaml": true, "application/x-yaml": true, "text/yaml": true, "application/json": true,
}

// validateListener checks the listener settings.
func (c *Config) validateListener() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("set cert_file and key_file together (HTTPS) or neither")
	}
	if c.ClientCAFile != "" && c.CertFile == "" {
		return fmt.Errorf("client_ca_file needs cert_file and key_file: client certificates need HTTPS")
	}
	for name, d := range map[string]time.Duration{"read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout, "idle_timeout": c.IdleTimeout} {
		if d < 100*time.Millisecond || d > time.Hour {
			return fmt.Errorf("%s %s out of range [100ms, 1h]", name, d)
		}
	}
	if c.MaxConnections < 1 || c.MaxConnections > 65536 {
		return fmt.Errorf("max_connections %d out of range [1, 65536]", c.MaxConnections)
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/: \t") {
			return fmt.Errorf("allowed_hosts: %q is not a host name (no port, scheme or path)", h)
		}
	}
	for _, p := range c.AllowedPaths {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return fmt.Errorf("allowed_paths: %q must be an absolute directory other than /", p)
		}
	}
	return nil
}

// loopbackHost reports whether host (no port) names the loopback interface.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// Loopback reports whether the listen address is on the loopback
// interface only (":8714" and "0.0.0.0:8714" are not).
func (c *Config) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	return err == nil && loopbackHost(host)
}

// checkExposure refuses a listener reachable from the network that anyone
// there could drive: one off loopback needs a token or client
// certificates.
func (c *Config) checkExposure() error {
	if c.Loopback() || c.Token != "" || c.ClientCAFile != "" {
		return nil
	}
	return fmt.Errorf("listen %s is not a loopback address and no token is set: anyone who can reach it could reload the pipeline; "+
		"set admin.token_file (or admin.token), or admin.client_ca_file with cert_file and key_file, or listen on 127.0.0.1", c.Listen)
}

// WithListen returns c listening on addr (dbusd -admin ADDR), checked as
// the admin: section's listen would be.
func (c Config) WithListen(addr string) (Config, error) {
	c.Listen = addr
	if err := validateListen(addr); err != nil {
		return c, err
	}
	return c, c.checkExposure()
}

// tlsConfig loads the certificate (and client CA) for an HTTPS listener;
// nil when cert_file is not set.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("admin: cert_file %s / key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("admin: client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("admin: client_ca_file %s holds no PEM certificate", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// hostAllowed is the DNS rebinding check: on a loopback listener the
// request's Host must be localhost, an IP address, or one of
// allowed_hosts (a page of attacker.example rebound to 127.0.0.1 sends
// Host: attacker.example). Off loopback, allowed_hosts, when set, limits
// the names too.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true // an IP literal cannot be rebound
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(host, strings.TrimSuffix(h, ".")) {
			return true
		}
	}
	return !s.cfg.Loopback() && len(s.cfg.AllowedHosts) == 0
}

// crossOrigin refuses a request a browser sent from another origin:
// net/http's CrossOriginProtection for unsafe methods (Sec-Fetch-Site,
// else Origin against Host), and the same rule for GET and HEAD, whose
// answers here reveal pipeline data or open a tap.
func (s *Server) crossOrigin(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return err
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return nil
	case "":
	default:
		return fmt.Errorf("cross-origin request (Sec-Fetch-Site: %s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		// Origin is scheme://host[:port]; compare its host with Host.
		host := o
		if i := strings.Index(o, "://"); i >= 0 {
			host = o[i+3:]
		}
		if o == "null" || !strings.EqualFold(host, r.Host) {
			return fmt.Errorf("cross-origin request (Origin %s, Host %s)", o, r.Host)
		}
	}
	return nil
}

// guard wraps a handler with the checks of its route class. Every refusal
// happens before the handler runs: a refused request changes nothing.
func (s *Server) guard(class int, h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			writeError(w, http.StatusForbidden, "Host %q refused: this admin API answers to localhost and IP addresses only "+
				"(DNS rebinding protection); add the name to admin.allowed_hosts", r.Host)
			return
		}
		if class == routeStatic {
			h(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			// No CORS: a preflight is never granted.
			writeError(w, http.StatusForbidden, "cross-origin requests are refused (no CORS)")
			return
		}
		if err := s.crossOrigin(r); err != nil {
			s.log.Warn("admin request refused", "reason", err.Error(), "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "%v: the admin API refuses requests from web pages of other origins", err)
			return
		}
		if s.cfg.Token != "" {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="dbus"`)
				if len(got) == 0 {
					writeError(w, http.StatusUnauthorized, "authorization required: send Authorization: Bearer <token>")
				} else {
					writeError(w, http.StatusUnauthorized, "invalid token")
				}
				return
			}
		} else if class == routeAPI && r.Header.Get(RequestHeader) != "1" {
			writeError(w, http.StatusForbidden, "send the header %s: 1 (dbc and the /ui/ page do): it proves the request does not come from a web page of another origin", RequestHeader)
			return
		}
		if class == routeAPI && !safeMethod(r.Method) {
			if code, err := checkMutationType(r); err != nil {
				writeError(w, code, "%s %s: %v", r.Method, r.URL.Path, err)
				return
			}
		}
		h(w, r)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkMutationType accepts a request that changes state only with no
// body and no Content-Type, or a body of a type in mutationTypes.
func checkMutationType(r *http.Request) (int, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength != 0 {
			return http.StatusUnsupportedMediaType, errors.New("a body needs Content-Type: application/yaml (or application/json)")
		}
		return 0, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return http.StatusUnsupportedMediaType, fmt.Errorf("bad Content-Type %q: %v", ct, err)
	}
	if !mutationTypes[mt] {
		return http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %s refused: send application/yaml (or application/json)", mt)
	}
	return 0, nil
}

// ConnStats reports the admin listener's open connections and the most
// open at once since start (max_connections bounds both).
func (s *Server) ConnStats() (open, peak int64) {
	if s == nil || s.lim == nil {
		return 0, 0
	}
	return s.lim.open.Load(), s.lim.peak.Load()
}

// Evictions reports how many connections still sending their request (or
// idle) were closed to make room for a new one at max_connections.
func (s *Server) Evictions() int64 {
	if s == nil || s.lim == nil {
		return 0
	}
	return s.lim.evict.Load()
}
