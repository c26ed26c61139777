package admin

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
)

// DefaultListen is the admin address when the admin: section gives none.
const DefaultListen = "127.0.0.1:8714"

// Config is the decoded admin: section.
//
//	admin:
//	  listen: 127.0.0.1:8714   # host:port; ":0" picks a free port
//	  token: s3cret            # or token_file: /etc/dbus/admin.token (not both)
//	  allowed_hosts: []        # Host names accepted besides localhost and IPs
//	  cert_file: ""            # serve HTTPS with this certificate and key_file
//	  key_file: ""
//	  client_ca_file: ""       # require client certificates signed by this CA
//	  read_timeout: 15s        # whole request, body included
//	  write_timeout: 60s       # response (tap streams and reloads extend it)
//	  idle_timeout: 2m
//	  max_connections: 64      # at the cap a newcomer displaces an idle or slow one
//	  allow_commands: false    # configs posted to the API may run any command
//	  allowed_paths: []        # directories any posted config may name files in
//	  pprof: false             # serve /debug/pprof on the same listener
//	  metrics: true            # serve /metrics
//	  ui: true                 # serve the live pipeline page at /ui/
//	  watch: false             # reload when the config file changes
//	  watch_interval: 1s
//	  tap:
//	    enabled: false         # the tap is off by default
//	    max_packets: 1000      # per request, at most engine.MaxTapPackets
//	    max_payload_bytes: 1024
//	    max_duration: 60s
//	    max_concurrent: 4
type Config struct {
	Listen        string        `yaml:"listen"`
	Token         string        `yaml:"token"`
	TokenFile     string        `yaml:"token_file"`
	Pprof         bool          `yaml:"pprof"`
	Metrics       bool          `yaml:"metrics"`
	UI            bool          `yaml:"ui"`
	Watch         bool          `yaml:"watch"`
	WatchInterval time.Duration `yaml:"watch_interval"`
	Tap           TapConfig     `yaml:"tap"`

	// Listener hardening (see security.go).
	AllowedHosts   []string      `yaml:"allowed_hosts"`
	CertFile       string        `yaml:"cert_file"`
	KeyFile        string        `yaml:"key_file"`
	ClientCAFile   string        `yaml:"client_ca_file"`
	ReadTimeout    time.Duration `yaml:"read_timeout"`
	WriteTimeout   time.Duration `yaml:"write_timeout"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	MaxConnections int           `yaml:"max_connections"`

	// What a config posted to the reload API may do beyond the config
	// file (see policy.go). Only the file sets these.
	AllowCommands bool     `yaml:"allow_commands"`
	AllowedPaths  []string `yaml:"allowed_paths"`
}

// TapConfig bounds the tap endpoint.
type TapConfig struct {
	Enabled         bool          `yaml:"enabled"`
	MaxPackets      int           `yaml:"max_packets"`
	MaxPayloadBytes int           `yaml:"max_payload_bytes"`
	MaxDuration     time.Duration `yaml:"max_duration"`
	MaxConcurrent   int           `yaml:"max_concurrent"`
}

// DefaultConfig returns the settings of an empty admin: section.
func DefaultConfig() Config {
	return Config{
		Listen:         DefaultListen,
		Metrics:        true,
		UI:             true,
		WatchInterval:  time.Second,
		ReadTimeout:    15 * time.Second,
		WriteTimeout:   time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxConnections: 64,
		Tap: TapConfig{
			MaxPackets:      1000,
			MaxPayloadBytes: 1024,
			MaxDuration:     time.Minute,
			MaxConcurrent:   4,
		},
	}
}

// ParseSection decodes the admin: section strictly (unknown keys are
// errors) over the defaults and validates it. file names the config file
// in errors; n may be nil (defaults). The token file is read here.
func ParseSection(file string, n *yaml.Node) (Config, error) {
	c := DefaultConfig()
	if n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		if n.Kind != yaml.MappingNode {
			return c, fmt.Errorf("%s:%d: admin: must be a mapping", file, n.Line)
		}
		// Re-encode and decode with KnownFields: yaml.Node.Decode is not strict.
		raw, err := yaml.Marshal(n)
		if err != nil {
			return c, fmt.Errorf("%s:%d: admin: %v", file, n.Line, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("%s:%d: admin: %s", file, n.Line, relocate(err.Error(), n.Line))
		}
	}
	err := c.validate()
	if err == nil {
		err = c.loadToken()
	}
	if err == nil {
		err = c.checkExposure()
	}
	if err != nil {
		line := 0
		if n != nil {
			line = n.Line
		}
		return c, fmt.Errorf("%s:%d: admin: %w", file, line, err)
	}
	return c, nil
}

// loadToken reads token_file into Token.
func (c *Config) loadToken() error {
	if c.TokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return fmt.Errorf("token_file: %v", err)
	}
	c.Token = strings.TrimSpace(string(b))
	if c.Token == "" {
		return fmt.Errorf("token_file %s is empty", c.TokenFile)
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return fmt.Errorf("token_file %s: the token must not contain white space", c.TokenFile)
	}
	return nil
}

func validateListen(addr string) error {
	if addr == "" {
		return fmt.Errorf("listen must not be empty")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("listen %q: want host:port: %v", addr, err)
	}
	return nil
}

// relocate rewrites "line N" in a yaml error (relative to the re-encoded
// section, which starts at line 1) to the line in the config file.
func relocate(msg string, base int) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	var out strings.Builder
	for {
		i := strings.Index(msg, "line ")
		if i < 0 {
			out.WriteString(msg)
			return out.String()
		}
		out.WriteString(msg[:i+5])
		msg = msg[i+5:]
		j := 0
		for j < len(msg) && msg[j] >= '0' && msg[j] <= '9' {
			j++
		}
		var n int
		if _, err := fmt.Sscanf(msg[:j], "%d", &n); err == nil {
			fmt.Fprintf(&out, "%d", n+base-1)
		} else {
			out.WriteString(msg[:j])
		}
		msg = msg[j:]
	}
}

func (c *Config) validate() error {
	if err := validateListen(c.Listen); err != nil {
		return err
	}
	if c.Token != "" && c.TokenFile != "" {
		return fmt.Errorf("set token or token_file, not both")
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return fmt.Errorf("token must not contain white space")
	}
	if err := c.validateListener(); err != nil {
		return err
	}
	if c.WatchInterval < 10*time.Millisecond || c.WatchInterval > time.Hour {
		return fmt.Errorf("watch_interval %s out of range [10ms, 1h]", c.WatchInterval)
	}
	t := &c.Tap
	if t.MaxPackets < 1 || t.MaxPackets > engine.MaxTapPackets {
		return fmt.Errorf("tap.max_packets %d out of range [1, %d]", t.MaxPackets, engine.MaxTapPackets)
	}
	if t.MaxPayloadBytes < 1 || t.MaxPayloadBytes > engine.MaxTapPayloadBytes {
		return fmt.Errorf("tap.max_payload_bytes %d out of range [1, %d]", t.MaxPayloadBytes, engine.MaxTapPayloadBytes)
	}
	if t.MaxDuration < time.Second || t.MaxDuration > time.Hour {
		return fmt.Errorf("tap.max_duration %s out of range [1s, 1h]", t.MaxDuration)
	}
	if t.MaxConcurrent < 1 || t.MaxConcurrent > 64 {
		return fmt.Errorf("tap.max_concurrent %d out of range [1, 64]", t.MaxConcurrent)
	}
	return nil
}
