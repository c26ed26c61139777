// Package enginetest is the conformance suite every Input and Output
// passes, written once and called from each plugin's tests: an output
// receives every packet once acked and the input's checkpoint matches; a
// pipeline restarted after an orderly stop resumes without loss or
// duplicates; an input delivers everything its source holds and, after a
// restart, only what is new.
//
// The suites run real engines with their own generator input (SeqClass,
// payloads from SeqPayload, parsed by ParseSeq) and recording output
// (Collector), so they depend on no plugin and need no test doubles of the
// engine. They are safe to call from parallel tests that use distinct
// sinks and sources.
package enginetest
