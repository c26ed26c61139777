package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/dbus-project/dbus/engine"
)

// TLS and SASL to the brokers (both plugins).
//
// The `tls:` block is plugins/tlsconf's; the dialer builds a fresh
// *tls.Config for every connection (rotated CA and client certificates are
// picked up by the next connection), names the broker in every error and
// adds a hint saying which key to check. The `sasl:` block selects one of
// franz-go's mechanisms; the OAUTHBEARER token is read from token_file at
// every authentication (rotation without a restart).
//
// At build (check_seeds, dbusd -t) each seed is dialled and, with TLS, the
// handshake is done; with TLS or SASL on, one reachable seed is then asked
// for the metadata of the plugin's fixed topics with their authorized
// operations, so that a wrong password, a refused client certificate or a
// missing ACL fails the build with an error naming the plugin, the broker
// and what to check.

// SASL mechanisms accepted by the `sasl.mechanism` key.
const (
	saslPlain       = "PLAIN"
	saslScram256    = "SCRAM-SHA-256"
	saslScram512    = "SCRAM-SHA-512"
	saslOAuthBearer = "OAUTHBEARER"
)

// saslConf is the decoded `sasl:` block.
type saslConf struct {
	Mechanism string `yaml:"mechanism"`
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
	TokenFile string `yaml:"token_file"`
}

func (s saslConf) on() bool { return s.Mechanism != "" }

func saslField() engine.Field {
	return engine.Field{Name: "sasl", Type: engine.TypeAny, SecretKeys: []string{"password"},
		Doc: "SASL authentication to the brokers: {mechanism: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER, user, password, token_file}. PLAIN and SCRAM take user and password; OAUTHBEARER takes token_file, the path of a file holding the OAuth bearer value, read again at every authentication (rotate the file in place). Use with tls: PLAIN over plaintext sends the password in clear."}
}

// parseSASL decodes and validates the `sasl` key (absent: no SASL).
func parseSASL(c *engine.Conf) (saslConf, error) {
	var s saslConf
	if !c.Has("sasl") {
		return s, nil
	}
	if err := c.Decode("sasl", &s); err != nil {
		return s, err
	}
	s.Mechanism = strings.ToUpper(strings.TrimSpace(s.Mechanism))
	switch s.Mechanism {
	case "":
		if s.User != "" || s.Password != "" || s.TokenFile != "" {
			return s, c.Errorf("sasl", "mechanism is required: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
		}
	case saslPlain, saslScram256, saslScram512:
		if s.User == "" || s.Password == "" {
			return s, c.Errorf("sasl", "%s needs user and password (write the password as ${env:NAME} or ${file:PATH})", s.Mechanism)
		}
		if s.TokenFile != "" {
			return s, c.Errorf("sasl", "token_file is for OAUTHBEARER; %s takes user and password", s.Mechanism)
		}
	case saslOAuthBearer:
		if s.TokenFile == "" {
			return s, c.Errorf("sasl", "OAUTHBEARER needs token_file (a file holding the bearer token)")
		}
		if s.Password != "" {
			return s, c.Errorf("sasl", "OAUTHBEARER takes token_file, not password")
		}
		if _, err := readToken(s.TokenFile); err != nil {
			return s, c.Errorf("sasl", "%v", err)
		}
	default:
		return s, c.Errorf("sasl", "unknown mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", s.Mechanism)
	}
	return s, nil
}

// readToken returns the bearer token held in path (surrounding space
// trimmed). The error names the path, never the content.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token_file %s is empty", path)
	}
	return tok, nil
}

// mechanism returns the franz-go SASL mechanism, nil when SASL is off.
func (s saslConf) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case saslPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism()
	case saslScram256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism()
	case saslScram512:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism()
	case saslOAuthBearer:
		path := s.TokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := readToken(path)
			return oauth.Auth{Token: tok}, err
		})
	}
	return nil
}

// principal names who the brokers see, for error messages.
func (cc clientConf) principal() string {
	switch {
	case cc.sasl.User != "" && cc.sasl.Mechanism != saslOAuthBearer:
		return "User:" + cc.sasl.User
	case cc.sasl.on():
		return "the token's principal"
	case cc.tls.CertFile != "":
		return "the client certificate's principal"
	}
	return "User:ANONYMOUS"
}

