// Package parse holds ParseFilter: it parses a packet's payload (or one of
// its string attributes) as JSON, logfmt or a regular expression with
// named groups into typed packet attributes, and optionally takes the
// packet's event time (Packet.Ts) from a parsed field.
//
// Contract:
//  1. JSON: every member of the top-level object becomes an attribute;
//     nested objects are flattened with "." ("http.status"); numbers
//     become int attributes when they are integers that fit an int64, else
//     float; booleans bool; strings string (unescaped); arrays keep their
//     JSON text as a string; null members are skipped. The payload is not
//     changed.
//  2. logfmt: key=value, key="quoted value" and bare keys (bool true);
//     regex: each named group that matched becomes a string attribute.
//     The "types" map converts named fields to int, float or bool.
//  3. time_field/time_layout set Packet.Ts; a missing or unparsable time
//     is a parse failure.
//  4. A parse failure is never silent: it is counted (Counters) and, by
//     on_error, tagged (attribute tag_field holds the reason, the packet
//     goes on), dropped with reason "parse_error" (counted by the engine),
//     or returned as an error so the engine sends the packet to the
//     filter's dead_letter output (held when none is configured).
//  5. Steady state: JSON and logfmt parsing allocate nothing per packet
//     (attribute buffers are reused); regex parsing allocates the match
//     index slice; time layouts other than RFC 3339 and unix allocate on a
//     cache miss (the last parsed text is cached, so second-resolution
//     logs parse each distinct second once).
//
// Process is called from one goroutine; Counters may be read from any.
package parse
