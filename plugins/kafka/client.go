package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// Fields shared by KafkaInput and KafkaOutput.
func commonFields() []engine.Field {
	return []engine.Field{
		{Name: "brokers", Type: engine.TypeStrings, Required: true, Doc: "Seed brokers, host:port."},
		{Name: "client_id", Type: engine.TypeString, Default: "dbus", Doc: "Kafka client id."},
		{Name: "connect_timeout", Type: engine.TypeDuration, Default: 5 * time.Second, Doc: "Bound on the seed reachability check and on Start."},
		{Name: "metadata_min_age", Type: engine.TypeDuration, Default: 250 * time.Millisecond, Doc: "Minimum time between metadata refreshes; a retriable produce or fetch error waits for one, so this bounds how fast the client recovers (franz-go's own default is 5s)."},
		{Name: "client_log", Type: engine.TypeString, Default: "warn", Enum: []string{"none", "error", "warn", "info", "debug"}, Doc: "Level of the Kafka client's own log lines."},
		{Name: "check_seeds", Type: engine.TypeBool, Default: true, Doc: "Dial the seed brokers when the plugin is built (dbusd -t): fail if none accepts a TCP connection (and, with tls, completes the TLS handshake) within connect_timeout; with tls or sasl on, also ask one seed for the plugin's fixed topics, so that a wrong password, a refused client certificate or a missing ACL (READ on an input's topics and group, WRITE on an output's topics) fails the build. Set false to build offline (dry runs without a broker)."},
		tlsconf.Field(),
		saslField(),
	}
}

// clientConf holds what both plugins need to build a client.
type clientConf struct {
	name           string
	brokers        []string
	clientID       string
	connectTimeout time.Duration
	metadataMinAge time.Duration
	logLevel       kgo.LogLevel
	tls            tlsconf.Config
	sasl           saslConf
	auth           *authWatch // with SASL on: see authWatch
}

// clientRole tells parseClientConf which plugin it builds for: the topics
// and the ACL operation the build-time check looks at.
type clientRole int

const (
	roleInput  clientRole = iota // topics, READ
	roleOutput                   // a fixed topic and topic_map targets, WRITE
)

func parseClientConf(c *engine.Conf, role clientRole) (clientConf, error) {
	var err error
	cc := clientConf{
		name:           c.Name,
		brokers:        c.Strings("brokers"),
		clientID:       c.String("client_id"),
		connectTimeout: c.Duration("connect_timeout"),
		metadataMinAge: c.Duration("metadata_min_age"),
		logLevel:       clientLogLevels[c.String("client_log")],
	}
	if len(cc.brokers) == 0 {
		return cc, c.Errorf("brokers", "at least one seed broker is required")
	}
	for _, b := range cc.brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return cc, c.Errorf("brokers", "seed %q is not host:port: %v", b, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 || host == "" {
			return cc, c.Errorf("brokers", "seed %q: want host:port with a port in 1..65535", b)
		}
	}
	if cc.connectTimeout <= 0 {
		cc.connectTimeout = 5 * time.Second
	}
	if cc.tls, err = tlsconf.FromConf(c, tlsconf.Options{}); err != nil {
		return cc, err
	}
	if cc.sasl, err = parseSASL(c); err != nil {
		return cc, err
	}
	if cc.sasl.on() {
		cc.auth = &authWatch{}
	}
	if c.Bool("check_seeds") && !c.Offline() {
		seed, err := cc.dialSeeds()
		if err != nil {
			return cc, c.Errorf("brokers", "%v", err)
		}
		if cc.secured() {
			if err := cc.probe(context.Background(), seed, probeTargets(c, role)); err != nil {
				key := "brokers"
				switch {
				case errors.Is(err, kerr.TopicAuthorizationFailed):
					// The config is right; a broker ACL is missing: point
					// at the topic it names.
					key = topicKey(c, role, err)
				case errors.Is(err, kerr.GroupAuthorizationFailed) && role == roleInput:
					key = "group"
				case cc.sasl.on():
					key = "sasl"
				}
				return cc, c.Errorf(key, "%v", err)
			}
		}
	}
	return cc, nil
}

// topicKey is the key naming the topic a missing-ACL error is about.
func topicKey(c *engine.Conf, role clientRole, err error) string {
	if role == roleInput {
		return "topics"
	}
	if t := c.String("topic"); t != "" && strings.Contains(err.Error(), fmt.Sprintf("topic %q", t)) {
		return "topic"
	}
	if c.Has("topic_map") {
		return "topic_map"
	}
	return "topic"
}