// dial connects to a broker, with TLS when it is on; the error names the
// broker and, for TLS, what to check. It is the client's dialer and the
// build-time seed check.
func (cc clientConf) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: cc.connectTimeout, KeepAlive: 30 * time.Second}
	if !cc.tls.On() {
		return nd.DialContext(ctx, network, addr)
	}
	tc, err := cc.tls.Build()
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", addr, err)
	}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			tc.ServerName = host
		}
	}
	// Kafka connections carry bulk requests: full-size TLS records from
	// the start (Go otherwise begins with small ones, for web pages).
	tc.DynamicRecordSizingDisabled = true
	td := &tls.Dialer{NetDialer: nd, Config: tc}
	conn, err := td.DialContext(ctx, network, addr)
	if err != nil {
		return nil, tlsError(addr, cc.tls.Mode, err)
	}
	return conn, nil
}

// tlsError names the broker and adds a hint to a TLS failure.
func tlsError(addr, mode string, err error) error {
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		netErr  net.Error
	)
	hint := ""
	switch {
	case errors.As(err, &unknown):
		hint = "check tls.ca_file: the broker's certificate is not signed by a CA it holds"
	case errors.As(err, &host):
		hint = "check tls.server_name, or set tls.mode: verify-ca to verify the chain only (mode " + mode + ")"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		hint = "the broker's certificate has expired or is not yet valid: renew it, or check this host's clock"
	case errors.As(err, &invalid):
		hint = "the broker's certificate is not valid for a server: check the broker's certificate and tls.ca_file"
	case errors.As(err, &record):
		hint = "the broker does not speak TLS on this port: check the port, or drop tls"
	case errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:"):
		hint = "the broker refused the handshake: if it requires a client certificate, check tls.cert_file/key_file"
	case errors.As(err, &netErr) && netErr.Timeout():
		hint = "no TLS handshake within connect_timeout: check the port and that the broker speaks TLS there"
	}
	if hint == "" {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return fmt.Errorf("%s: %w (%s)", addr, err, hint)
}

// secured reports whether the build-time check asks a seed for metadata
// (TLS or SASL on: a refused client certificate, a wrong password and a
// missing ACL show only in a Kafka request).
func (cc clientConf) secured() bool { return cc.tls.On() || cc.sasl.on() }

// probeSpec is what the build-time check asks a seed about.
type probeSpec struct {
	topics []string
	op     kmsg.ACLOperation // on the topics: READ (input) or WRITE (output)
	group  string            // consumer group of an input; "" for none
}

// probe asks seed for the metadata of the topics with their authorized
// operations (and for the consumer group's), and fails when
// authentication fails or the principal lacks the operation (READ for an
// input, WRITE for an output; READ on the group) on one of them. Unknown
// topics and groups pass (an output may create topics; an input waits
// for them; a group is created when it is joined).
func (cc clientConf) probe(ctx context.Context, seed string, ps probeSpec) error {
	topics, op := ps.topics, ps.op
	ctx, cancel := context.WithTimeout(ctx, cc.connectTimeout)
	defer cancel()
	opts := append(cc.baseOpts(), kgo.SeedBrokers(seed), kgo.RequestRetries(0), kgo.RetryTimeout(cc.connectTimeout))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	req.IncludeTopicAuthorizedOperations = true
	done := make(chan error, 1)
	var resp *kmsg.MetadataResponse
	go func() {
		var err error
		resp, err = req.RequestWith(ctx, cl)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return cc.explain(seed, err)
	}
	for _, t := range resp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if t.ErrorCode == kerr.TopicAuthorizationFailed.Code {
			return fmt.Errorf("%s: topic %q: %w: %s may not DESCRIBE it (a broker ACL must allow %s DESCRIBE and %s on topic %s)", seed, name, kerr.TopicAuthorizationFailed, cc.principal(), cc.principal(), op, name)
		}
		if t.ErrorCode != 0 || t.AuthorizedOperations == math.MinInt32 {
			continue // unknown topic, or a broker that does not report operations
		}
		if t.AuthorizedOperations&(1<<int32(op)) == 0 {
			return fmt.Errorf("%s: topic %q: %w: %s may not %s it (a broker ACL must allow %s %s on topic %s)", seed, name, kerr.TopicAuthorizationFailed, cc.principal(), op, cc.principal(), op, name)
		}
	}
	if ps.group != "" {
		return cc.probeGroup(ctx, cl, seed, ps.group)
	}
	return nil
}

