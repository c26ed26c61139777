package cluster

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the "cluster:" section of a dbusd config file.
//
//	cluster:
//	  name: prod                 # cluster name (required)
//	  member: node-1             # member name, default the host name
//	  zookeeper: [zk1:2181, zk2:2181, zk3:2181]
//	  root: /dbus                # znode prefix
//	  session_timeout: 10s
//	  connect_timeout: 15s       # give up starting when no session by then
//	  weight: 1                  # relative share of resources; 0 drains
//	  admin: 10.0.0.5:8081       # admin address advertised to dbc
//	  release_timeout: 30s       # graceful hand-over budget before fencing
//	  doubt: 0.2                 # lease margin: stop writing (1-doubt)*session_timeout after the last confirmed contact
//	  local_dir: /var/lib/dbus/cluster   # local copies of checkpoints
//	  credentials_file: /etc/dbus/credentials.yaml
//	  auth: {user: dbus, password: "${cred:zk-dbus}"}   # digest auth + creator-only ACLs
type Config struct {
	Name            string        `yaml:"name"`
	Member          string        `yaml:"member"`
	ZooKeeper       []string      `yaml:"zookeeper"`
	Root            string        `yaml:"root"`
	SessionTimeout  time.Duration `yaml:"session_timeout"`
	ConnectTimeout  time.Duration `yaml:"connect_timeout"`
	Weight          *int          `yaml:"weight"`
	Admin           string        `yaml:"admin"`
	ReleaseTimeout  time.Duration `yaml:"release_timeout"`
	Doubt           float64       `yaml:"doubt"`
	LocalDir        string        `yaml:"local_dir"`
	CredentialsFile string        `yaml:"credentials_file"`
	Auth            *AuthConfig   `yaml:"auth"`

	// DisableDoubtStop keeps the member loop from stopping resources when
	// the lease runs out (their outputs still stop writing). Tests only:
	// it simulates a frozen member to show fencing.
	DisableDoubtStop bool `yaml:"-"`
}

// AuthConfig enables ZooKeeper digest authentication. Password should be
// a credential reference ("${cred:NAME}"), resolved locally.
type AuthConfig struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Defaults.
const (
	DefaultRoot           = "/dbus"
	DefaultSessionTimeout = 10 * time.Second
	DefaultReleaseTimeout = 30 * time.Second
	DefaultDoubt          = 0.2
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether s may be a cluster, member or resource name
// (it becomes a znode name).
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ParseConfig decodes and validates a "cluster:" section (strict: unknown
// keys are errors), filling defaults. file names the config for errors.
func ParseConfig(file string, n *yaml.Node) (*Config, error) {
	if n == nil {
		return nil, fmt.Errorf("%s: no cluster section", file)
	}
	// Decode the node itself (not a re-marshalled copy), so that every
	// error names the line of the file.
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: cluster: want a mapping of settings", file, n.Line)
	}
	if err := knownKeys(file, n, reflect.TypeOf(Config{}), "cluster"); err != nil {
		return nil, err
	}
	var c Config
	if err := n.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s", yamlLines(file, n.Line, err))
	}
	if err := c.fill(); err != nil {
		// Each message starts with the key it is about: point at its line.
		var lines []string
		for _, e := range unjoin(err) {
			line := n.Line
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if msg := e.Error(); strings.HasPrefix(msg, k+" ") || strings.HasPrefix(msg, k+":") {
					line = n.Content[i].Line
				}
			}
			lines = append(lines, fmt.Sprintf("%s:%d: cluster: %v", file, line, e))
		}
		return nil, errors.New(strings.Join(lines, "\n"))
	}
	return &c, nil
}

