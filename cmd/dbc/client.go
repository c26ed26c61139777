package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// client talks to one dbusd admin API.
type client struct {
	base    *url.URL
	token   string
	timeout time.Duration
	hc      *http.Client
}

func newClient(addr, token string, timeout time.Duration) (*client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("-addr %q: want host:port or http(s)://host:port", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &client{base: u, token: token, timeout: timeout, hc: &http.Client{}}, nil
}

// tlsFlags are dbc's -cacert, -cert and -key.
type tlsFlags struct{ ca, cert, key string }

// useTLS sets the CA and client certificate of an https:// admin API.
func (c *client) useTLS(f tlsFlags) error {
	if f.ca == "" && f.cert == "" && f.key == "" {
		return nil
	}
	if (f.cert == "") != (f.key == "") {
		return fmt.Errorf("-cert and -key go together")
	}
	if c.base.Scheme != "https" {
		return fmt.Errorf("-cacert/-cert need an https:// -addr (got %s)", c.base)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return fmt.Errorf("-cacert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-cacert %s holds no PEM certificate", f.ca)
		}
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return fmt.Errorf("-cert/-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	c.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	return nil
}

// apiError is an answer of 400 or more.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.code) }

// do sends a request; an answer of 400 or more becomes an *apiError with
// the API's message. The caller closes the body.
func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	// The admin API refuses requests without it (cross-origin protection).
	req.Header.Set("X-Dbus-Request", "1")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the dbusd admin API at %s: %w", c.base.Host, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &apiError{code: resp.StatusCode, msg: msg}
	}
	return resp, nil
}

// call sends a request with the client's timeout and returns the body.
func (c *client) call(method, path string, body io.Reader, ctype string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, body, ctype)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// getJSON GETs path and decodes the answer into v; it returns the raw body.
func (c *client) getJSON(path string, v any) ([]byte, error) {
	b, err := c.call(http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return b, fmt.Errorf("unexpected answer from %s: %v", path, err)
	}
	return b, nil
}
