// Package admin serves dbusd's operator surface on one HTTP listener: a
// versioned JSON API under /api/v1/, Prometheus metrics at /metrics, the
// live pipeline page at /ui/, and, when enabled, /debug/pprof/.
//
// Endpoints (JSON; every error is a 4xx/5xx with body {"error": "..."}):
//
//	GET  /api/v1/status                 version, uptime, config generation, last reload
//	GET  /api/v1/plugins[?kind=K]       registered plugin classes with their config specs
//	GET  /api/v1/plugins/{class}        one class (404 when unknown)
//	GET  /api/v1/plugins/{name}/query?k=v...
//	                                    state of a running queryable plugin
//	                                    (engine.Queryable: Cardinality, Funnel);
//	                                    404 unknown plugin, 400 not queryable or
//	                                    bad parameters, 409 during a reload
//	GET  /api/v1/dag                    nodes with counters and live rates, edges
//	GET  /api/v1/queues                 ring depths, pools, in-flight windows
//	GET  /api/v1/checkpoints            committed checkpoints per input and stream
//	POST /api/v1/inputs/{name}/pause    pause any input (404 unknown, 400 not an input,
//	POST /api/v1/inputs/{name}/resume     409 while a reload may be stopping it)
//	POST /api/v1/reload                 body: YAML config; empty body: re-read the file
//	                                    (400 invalid, 409 another reload runs)
//	GET  /api/v1/tap/{node}?max=&every=&payload_bytes=&timeout=&format=ndjson|sse
//	                                    sampled packets as NDJSON or SSE (403 when off,
//	                                    400 over a limit, 409 node already tapped,
//	                                    429 too many taps)
//
// A cluster member (Options.Member, member.go) also serves
// GET /api/v1/cluster, GET /api/v1/resources and each resource engine's
// API under /api/v1/resources/{id}/, and shows resource nodes as
// "<id>/<plugin>" in the top-level views.
//
// A request that fails changes nothing in the pipeline. With a token
// configured, /api/, /metrics and /debug/pprof/ require
// "Authorization: Bearer <token>"; the page's static assets do not (the
// page takes the token from its URL fragment, #token=..., and sends it).
//
// Security (security.go, policy.go; the threat model is in the README):
//  1. Every route checks Host against DNS rebinding: a loopback listener
//     answers only localhost, IP addresses and admin.allowed_hosts.
//  2. /api/, /metrics and /debug/pprof/ refuse requests a browser marks
//     as cross-origin (http.CrossOriginProtection for unsafe methods, the
//     same Sec-Fetch-Site/Origin rule for GET and HEAD) and OPTIONS (no
//     CORS, ever).
//  3. Without a token, /api/ and /debug/pprof/ need "X-Dbus-Request: 1"
//     (RequestHeader), which another origin cannot send without a
//     preflight.
//  4. Unsafe methods accept a body only as YAML or JSON.
//  5. A config posted to the reload API is checked against the file's
//     (checkPosted): commands and paths need the file or
//     admin.allow_commands / admin.allowed_paths, which it cannot set.
//  6. Start refuses a non-loopback listener without a token or client
//     CA; the listener has read/write/idle timeouts and max_connections.
//
// Life cycle:
//  1. Start(ctx, Options{...}) decodes the admin: section strictly, listens,
//     and starts the config-file watcher when admin.watch is set. It returns
//     (nil, nil) when the config has no admin: section and no listen
//     override: the admin API is off.
//  2. The server serves until ctx ends or Close is called; Close ends tap
//     streams and the watcher and waits for them. Close on nil is a no-op.
//  3. ReloadFile is the one way to reload from the file (API, watcher, and
//     SIGHUP should all use it so /status reports the last reload).
//
// Reloads are serialised: a reload started while one runs is rejected with
// engine.ErrReloadInProgress (HTTP 409), never queued. Inputs the operator
// paused are paused again after a reload that replaced their component.
// Changes to the admin: section itself apply at the next restart.
//
// Nothing here runs on the packet path: rates are computed from counter
// snapshots taken when a client asks, metrics are read when scraped, and
// a tap costs the pipeline nothing until one is requested.
package admin