// knownKeys refuses keys of the mapping n that no yaml tag of t (a
// struct) names, at their own line, and checks nested mappings of
// struct (or pointer to struct) fields the same way.
func knownKeys(file string, n *yaml.Node, t reflect.Type, where string) error {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = t.Field(i).Type
		names = append(names, tag)
	}
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s:%d: %s: unknown key %q (want %s)", file, k.Line, where, k.Value, strings.Join(names, ", ")))
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && v.Kind == yaml.MappingNode && ft != reflect.TypeOf(time.Time{}) {
			if err := knownKeys(file, v, ft, where+"."+k.Value); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// yamlLines rewrites a yaml decode error ("yaml: unmarshal errors:\n
// line 12: cannot unmarshal ...") as "file:12: cluster: cannot ..." lines.
func yamlLines(file string, def int, err error) string {
	var out []string
	for _, l := range strings.Split(strings.TrimPrefix(err.Error(), "yaml: "), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "unmarshal errors:" {
			continue
		}
		if m := yamlLineRE.FindStringSubmatchIndex(l); m != nil && m[0] == 0 {
			out = append(out, fmt.Sprintf("%s:%s: cluster: %s", file, l[m[2]:m[3]], l[m[1]:]))
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d: cluster: %s", file, def, l))
	}
	return strings.Join(out, "\n")
}

// unjoin returns the errors joined in err (errors.Join), or err.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// fill sets defaults and validates.
func (c *Config) fill() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required (the cluster's name)"))
	} else if !ValidName(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: use letters, digits, '.', '_' or '-'", c.Name))
	}
	if c.Member == "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, fmt.Errorf("member not set and no host name: %v", err))
		}
		c.Member = h
	}
	if c.Member != "" && !ValidName(c.Member) {
		errs = append(errs, fmt.Errorf("member %q: use letters, digits, '.', '_' or '-'", c.Member))
	}
	if len(c.ZooKeeper) == 0 {
		errs = append(errs, errors.New("zookeeper: list at least one host:port"))
	}
	for _, s := range c.ZooKeeper {
		if !strings.Contains(s, ":") || strings.Contains(s, "@") {
			errs = append(errs, fmt.Errorf("zookeeper: %q is not host:port", s))
		}
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if !strings.HasPrefix(c.Root, "/") || (len(c.Root) > 1 && strings.HasSuffix(c.Root, "/")) {
		errs = append(errs, fmt.Errorf("root %q: want an absolute znode path without trailing '/'", c.Root))
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.SessionTimeout < time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("session_timeout %s out of range [1s, 5m]", c.SessionTimeout))
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = c.SessionTimeout + 5*time.Second
	}
	if c.Weight == nil {
		one := 1
		c.Weight = &one
	}
	if *c.Weight < 0 || *c.Weight > 1000 {
		errs = append(errs, fmt.Errorf("weight %d out of range [0, 1000]", *c.Weight))
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = DefaultReleaseTimeout
	}
	if c.ReleaseTimeout < 0 {
		errs = append(errs, fmt.Errorf("release_timeout %s is negative", c.ReleaseTimeout))
	}
	if c.Doubt == 0 {
		c.Doubt = DefaultDoubt
	}
	// The client notices a silent server after 2/3 of the session timeout;
	// stopping must begin before the remaining third runs out.
	if c.Doubt <= 0 || c.Doubt > 0.3 {
		errs = append(errs, fmt.Errorf("doubt %v: want a fraction of session_timeout in (0, 0.3] (the client only notices a lost server after 2/3 of it)", c.Doubt))
	}
	if c.Auth != nil {
		if c.Auth.User == "" || c.Auth.Password == "" {
			errs = append(errs, errors.New("auth: user and password are both required"))
		}
		if c.Auth.Password != "" && !isCredRef(c.Auth.Password) {
			errs = append(errs, errors.New("auth: password must be a credential reference like \"${cred:zk-dbus}\", not a literal"))
		}
	}
	return errors.Join(errs...)
}

// DoubtAfter is the lease's safety margin: the lease runs out this long
// before the earliest moment the server could expire the session.
func (c *Config) DoubtAfter() time.Duration {
	return time.Duration(float64(c.SessionTimeout) * c.Doubt)
}
