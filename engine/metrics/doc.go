// Package metrics exposes a running pipeline to Prometheus.
//
// Collector is a prometheus.Collector that reads Source.Stats() (the
// engine's per-node counters) when, and only when, it is scraped: the hot
// path pays nothing for metrics beyond the atomic counters the engine keeps
// anyway. Every metric is built fresh at scrape time (const metrics), so a
// reload that adds or removes plugins needs no registration changes.
//
// Names follow Prometheus conventions: prefix dbus_, base units, counters
// end in _total, durations in _seconds, sizes in _bytes. Per-node metrics
// carry the labels plugin (the configured name), kind (input, filter,
// output) and class. The full list is in Names().
//
// Some metrics are declared before their source is wired and read 0 until
// then: dbus_input_lag_seconds and dbus_input_lag_records (binlog and Kafka
// consumer lag: need the engine to report a plugin's lag in NodeSnapshot),
// and the dbus_cluster_* gauges (filled by Options.Cluster when the process
// runs as a cluster member).
//
// Use:
//  1. c := metrics.NewCollector(sup, metrics.Options{Version: v})
//  2. reg := metrics.NewRegistry(c) (adds the Go runtime and process
//     collectors), or register c in a registry of your own.
//  3. Serve metrics.Handler(reg) at /metrics.
//
// A Collector is safe for concurrent scrapes. It holds no state besides
// its Source and Options.
package metrics
