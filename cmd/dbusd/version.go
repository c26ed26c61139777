package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion is Version when the build set it (-ldflags "-X
// main.Version=v1.2.3"); otherwise the module version and the VCS revision
// that `go build` stamps into the binary: "dev+3f2a9c1d0e4b" or
// "dev+3f2a9c1d0e4b-dirty" for a tree with uncommitted changes.
func buildVersion(v string, info *debug.BuildInfo, ok bool) string {
	if v != "dev" || !ok || info == nil {
		return v
	}
	if mv := info.Main.Version; mv != "" && mv != "(devel)" {
		v = mv
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" || strings.Contains(v, rev) {
		// Go stamps a pseudo-version that names the revision (and
		// +dirty) itself: v0.0.0-20261205125949-15aa4ea03663+dirty.
		return v
	}
	var b strings.Builder
	b.WriteString(v)
	b.WriteString("+")
	b.WriteString(rev)
	if dirty {
		b.WriteString("-dirty")
	}
	return b.String()
}

func init() {
	info, ok := debug.ReadBuildInfo()
	Version = buildVersion(Version, info, ok)
}
