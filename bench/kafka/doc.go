// Package kafkabench holds the Kafka benchmarks (no TestMain; run with
// `go test -run '^$' -bench . ./bench/kafka/`). Every benchmark starts
// its own kfake clusters on loopback, in this process, so the process
// allocation counts include kfake and franz-go; dbus's own per-record
// allocations are measured by BenchmarkKafkaOutputEncode (dry run).
package kafkabench
