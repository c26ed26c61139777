// Package mock holds the deterministic test and benchmark plugins:
// MockInput (a generator), MockFilter (pass, modify, drop, emit-N) and
// MockOutput (acks on receipt, optional latency and failure injection),
// plus Recorder, an output that keeps what it received for tests.
//
// All three register into engine.Default from init; Register(reg) adds
// them to another registry. They use only the public plugin API.
//
// MockInput payloads are deterministic: "<stream>:<seq>" followed by 'x'
// padding up to the configured size, so tests can check content and count
// duplicates. Its position is the next sequence number; it resumes from
// its checkpoint.
package mock