// probeGroup checks that the principal may READ the consumer group.
func (cc clientConf) probeGroup(ctx context.Context, cl *kgo.Client, seed, group string) error {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	req.IncludeAuthorizedOperations = true
	denied := func() error {
		return fmt.Errorf("%s: group %q: %w: %s may not READ it (a broker ACL must allow %s DESCRIBE and READ on group %s)", seed, group, kerr.GroupAuthorizationFailed, cc.principal(), cc.principal(), group)
	}
	resp, err := req.RequestWith(ctx, cl)
	if errors.Is(err, kerr.GroupAuthorizationFailed) {
		return denied()
	}
	if err != nil {
		return cc.explain(seed, err)
	}
	for _, g := range resp.Groups {
		switch {
		case g.ErrorCode == kerr.GroupAuthorizationFailed.Code:
			return denied()
		case g.ErrorCode != 0 && g.ErrorCode != kerr.GroupIDNotFound.Code:
			continue
		case g.AuthorizedOperations != math.MinInt32 && g.AuthorizedOperations&(1<<int32(kmsg.ACLOperationRead)) == 0:
			return denied()
		}
	}
	return nil
}

// explain adds to a client error what the operator should check: the SASL
// user and password, the client certificate, the TLS port. seed names the
// broker when known.
func (cc clientConf) explain(seed string, err error) error {
	if err == nil {
		return nil
	}
	where := ""
	if seed != "" {
		where = seed + ": "
	}
	s := err.Error()
	broke, authBroke := cc.auth.brokerFailed()
	if authBroke && where == "" {
		where = broke + ": "
	}
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed) || (cc.sasl.on() && strings.Contains(s, "SASL_AUTHENTICATION_FAILED")) || authBroke:
		what := "check sasl.user/password"
		if cc.sasl.Mechanism == saslOAuthBearer {
			what = "check the token in sasl.token_file"
		}
		who := ""
		if cc.sasl.User != "" && cc.sasl.Mechanism != saslOAuthBearer {
			who = fmt.Sprintf(" for user %q", cc.sasl.User)
		}
		return fmt.Errorf("%sSASL %s authentication failed%s (%s): %w", where, cc.sasl.Mechanism, who, what, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%sthe broker does not accept SASL %s (check sasl.mechanism and the listener's enabled mechanisms): %w", where, cc.sasl.Mechanism, err)
	case !cc.sasl.on() && isFirstReadEOF(err):
		return fmt.Errorf("%sthe broker closed the connection before answering (does the listener require SASL? set sasl; or TLS? set tls): %w", where, err)
	case cc.tls.On() && strings.Contains(s, "remote error: tls:"):
		return fmt.Errorf("%s%w (the broker refused the TLS session: if it requires a client certificate, check tls.cert_file/key_file)", where, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("%s%w (%s lacks a broker ACL)", where, err, cc.principal())
	}
	if where != "" {
		return fmt.Errorf("%s%w", where, err)
	}
	return err
}

// authWatch is a client hook that remembers the broker whose last SASL
// exchange broke off: brokers that refuse credentials may close the
// connection instead of answering SASL_AUTHENTICATION_FAILED (kfake does;
// so do brokers before KIP-152), which the client reports as a bare EOF.
// A successful exchange clears it. Only installed with SASL on.
type authWatch struct {
	failed atomic.Pointer[string] // broker host:port
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *authWatch) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != int16(kmsg.SASLAuthenticate) && key != int16(kmsg.SASLHandshake) {
		return
	}
	if err == nil {
		w.failed.Store(nil)
		return
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	w.failed.Store(&addr)
}

// brokerFailed returns the broker whose SASL exchange broke off, if any.
func (w *authWatch) brokerFailed() (string, bool) {
	if w == nil {
		return "", false
	}
	if p := w.failed.Load(); p != nil {
		return *p, true
	}
	return "", false
}

func isFirstReadEOF(err error) bool {
	var fe *kgo.ErrFirstReadEOF
	return errors.As(err, &fe)
}

// aclHint returns, for an authorization error from a produce or fetch, a
// note naming the principal, the operation it lacks and the topic
// (topics rendered from templates are only known at run time); "" for
// other errors.
func (cc clientConf) aclHint(err error, op kmsg.ACLOperation, topic string) string {
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Sprintf(" (%s may not %s topic %s: a broker ACL must allow it)", cc.principal(), op, topic)
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Sprintf(" (%s lacks a cluster ACL: the idempotent producer needs IDEMPOTENT_WRITE on the cluster, or WRITE on a topic; or set idempotent: false)", cc.principal())
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Sprintf(" (%s may not use the consumer group: a broker ACL must allow READ on it)", cc.principal())
	}
	return ""
}
