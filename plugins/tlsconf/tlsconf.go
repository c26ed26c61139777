package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dbus-project/dbus/engine"
)

// Modes of verification.
const (
	ModeVerifyFull = "verify-full"
	ModeVerifyCA   = "verify-ca"
	ModeRequired   = "required"
	ModePreferred  = "preferred"
)

// Config is the decoded `tls:` block.
type Config struct {
	Enabled            bool   `yaml:"enabled"`
	Mode               string `yaml:"mode"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	MinVersion         string `yaml:"min_version"`
}

// Key is the config key of the block.
const Key = "tls"

// Field returns the spec entry for the `tls` key.
func Field() engine.Field {
	return engine.Field{Name: Key, Type: engine.TypeAny, Doc: "TLS to the server: {enabled, mode: verify-full (default) | verify-ca | required | preferred (MySQL only), ca_file, cert_file, key_file, server_name, insecure_skip_verify, min_version: \"1.2\" | \"1.3\"}. Setting any file or mode turns it on. See plugins/tlsconf."}
}

// On reports whether TLS is to be used.
func (c Config) On() bool { return c.Enabled }

// Options for FromConf.
type Options struct {
	// AllowPreferred accepts mode: preferred (the protocol can fall back
	// to plaintext in-band, as MySQL does).
	AllowPreferred bool
}

// FromConf decodes and validates the plugin's `tls` key.
func FromConf(c *engine.Conf, opts Options) (Config, error) {
	var cfg Config
	if err := c.Decode(Key, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(opts); err != nil {
		return cfg, c.Errorf(Key, "%v", err)
	}
	return cfg, nil
}

// Validate normalises cfg (a set file or mode turns TLS on; the default
// mode) and checks it without building anything expensive twice.
func (c *Config) Validate(opts Options) error {
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.Mode != "" || c.ServerName != "" || c.InsecureSkipVerify {
		c.Enabled = true
	}
	if !c.Enabled {
		return nil
	}
	if c.InsecureSkipVerify && c.Mode != "" && c.Mode != ModeRequired {
		return fmt.Errorf("insecure_skip_verify contradicts mode %s: drop one", c.Mode)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeVerifyFull
		if c.InsecureSkipVerify {
			c.Mode = ModeRequired
		}
	case ModeVerifyFull, ModeVerifyCA, ModeRequired:
	case ModePreferred:
		if !opts.AllowPreferred {
			return errors.New("mode preferred (fall back to plaintext) is not possible for this protocol: use verify-full, verify-ca or required")
		}
	default:
		return fmt.Errorf("unknown mode %q: want verify-full, verify-ca, required or preferred", c.Mode)
	}
	switch c.MinVersion {
	case "", "1.2", "1.3":
	default:
		return fmt.Errorf("min_version %q: want \"1.2\" or \"1.3\"", c.MinVersion)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("cert_file and key_file go together (client certificate and its key)")
	}
	_, err := c.Build()
	return err
}

// Build returns the crypto/tls configuration, or nil when TLS is off.
// Files are read on every call (rotated certificates are picked up by the
// next connection a plugin builds).
func (c Config) Build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %s", scrub(err))
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	switch c.Mode {
	case ModeRequired, ModePreferred:
		// preferred, as MySQL's ssl-mode=PREFERRED: opportunistic
		// encryption; verifying would be pointless (whoever can forge a
		// certificate can as well strip TLS and get plaintext).
		tc.InsecureSkipVerify = true
	case ModeVerifyCA:
		// Verify the chain against the roots, not the host name.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

// scrub keeps an error about key material to its first line: crypto/tls
// errors name files and formats, never bytes, but be defensive.
func scrub(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
