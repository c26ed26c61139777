// Package enginetest is the conformance suite every Input and Output
// passes, written once and called from each plugin's tests: an output
// receives every packet once acked and the input's checkpoint matches; a
// pipeline restarted after an orderly stop resumes without loss or
// duplicates; an input delivers everything its source holds and, after a
// restart, only what is new.
//
// The suites run real engines with MockInput / a recorder from
// plugins/mock, so they need no test doubles of the engine. They are safe
// to call from parallel tests that use distinct sinks and sources.
package enginetest
