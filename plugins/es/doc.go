// Package es holds ESOutput: it indexes packets into Elasticsearch or
// OpenSearch through the standard bulk API (POST /_bulk, NDJSON, optional
// gzip), so it works against a real cluster of either.
//
// Contract:
//  1. Write sends the batch as one or more bulk requests of at most
//     max_bytes each (the engine batches by count and time: the output's
//     `batch` setting and the engine's flush). Write returns nil only when
//     every item was accepted (status 2xx, or 409 with action create: the
//     document is already there, as after a replay).
//  2. Per-item failures come back as a *engine.BatchError: items failed
//     with 429 or 5xx are retryable (the engine retries only them, with
//     backoff); other 4xx failures (mapping errors, bad documents) are
//     permanent: their error is engine.Permanent (and wraps ErrPermanent),
//     so the engine sends them to the dead-letter output at once. A whole
//     request refused with 429/5xx or a transport error fails the whole
//     batch (retryable: retried until it succeeds).
//  3. Document ids derive from the source position, so replaying the same
//     source indexes the same ids again instead of duplicating documents:
//     id = 16 hex digits of a 64-bit hash of (the id_attrs values, e.g.
//     FileInput's "file", and Pos.Token) + "-" + Pos.Offset. Packets
//     without a position (Offset 0 and no token) get ids chosen by the
//     cluster.
//  4. The index is the packet's index_attr attribute (set by
//     DecorateFilter) or else the index template: literal text with
//     %{+<Go layout>} for the packet's event time (UTC) and %{name} for
//     an attribute.
//  5. Document body by `document`: attrs (a JSON object of the packet's
//     attributes plus timestamp_field), payload (the payload, which must be
//     a JSON object), or both (attributes plus "message": the payload).
//
// Write is called from one goroutine (engine.Output rules); it keeps no
// packet after it returns.
package es
