package es

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// Security of the connection to the cluster: the shared tls: block
// (custom CA, client certificate, server name, verify modes) and one of
// basic auth (username, password) or an API key (sent as
// "Authorization: ApiKey <api_key>"). Secrets are marked in the spec and
// never appear in errors: URLs are shown without their password.

// configureSecurity validates the auth settings and the tls block and
// sets the transport's TLS configuration.
func (o *Output) configureSecurity(c *engine.Conf, tr *http.Transport) error {
	if o.apiKey != "" && (o.user != "" || o.password != "") {
		return c.Errorf("api_key", "set api_key or username/password, not both")
	}
	if o.password != "" && o.user == "" {
		return c.Errorf("password", "password without username")
	}
	tcfg, err := tlsconf.FromConf(c, tlsconf.Options{})
	if err != nil {
		return err
	}
	o.tlsMode = tcfg.Mode
	o.shown = make([]string, len(o.urls))
	for i, raw := range o.urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return c.Errorf("urls", "%q is not a URL", redactURL(raw))
		}
		o.shown[i] = u.Redacted()
		if tcfg.On() && u.Scheme != "https" {
			return c.Errorf("urls", "tls is set but %s is not https://", o.shown[i])
		}
	}
	tc, err := tcfg.Build()
	if err != nil {
		return c.Errorf("tls", "%v", err)
	}
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	return nil
}

// redactURL hides the password of a URL that does not parse.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "<redacted>" + s[i:]
		}
	}
	return s
}

// authError is the error of a request the cluster refused for its
// credentials (401) or permissions (403).
func (o *Output) authError(url string, status int, body []byte) error {
	what := "refused the credentials"
	if status == http.StatusForbidden {
		what = "denied the bulk request to these credentials (missing index privileges?)"
	}
	auth := "no credentials were sent"
	switch {
	case o.apiKey != "":
		auth = "sent api_key"
	case o.user != "":
		auth = fmt.Sprintf("sent username %q", o.user)
	}
	return fmt.Errorf("ESOutput %s: elasticsearch at %s %s (HTTP %d, %s): check user/password/api_key: %s",
		o.name, url, what, status, auth, truncate(body, 200))
}

// explainTransportError adds what to set to a TLS failure of a request.
func (o *Output) explainTransportError(url string, err error) error {
	var (
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		recHdr  tls.RecordHeaderError
	)
	hint := ""
	switch {
	case errors.As(err, &unknown):
		hint = "the server's certificate is not signed by a trusted CA: set tls.ca_file to the CA that signed it"
	case errors.As(err, &hostErr):
		hint = "the server's certificate does not name this host: set tls.server_name to a name it holds, or tls.mode: verify-ca"
	case errors.As(err, &invalid):
		hint = "the server's certificate is not valid (expired?)"
	case errors.As(err, &recHdr):
		hint = "the server did not answer in TLS: use http:// without tls, or check the port"
	default:
		return nil
	}
	return fmt.Errorf("ESOutput %s: TLS to %s (tls.mode %s): %s: %w", o.name, url, o.tlsModeOrDefault(), hint, err)
}

func (o *Output) tlsModeOrDefault() string {
	if o.tlsMode == "" {
		return "no tls block: system roots"
	}
	return o.tlsMode
}
