// Package bench holds the throughput profiles behind `make bench`: the
// baselines every dbus figure is compared with in the same run (a
// same-shape pipeline of buffered Go channels passing one packet per send,
// and a single goroutine doing the same per-packet work) and the scenario
// runner used by bench/cmd/dbusbench. Sub-directories hold the plugin
// benchmarks (kafka, binlog, cluster, logs).
package bench
