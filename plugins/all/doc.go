// Package all links every built-in plugin into a binary: import it for
// its side effect of registering them into engine.Default. cmd/dbusd and
// bench/cmd/dbusbench import it; tests build their own registries.
package all
