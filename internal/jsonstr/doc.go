// Package jsonstr appends JSON string literals to byte slices without
// allocating: the one escaper of the project (binlog payloads, Elasticsearch
// bulk bodies, StreamOutput's json format). Invalid UTF-8 becomes U+FFFD as
// encoding/json does; U+2028 and U+2029 are escaped. Callers that must keep
// arbitrary bytes exactly encode them otherwise (base64) before calling.
// Stateless and safe for concurrent use.
package jsonstr
