// Package kafkabench holds the Kafka benchmarks (run with
// `go test -run '^$' -bench . ./bench/kafka/`). Every benchmark starts
// its own kfake clusters on loopback, in this process, so the process
// allocation counts include kfake and franz-go; dbus's own per-record
// allocations are measured by BenchmarkKafkaOutputEncode (dry run).
// BenchmarkKafkaOutputTLSBrokerProcess runs its brokers in child
// processes instead (TestMain calls kfaketest.MaybeServe), so that its
// CPU figures are this process's alone.
package kafkabench
