// Package mysqlbinlog provides MysqlbinlogInput: row changes read from a
// MySQL or MariaDB binlog (ROW format) as JSON packets, checkpointed only
// at transaction boundaries. It also exports Peek (the operator's binlog
// tail behind `dbc peek`) and the Position token format.
//
// # Contract
//
//  1. Run is called from one goroutine (the engine's input goroutine). It
//     checks the server (preflight: credentials, grants, log_bin,
//     binlog_format=ROW, binlog_row_image=FULL, server_id), then starts
//     from Stream.Resume() when the stream has a checkpoint, else from the
//     start setting (current, earliest, gtid, file).
//  2. Each replication session owns two goroutines: go-mysql's reader
//     (which hands parsed events over a bounded channel, so back pressure
//     stops reading from the socket) and an error watcher. Both are
//     stopped and waited for before the session returns. Only the Run
//     goroutine touches the InputContext.
//  3. One packet per row change (mode: event gives one per rows event).
//     Row packets carry no FlagBoundary; at XID, COMMIT, or a standalone
//     statement (DDL) the input calls ic.Mark with the position after
//     it: token "v1|file|pos|gtidset" (Position.AppendToken), offset
//     fileSeq<<32|pos. A resume never starts inside a transaction and
//     never skips one; rows of a transaction interrupted by a lost
//     connection are emitted again (at least once).
//  4. Payload (written with strconv.Append*, no allocation per row in
//     this package once buffers have grown):
//     {"source":{"file","pos","gtid","server_id"},"db","table","kind",
//     "ts_ms","columns":[{"name","type"}],"pk":[..],"key":{..},
//     "before":{..}|null,"after":{..}|null}. Integers are JSON numbers
//     (unsigned exact), DECIMAL and temporal values exact strings,
//     TIMESTAMP in UTC, text UTF-8 strings, binary/blob/geometry base64,
//     ENUM/SET their names, BIT a number, MySQL JSON a JSON value.
//     Key: "db.table" + JSON array of primary key values (just
//     "db.table" without a primary key). Attributes db, table, kind (and
//     oversize=true above max_row_bytes).
//  5. Row images are decoded by the native decoder (native.go): straight
//     from the event bytes into the payload, in the Run goroutine, no
//     value boxed per row; go-mysql's parser goroutine only reads events
//     and their headers. Tables with a column type it does not know
//     (old-format temporal, MySQL binary JSON, geometry, vector) and
//     MariaDB compressed or MySQL partial-JSON events fall back to
//     go-mysql's row decoding, with the same output; decoder: go-mysql
//     forces that path everywhere.
//  6. Column names and types come from the table map when the server logs
//     full row metadata (binlog_row_metadata=FULL), else from the schema
//     history (history.go, ddl.go) kept in schema_file. A table whose
//     schema is not provably known stops the input with an error; it is
//     never decoded with a guessed or current schema.
//  7. Errors: network loss and server restarts reconnect with backoff from
//     the last boundary (Reconnects counts them); server settings, grants,
//     credentials, purged positions (on_purged: fail) and undecodable
//     events return a fatal error naming what to change; the engine
//     restarts the input with its own backoff, so a fixed server is picked
//     up without restarting dbusd.
//  8. Lag, Oversize, Reconnects, Rows and NativeRows are safe to call from any
//     goroutine (metrics).
//  9. Snapshots (snapshot.go, snapshot: initial, when_needed,
//     initial_only, or Snapshot/Command "snapshot" while streaming) run
//     in the Run goroutine between stream events, on a second connection,
//     in key-ordered chunks emitted as kind "read" packets. MariaDB
//     (snapshot_watermarks: auto): each chunk is read in a consistent
//     snapshot and emitted before the first event at or after its binlog
//     position. Else: a low and a high watermark (rows upserted into
//     snapshot_signal_table) around the SELECT; the stream drops the
//     chunk's keys it changes between the two and emits the rest at the
//     high watermark. The progress rides in the checkpoint token after
//     "|snap=". Snapshot, Command, Progress and ReportMetrics are safe
//     from any goroutine.
//
// # Statement packets
//
// TRUNCATE TABLE (kind "truncate") and DDL (kind "ddl": CREATE, ALTER,
// DROP, RENAME of tables, databases, indexes, views, routines; not
// accounts, not temporary tables) are packets too (statement.go), emitted
// in binlog order before the statement's boundary, after the schema
// history applied it: {"source":{..},"db","table"|null,"kind","ts_ms",
// "statement"}. Attributes db, table ("" for a statement without a
// table, such as CREATE DATABASE) and kind; key "db.table" (or "db").
// include/exclude apply to the statement's db and table; kinds chooses
// among insert, update, delete, truncate, ddl (empty: all but ddl).
//
// # XA transactions
//
// The server logs an XA transaction when it is prepared: a GTID event
// flagged FL_PREPARED_XA carrying the xid (MySQL: a query "XA START
// xid"), the rows, "XA END xid", and XA_PREPARE_LOG_EVENT as the group's
// end. The outcome is a later group of its own, "XA COMMIT xid" or "XA
// ROLLBACK xid". MariaDB logs XA COMMIT ... ONE PHASE as an ordinary
// transaction (MySQL: a prepare event flagged one-phase, which commits).
//
//  1. The rows of a prepared transaction are encoded and held in memory
//     by xid (xa.go), at most xa_max_bytes over all held transactions;
//     past it the input stops with an error naming the xid, the position
//     and the setting (the engine restarts it; it stops again at the same
//     place until the bound is raised or the transaction resolved).
//  2. XA COMMIT emits them in logged order, with the commit's position as
//     their packet offset; their payload's source still names where the
//     rows were logged (the prepare's file, pos and GTID). XA ROLLBACK
//     drops them: logged, counted by XARolledBack.
//  3. Checkpoint: a boundary marks the position after it, except while a
//     prepared transaction is unresolved: then it marks the boundary
//     before the oldest unresolved prepare (file, pos and GTID set as
//     they were before its GTID event). A checkpoint C marked at read
//     position Q implies that every transaction prepared before C was
//     resolved before Q, and its committed rows were emitted before that
//     mark and are done.
//  4. A restart (of dbusd, or of the input after an error) resumes at C:
//     re-reading the prepares after C rebuilds the held set. What was
//     read between C and Q is emitted again (at least once; duplicates
//     are bounded by what was read since the oldest unresolved prepare).
//     An XA COMMIT whose prepare lies before C is logged and skipped: its
//     rows were delivered before the restart. A reconnect within one run
//     keeps the held set and resumes after the last boundary.
//  5. A transaction left prepared holds the checkpoint back: a restart
//     re-reads from its prepare, so its binlog file must not be purged
//     (on_purged applies). XAHeld reports how many are held. At a first
//     start, a commit of a transaction prepared before the start position
//     is logged; its rows were never read.
package mysqlbinlog
