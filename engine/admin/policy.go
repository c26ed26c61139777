package admin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dbus-project/dbus/engine"
	"gopkg.in/yaml.v3"
)

// A config posted to the reload API must not give its sender more power
// than the operator's config file gives: whoever can reach the API could
// otherwise run any command as the daemon's user, or read and write any
// file it can (a StreamInput on /etc/shadow feeding a Kafka topic, a
// StreamOutput appending to ~/.ssh/authorized_keys). So a posted config
// may name
//
//   - commands (spec fields marked Command): those the config file runs,
//     or any with admin.allow_commands: true in the file;
//   - files and directories (fields marked Path or PathKeys, and
//     engine.checkpoint_dir): those the config file names, or any below
//     a directory of admin.allowed_paths;
//
// and it may not change admin.allow_commands or admin.allowed_paths
// itself. The file (SIGHUP, POST /api/v1/reload without a body, watch) is
// trusted as written.

// use is one command or path a config names.
type use struct {
	where string // plugin.key, or engine.checkpoint_dir
	value string
}

// configPowers lists the commands and paths cfg names (paths made
// absolute against the daemon's working directory and cleaned).
func configPowers(cfg *engine.Config) (commands, paths []use) {
	addPath := func(where, v string) {
		if v == "" || v == "-" {
			return
		}
		if abs, err := filepath.Abs(v); err == nil {
			v = abs
		}
		paths = append(paths, use{where, filepath.Clean(v)})
	}
	if cfg.Engine.CheckpointDir != "" {
		addPath("engine.checkpoint_dir", cfg.Engine.CheckpointDir)
	}
	for _, pc := range cfg.Plugins {
		if pc.Spec == nil || pc.Conf == nil {
			continue
		}
		for _, f := range pc.Spec.Fields {
			if !f.Command && !f.Path && len(f.PathKeys) == 0 {
				continue
			}
			if !pc.Conf.Has(f.Name) {
				continue
			}
			where := pc.Name + "." + f.Name
			switch {
			case f.Command && f.Type == engine.TypeString:
				if v := pc.Conf.String(f.Name); v != "" {
					commands = append(commands, use{where, v})
				}
			case f.Path && f.Type == engine.TypeString:
				addPath(where, pc.Conf.String(f.Name))
			case f.Path && f.Type == engine.TypeStrings:
				for _, v := range pc.Conf.Strings(f.Name) {
					addPath(where, v)
				}
			case len(f.PathKeys) > 0 && f.Type == engine.TypeAny:
				var v any
				if pc.Conf.Decode(f.Name, &v) != nil {
					continue
				}
				for _, k := range f.PathKeys {
					for _, s := range stringsAt(v, strings.Split(k, ".")) {
						addPath(where+"."+k, s)
					}
				}
			}
		}
	}
	return commands, paths
}

// stringsAt returns the strings at a dot path in a decoded YAML value
// ("*" matches any key; lists are walked through).
func stringsAt(v any, path []string) []string {
	switch x := v.(type) {
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsAt(e, path)...)
		}
		return out
	case map[string]any:
		if len(path) == 0 {
			return nil
		}
		var out []string
		for k, e := range x {
			if path[0] == "*" || path[0] == k {
				out = append(out, stringsAt(e, path[1:])...)
			}
		}
		return out
	case string:
		if len(path) == 0 {
			return []string{x}
		}
	}
	return nil
}

// under reports whether p is dir or inside it (both clean and absolute).
func under(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// baseConfig is the operator's config: the file, or without one the
// config the daemon started with. nil when it does not parse (then a
// posted config may use only what admin.allowed_paths allows).
func (s *Server) baseConfig() *engine.Config {
	var data []byte
	name := s.path
	if s.path != "" {
		data, _ = os.ReadFile(s.path)
	} else if s.startCfg != nil {
		return s.startCfg
	}
	if data == nil {
		return nil
	}
	cfg, err := engine.ParseWith(name, data, s.reg, engine.ParseOptions{})
	if err != nil {
		return nil
	}
	return cfg
}

// checkPosted refuses a config posted to the API that names a command or
// a path the operator's config does not allow, or that changes the
// settings that allow them. The error says what to set.
func (s *Server) checkPosted(cfg *engine.Config) error {
	var errs []error
	if n := cfg.Sections["admin"]; n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "allow_commands":
				var b bool
				if v.Decode(&b) != nil || b != s.cfg.AllowCommands {
					errs = append(errs, fmt.Errorf("admin.allow_commands: a config posted to the admin API cannot change it: edit the config file and restart dbusd"))
				}
			case "allowed_paths":
				var ps []string
				if v.Decode(&ps) != nil || !slices.Equal(ps, s.cfg.AllowedPaths) {
					errs = append(errs, fmt.Errorf("admin.allowed_paths: a config posted to the admin API cannot change it: edit the config file and restart dbusd"))
				}
			}
		}
	}
	var baseCmds, basePaths []use
	if base := s.baseConfig(); base != nil {
		baseCmds, basePaths = configPowers(base)
	}
	has := func(list []use, v string) bool {
		return slices.ContainsFunc(list, func(u use) bool { return u.value == v })
	}
	cmds, paths := configPowers(cfg)
	for _, c := range cmds {
		if !s.cfg.AllowCommands && !has(baseCmds, c.value) {
			errs = append(errs, fmt.Errorf("%s: a config posted to the admin API may run only the commands the config file runs: "+
				"put the command in the config file and reload the file (SIGHUP, or POST /api/v1/reload without a body), "+
				"or set admin.allow_commands: true in the config file", c.where))
		}
	}
	for _, p := range paths {
		if has(basePaths, p.value) || slices.ContainsFunc(s.cfg.AllowedPaths, func(d string) bool { return under(p.value, filepath.Clean(d)) }) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %s: a config posted to the admin API may name only the files the config file names "+
			"or files below admin.allowed_paths (set in the config file): put it in the file and reload the file, or add its directory to admin.allowed_paths", p.where, p.value))
	}
	return errors.Join(errs...)
}
