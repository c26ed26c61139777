// Package kafka provides the KafkaInput and KafkaOutput plugins, built on
// github.com/twmb/franz-go (kgo). It never imports kfake; tests do.
//
// # KafkaOutput
//
// The engine calls WriteAsync (or Write) from its output goroutine. Rules:
//
//  1. Each packet becomes one kgo.Record held in a preallocated slot of a
//     pooled batchState; the record's Value and Key point at the packet's
//     buffers (no copy), headers at its attribute buffers. The engine keeps
//     the packets until Completion.Done, which is called exactly once per
//     WriteAsync, from franz-go's promise goroutine (or inline when nothing
//     was produced), after every record's promise fired.
//  2. Done(nil) means the broker acknowledged every record (acks=all by
//     default). A *engine.BatchError lists the failed packets; errors that
//     retrying cannot fix are wrapped so Permanent(err) reports true.
//  3. Per-key order: franz-go's idempotent producer keeps order through
//     its own retries (record_retries, record_retry_backoff) and, when it
//     gives up on a record, fails every record buffered for the same
//     partition. The output then fences itself: new writes fail fast
//     until its in-flight records drained, so the engine re-sends the
//     failed packets before anything newer.
//  4. A record over max_record_bytes, with a topic template that cannot
//     render, or with an invalid partition fails with the reason (the
//     engine's dead-letter path).
//  5. Records carrying the destination's origin mark (cluster_id) are
//     skipped and counted; others get origin_id added when they carry no
//     mark (mirror loop prevention).
//  6. In dry run (SetDryRun) records are built and partitioned, not sent.
//  7. Linger only while the engine can still hand over records: on a
//     synchronous Write, or when the engine holds as many WriteAsync
//     batches as it ever did at once and at least two (it is then out of
//     in_flight slots), the output stops the client's linger timers so the
//     records go now; otherwise a saturated pipeline would move at most
//     in_flight*batch records per linger.
//
// dbus's own code allocates nothing per record in steady state (batch
// states, records, header slices and topic strings are reused); franz-go
// allocates per record internally.
//
// # KafkaInput
//
// Run polls records and emits one packet per record on the stream
// "topic/partition" with Pos.Offset = offset+1 and FlagBoundary; payload,
// key and timestamp are copied into the packet, and attributes
// kafka.topic, kafka.partition, kafka.offset and kafka.header.<key> are
// set. Rules:
//
//  1. Offsets are committed to the group only in Commit (engine.Committer),
//     called with the acked low watermark after the engine saved its
//     checkpoint; never from the poll loop. Commits for partitions this
//     member no longer owns are ignored.
//  2. On start a partition resumes from the group's committed offset, else
//     from start (oldest/newest); records below the engine's own
//     checkpoint of the stream are skipped (the checkpoint may be ahead of
//     the group commit after a crash).
//  3. Back pressure: NewPacket blocks when the input's pool is empty; Run
//     then stops polling and franz-go stops fetching once its bounded
//     buffers are full.
//  4. On revocation (group goroutine) the callback hands the partitions to
//     Run, which stops emitting them, flushes, waits up to revoke_timeout
//     for their in-flight packets (engine CloseStream), commits, and only
//     then lets the callback return. Lost partitions are dropped without
//     a commit; the next owner re-reads from the last commit (duplicates,
//     never loss).
//  5. Without a group, explicit partitions resume only from the engine's
//     checkpoints.
//
// # Mirror (mirror.go, mirror_topics.go, mirror_offsets.go, lag.go)
//
// A KafkaOutput fed by exactly one KafkaInput (engine.SourceBinder tells
// it, before Start) mirrors it. Rules:
//
//  1. On the Write goroutine, before each record is produced, its source
//     topic/partition/offset (the KafkaInput's attributes) is noted in the
//     batch; with create_topics a target topic not checked yet is
//     described on both clusters and created like its source (blocking
//     that goroutine once per topic). Admin calls go through clients of
//     the mirror's own (source: the input's connection settings; target:
//     without automatic topic creation, which the producer's has).
//  2. When a batch completed (promise goroutine, before its slots are
//     reset), each acknowledged record advances its source partition's
//     mirrored offset, latest offset sync and latency; mirrorState.mu
//     guards them and is never held across a client call.
//  3. With sync_groups a goroutine owned by the output (started in Start,
//     stopped in Close before the clients close) writes the offset syncs
//     and translates group offsets every sync_groups_interval; a
//     translated offset is never past a mirrored record (mirror_offsets.go).
//  4. The bookkeeping allocates nothing per record.
//
// # TLS and SASL (security.go, both plugins)
//
//  1. `tls:` is plugins/tlsconf's block; the client's dialer builds a
//     fresh *tls.Config per connection (rotated files apply to the next
//     connection), verifies the broker's name against the dialled host
//     unless server_name is set, and names the broker and the key to
//     check in every handshake error.
//  2. `sasl:` is PLAIN, SCRAM-SHA-256/512 (user, password: a secret key of
//     the spec) or OAUTHBEARER (token_file, read at every authentication).
//  3. Build (check_seeds, dbusd -t) dials every seed with TLS when on; with
//     TLS or SASL on it then sends one Metadata request to a reachable
//     seed for the plugin's fixed topics with their authorized
//     operations: a wrong password, a refused client certificate and a
//     missing ACL (READ on an input's topics and group, WRITE on an
//     output's topics) fail the build.
//  4. Brokers that drop the connection on bad credentials (instead of
//     answering SASL_AUTHENTICATION_FAILED) are recognised by a client
//     hook (authWatch) on the SASL requests; the error then says
//     "authentication failed" and names the broker, never the password.
package kafka
