package mysqlbinlog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	pingcaperrors "github.com/pingcap/errors"

	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// TLS to the server. The MySQL protocol negotiates TLS in-band: the
// server's greeting says whether it offers TLS (CLIENT_SSL), the client
// answers with an SSL request and both switch. Every connection of the
// input (checks, schema queries, the binlog stream) uses cfg.TLS; in mode
// preferred a server that offers no TLS is spoken to in plaintext.

// tlsFor returns the TLS configuration for connections to cfg.Addr, or
// nil for plaintext. The server name defaults to the host of addr.
func (c *Config) tlsFor() (*tls.Config, error) {
	tc, err := c.TLS.Build()
	if err != nil || tc == nil {
		return nil, err
	}
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(c.Addr)
		tc.ServerName = host
	}
	return tc, nil
}

// streamTLS is the TLS configuration of the binlog stream: as the
// preflight connection found (info.TLS), so that mode preferred does not
// try TLS on every reconnect to a server without it.
func (c *Config) streamTLS(info *serverInfo) (*tls.Config, error) {
	if c.TLS.Mode == tlsconf.ModePreferred && !info.TLS {
		return nil, nil
	}
	tc, err := c.tlsFor()
	if err != nil {
		return nil, fatal("tls to %s: %v", c.Addr, err)
	}
	return tc, nil
}

// dial opens a client connection, with TLS when tc is set.
func dial(ctx context.Context, cfg *Config, tc *tls.Config) (*client.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	return client.ConnectWithContext(cctx, cfg.Addr, cfg.User, cfg.Password, "", cfg.ConnectTimeout,
		func(c *client.Conn) error { c.SetTLSConfig(tc); return nil })
}

// isTLSConn reports whether c speaks TLS.
func isTLSConn(c *client.Conn) bool {
	if c == nil || c.Conn == nil {
		return false
	}
	_, ok := c.Conn.Conn.(*tls.Conn)
	return ok
}

// isNoTLS reports go-mysql's error for a server that does not offer TLS.
func isNoTLS(err error) bool {
	return err != nil && strings.Contains(err.Error(), "does not support TLS")
}

// explainTLSError turns a failed TLS negotiation into an error that says
// what to check, or returns nil when err is not about TLS. Such errors are
// fatal: reconnecting with the same certificates cannot cure them.
func explainTLSError(err error, cfg *Config) error {
	where := fmt.Sprintf("TLS to %s (tls.mode %s", cfg.Addr, cfg.TLS.Mode)
	if cfg.TLS.CAFile != "" {
		where += ", ca_file " + cfg.TLS.CAFile
	}
	where += ")"
	cause := pingcaperrors.Cause(err)
	var (
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		recHdr   tls.RecordHeaderError
		alertErr tls.AlertError
	)
	switch {
	case isNoTLS(err):
		return fatal("%s: the server does not offer TLS: enable it on the server (ssl_cert, ssl_key) or set tls.mode: preferred to allow plaintext", where)
	case errors.As(err, &unknown) || errors.As(cause, &unknown):
		return fatal("%s: the server's certificate is not signed by a trusted CA (%v): set tls.ca_file to the CA that signed it", where, unknown)
	case errors.As(err, &hostErr) || errors.As(cause, &hostErr):
		return fatal("%s: the server's certificate does not name the host (%v): set tls.server_name to a name it holds, or tls.mode: verify-ca", where, hostErr)
	case errors.As(err, &invalid) || errors.As(cause, &invalid):
		return fatal("%s: the server's certificate is not valid (%v)", where, invalid)
	case errors.As(err, &verify) || errors.As(cause, &verify):
		return fatal("%s: the server's certificate failed verification: %v", where, verify.Err)
	case errors.As(err, &recHdr) || errors.As(cause, &recHdr):
		return fatal("%s: the server did not answer in TLS: %v", where, recHdr)
	case errors.As(err, &alertErr) || errors.As(cause, &alertErr):
		return fatal("%s: the server refused the TLS handshake (%v): check tls.cert_file/key_file (client certificate) and min_version", where, alertErr)
	}
	if strings.Contains(err.Error(), "tls: ") || strings.Contains(err.Error(), "x509: ") {
		return fatal("%s: %v", where, err)
	}
	return nil
}

// plaintextRefusedHint explains an access denied answered to a plaintext
// login by a server that offers TLS: MariaDB with
// require_secure_transport=ON answers so (MySQL says it outright).
func plaintextRefusedHint(cfg *Config) string {
	if cfg.TLS.On() || !serverOffersTLS(cfg.Addr, cfg.ConnectTimeout) {
		return ""
	}
	return "; the server offers TLS and this connection was plaintext: if the server requires secure transport (require_secure_transport=ON, as managed databases often do), set tls: {mode: verify-full, ca_file: ...} on the input (dbc peek: -tls-mode, -tls-ca)"
}

// secureTransportRequired is MySQL's ER_SECURE_TRANSPORT_REQUIRED.
const secureTransportRequired = 3159

func explainSecureTransport(me *mysql.MyError, cfg *Config) error {
	if me.Code != secureTransportRequired {
		return nil
	}
	return fatal("%s refuses plaintext connections (require_secure_transport): set tls: {mode: verify-full, ca_file: ...} on the input (dbc peek: -tls-mode, -tls-ca) (server says: %s)", cfg.Addr, me.Message)
}

// serverOffersTLS reads the server's greeting on a fresh connection and
// reports whether it offers TLS (CLIENT_SSL). It sends nothing: no
// credentials leave the host.
func serverOffersTLS(addr string, timeout time.Duration) bool {
	if timeout <= 0 || timeout > 5*time.Second {
		timeout = 5 * time.Second
	}
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return false
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n < 1 || n > 1<<16 {
		return false
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil || body[0] != 10 {
		return false // not a protocol-10 greeting (an error packet)
	}
	// version NUL-terminated, thread id (4), scramble part 1 (8), filler (1), capabilities (2)
	i := 1
	for i < len(body) && body[i] != 0 {
		i++
	}
	i += 1 + 4 + 8 + 1
	if i+2 > len(body) {
		return false
	}
	return uint32(binary.LittleEndian.Uint16(body[i:]))&mysql.CLIENT_SSL != 0
}
