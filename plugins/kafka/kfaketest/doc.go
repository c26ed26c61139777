// Package kfaketest starts franz-go kfake clusters on loopback and reads
// and writes them, for the Kafka plugin's tests and benchmarks. It is
// never linked into dbusd.
//
// Every function takes a testing.TB, fails it on error, and registers
// cleanups; none is safe to call after the test ended.
package kfaketest