// probeTargets returns the fixed topics (and consumer group) the
// build-time check asks about and the operation the plugin needs on them.
func probeTargets(c *engine.Conf, role clientRole) probeSpec {
	if role == roleInput {
		return probeSpec{topics: c.Strings("topics"), op: kmsg.ACLOperationRead, group: c.String("group")}
	}
	var topics []string
	if t := c.String("topic"); !strings.Contains(t, "{") && validTopic([]byte(t)) == nil {
		topics = append(topics, t)
	}
	var m map[string]string
	if c.Has("topic_map") && c.Decode("topic_map", &m) == nil {
		for _, t := range m {
			if validTopic([]byte(t)) == nil && !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	return probeSpec{topics: topics, op: kmsg.ACLOperationWrite}
}

// dialSeeds returns the first seed that accepts a connection (and, with
// TLS, completes the handshake) within the connect timeout; the error
// lists why each failed. A TLS failure is reported as it is (with its
// hint): the broker is reachable, the configuration is wrong.
func (cc clientConf) dialSeeds() (string, error) {
	errs := make([]error, len(cc.brokers))
	var wg sync.WaitGroup
	for i, s := range cc.brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), cc.connectTimeout)
			defer cancel()
			conn, err := cc.dial(ctx, "tcp", s)
			if err != nil {
				errs[i] = err
				return
			}
			conn.Close()
		}()
	}
	wg.Wait()
	msgs := make([]string, 0, len(cc.brokers))
	for i, err := range errs {
		if err == nil {
			return cc.brokers[i], nil
		}
		if cc.tls.On() {
			msgs = append(msgs, err.Error()) // names the broker
		} else {
			msgs = append(msgs, cc.brokers[i]+": "+err.Error())
		}
	}
	if cc.tls.On() {
		var tlsErrs []string
		for i, err := range errs {
			var ne *net.OpError
			if !errors.As(err, &ne) || ne.Op != "dial" {
				tlsErrs = append(tlsErrs, msgs[i])
			}
		}
		if len(tlsErrs) > 0 {
			return "", errors.New(strings.Join(tlsErrs, "; "))
		}
	}
	return "", fmt.Errorf("no seed broker reachable within %v (%s)", cc.connectTimeout, strings.Join(msgs, "; "))
}

// baseOpts returns the client options common to both plugins.
func (cc clientConf) baseOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cc.brokers...),
		kgo.ClientID(cc.clientID),
		kgo.DialTimeout(cc.connectTimeout),
		kgo.MetadataMinAge(max(cc.metadataMinAge, time.Millisecond)),
		kgo.WithLogger(&clientLogger{l: slog.Default().With("plugin", cc.name, "client", "franz-go"), level: cc.logLevel}),
	}
	if cc.tls.On() {
		opts = append(opts, kgo.Dialer(cc.dial))
	}
	if cc.sasl.on() {
		opts = append(opts, kgo.SASL(cc.sasl.mechanism()), kgo.WithHooks(cc.auth))
	}
	return opts
}

// ping checks that the cluster answers a metadata request within the
// connect timeout. franz-go may not give up on a silent connection before
// its own request timeout, so the wait is bounded here; the caller closes
// the client on error, which ends the pending request.
func (cc clientConf) ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, cc.connectTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cl.Ping(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("cannot reach Kafka seed brokers %v within %v: %w", cc.brokers, cc.connectTimeout, cc.explain("", err))
	}
	return nil
}

// isRetryable is the Kafka client's single retry classifier: true when an
// error may go away by itself (broker restart, leader move, network), false
// when retrying the same request cannot succeed (record too large, bad
// topic, authorization, invalid partition choice).
func isRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return false
	}
	if errors.Is(err, errRecordTooLarge) || errors.Is(err, errMissingAttr) || errors.Is(err, errBadTopic) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if strings.Contains(err.Error(), "invalid record partitioning choice") {
		return false
	}
	// Unknown errors (EOF, connection reset wrapped by the client) are
	// treated as transient: the engine's retry budget bounds them.
	return true
}

// Errors classified by isRetryable.
var (
	errRecordTooLarge = errors.New("record larger than max_record_bytes")
	errBadTopic       = errors.New("invalid topic")
)

// Permanent reports whether err was classified as not retryable: this
// package marks such failures with engine.Permanent (the one vocabulary
// the engine acts on: dead-letter at once instead of retrying).
func Permanent(err error) bool { return engine.IsPermanent(err) }

// permanent marks err as not retryable, saying so in its text.
func permanent(err error) error { return engine.Permanent(fmt.Errorf("%w (not retryable)", err)) }
