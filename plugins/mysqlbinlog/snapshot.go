package mysqlbinlog

// Snapshots of the rows that already exist, interleaved with the binlog
// stream by low and high watermarks (Netflix DBLog's algorithm; Debezium's
// incremental snapshots use the same idea). Everything here runs in the
// Run goroutine except Snapshot (requests) and ReportMetrics/Progress
// (read under snapshotter.mu).
//
// Per chunk (snapshotter.step, then the stream):
//
//  1. the low watermark: upsert a row of the signal table (one row per
//     input, keyed by server_id) with a fresh value, autocommit (InnoDB:
//     its commit orders it after every transaction before it in the
//     binlog, which the SELECT thus sees);
//  2. SELECT the next chunk_rows rows of the table in key order after the
//     last key of the previous chunk;
//  3. the high watermark the same way: every change the SELECT saw is in
//     the binlog before it. It is also the next chunk's low watermark, so
//     a chunk costs one write, and up to snapAhead chunks are read ahead
//     of the stream (their windows follow each other in the binlog);
//  4. go on reading the stream. Between the low and the high watermark,
//     every row change of the table drops its key (before and after
//     image) from the chunk buffer: the stream carries that row's newer
//     state itself. At the high watermark the rows left are emitted as
//     kind "read" packets, at the high watermark's position, and the
//     chunk's last key becomes the snapshot progress written into the
//     checkpoint token with the next transaction boundary.
//
// A read row is thus never older than a change the stream emitted before
// it, and every change after the read follows it: a compacted topic ends
// with each key's current state. The table's rows are never locked.
//
// On MariaDB (snapshot_watermarks: auto) no watermark is written: each
// chunk is read in its own START TRANSACTION WITH CONSISTENT SNAPSHOT,
// whose binlog_snapshot_file/_position status is the binlog position the
// read view corresponds to exactly (every transaction before it visible,
// none after). The stream has not passed that position when the SELECT
// ends (it only handles what was written before), so the chunk is
// emitted when the stream reaches it: before the first event at or after
// it. Nothing between needs reconciling, and no signal table is needed.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Snapshot modes (Debezium's names).
const (
	SnapshotNever       = "never"
	SnapshotInitial     = "initial"
	SnapshotWhenNeeded  = "when_needed"
	SnapshotInitialOnly = "initial_only"
)

// snapState is the snapshot progress kept in the checkpoint token: the
// tables still to read (the first is being read) and the chunk key of the
// last row of the last finished chunk of the first table.
type snapState struct {
	Tables []string `json:"tables"`
	// After holds the key values of the last row read (text; binary
	// columns as hex), nil: from the table's first row.
	After []string `json:"after,omitempty"`
	Rows  int64    `json:"rows,omitempty"` // rows of Tables[0] emitted so far
}

// snapTokenSep separates the position token from the snapshot state:
// v1|file|pos|gtid|snap={json}. A GTID set never contains '|'.
const snapTokenSep = "|snap="

// splitSnapToken splits a checkpoint token into its position part and the
// snapshot state (nil when none is pending).
func splitSnapToken(tok string) (string, *snapState, error) {
	i := strings.Index(tok, snapTokenSep)
	if i < 0 {
		return tok, nil, nil
	}
	var st snapState
	if err := json.Unmarshal([]byte(tok[i+len(snapTokenSep):]), &st); err != nil {
		return tok, nil, fmt.Errorf("checkpoint token: bad snapshot state: %v", err)
	}
	return tok[:i], &st, nil
}

// snapTable is a table being snapshotted: its compiled schema (the same
// as the stream's, so payloads are alike) and its chunk key.
type snapTable struct {
	db, name string
	t        *table
	key      []int // chunk key columns (primary key, else a unique NOT NULL key); nil: none
	keyName  string
	cols     string // the SELECT list
	from     string // `db`.`table`
	estimate int64  // rows, from information_schema (InnoDB's estimate)
	gone     bool   // the table does not exist (nothing to read)
}

// chunkRow is one buffered row: spans of the chunk's arena.
type chunkRow struct {
	key, body, ckey span
	dropped         bool
}

// snapAhead is how many chunks are read ahead of the stream.
const snapAhead = 2

// chunk is a chunk read and not yet emitted.
type chunk struct {
	st        *snapTable
	at        Position // position mode: the read view's binlog position
	low, high string
	lowSeen   bool
	arena     []byte
	rows      []chunkRow
	index     map[string]int32 // conflict key -> row; built at the first conflict
	last      []string         // key of the last buffered row
	done      bool             // the table has no row after this chunk
	tooBig    bool             // a table without key did not fit chunk_bytes
	schemaChg bool             // the table changed between the watermarks

	// A chunk being read: the reader goroutine (fill) owns arena, rows,
	// last, done, tooBig and err until it closes ready; the Run goroutine
	// collects it (collect) before it reads them. Keys the stream drops
	// meanwhile wait in pend (Run goroutine only).
	ready   chan struct{} // nil: complete
	atReady chan struct{} // position mode: nil once at is known
	err     error
	what    string // the statement that failed
	pend    []byte
	pendS   []span
}

// tableProgress is what the admin API, /metrics and the log show.
type tableProgress struct {
	Table    string    `json:"table"`
	Rows     int64     `json:"rows"`
	Estimate int64     `json:"estimate"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	ETA      string    `json:"eta,omitempty"`
}

// snapshotter runs the snapshots of one Input. Fields without a comment
// are owned by the Run goroutine.
type snapshotter struct {
	cfg     *Config
	filters *filters
	sigDB   string
	sigName string
	runID   string
	seq     uint64
	conn    *client.Conn
	log     *slog.Logger

	state snapState
	tok   []byte // snapTokenSep + state JSON; nil: nothing pending
	// Chunks read ahead of the stream, in binlog order: ahead[0]'s window
	// is open (lowSeen) or next. Planning runs ahead of state: planTi is
	// the index in state.Tables of the table read next, planAfter its
	// last key read, planCur its schema (nil: load).
	ahead     []*chunk
	lastW     string // the last watermark written ("": write a fresh low first)
	planTi    int
	planAfter []string
	planCur   *snapTable
	free      []*chunk // buffers of emitted chunks, reused
	busy      *chunk   // the chunk the reader goroutine fills (it owns conn meanwhile)
	emitted   uint64   // chunks emitted or dropped (idle: progress was made)
	posMode   bool     // MariaDB consistent-snapshot positions, no watermark writes
	sigReady  bool     // the signal table was created on this connection
	seenFile  string   // position mode: end of the last event the stream handled
	seenPos   uint32
	scratch   []byte
	head      []byte
	ckey      []byte
	batch     []*pack.Packet
	ran       bool // a snapshot ran in this Run (initial_only stops after)
	lastLog   time.Time

	hasReqs atomic.Bool
	wake    chan struct{} // a request is queued (buffer 1)

	mu       sync.Mutex // guards reqs and the progress fields below
	reqs     []string
	progress []*tableProgress // recent tables, the current one last
	pending  int              // tables queued after the current one
	chunks   uint64
	dropped  uint64 // rows dropped from chunks because the stream had them
	rowsRead uint64
}

func newSnapshotter(cfg *Config, f *filters) *snapshotter {
	s := &snapshotter{cfg: cfg, filters: f, wake: make(chan struct{}, 1)}
	s.sigDB, s.sigName, _ = strings.Cut(cfg.SnapshotSignalTable, ".")
	return s
}

// reset prepares a Run: the state from the checkpoint (nil: none).
func (s *snapshotter) reset(st *snapState, log *slog.Logger, mariadb bool) {
	s.closeConn()
	s.posMode = mariadb && s.cfg.SnapshotWatermarks != "signal_table"
	s.seenFile, s.seenPos = "", 0
	s.log = log
	var b [8]byte
	rand.Read(b[:])
	s.runID = hex.EncodeToString(b[:])
	s.seq = 0
	s.state = snapState{}
	if st != nil {
		s.state = *st
	}
	s.ran = false
	s.resetPlan()
	s.setState()
}

// resetPlan drops the chunks read ahead: planning restarts from the
// state (after a restart, a reconnect at another position, a chunk that
// must be read again).
func (s *snapshotter) resetPlan() {
	s.settle()
	for _, w := range s.ahead {
		s.free = append(s.free, w)
	}
	s.ahead = s.ahead[:0]
	s.lastW = ""
	s.planTi = 0
	s.planAfter = append(s.planAfter[:0], s.state.After...)
	s.planCur = nil
}

// open returns the chunk whose window the stream is in, nil if none.
func (s *snapshotter) open() *chunk {
	if len(s.ahead) > 0 && s.ahead[0].lowSeen {
		return s.ahead[0]
	}
	return nil
}

func (s *snapshotter) closeConn() {
	s.settle()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.sigReady = false
}

// active reports whether tables are queued or a chunk is in flight.
func (s *snapshotter) active() bool { return len(s.state.Tables) > 0 || len(s.ahead) > 0 }

// setState rebuilds the token suffix and the progress counters.
func (s *snapshotter) setState() {
	if len(s.state.Tables) == 0 {
		s.tok = nil
	} else {
		b, _ := json.Marshal(&s.state)
		s.tok = append(append(s.tok[:0], snapTokenSep...), b...)
	}
	s.mu.Lock()
	s.pending = max(len(s.state.Tables)-1, 0)
	s.mu.Unlock()
}

// appendToken appends the snapshot state to a position token.
func (s *snapshotter) appendToken(dst []byte) []byte { return append(dst, s.tok...) }

// isSignal reports whether t is the signal table.
func (s *snapshotter) isSignal(db, name string) bool {
	return name == s.sigName && db == s.sigDB
}

// queue adds tables (db.table) to the snapshot, skipping those queued.
func (s *snapshotter) queue(tables []string) {
	for _, t := range tables {
		dup := false
		for _, q := range s.state.Tables {
			if q == t {
				dup = true
				break
			}
		}
		if !dup {
			s.state.Tables = append(s.state.Tables, t)
		}
	}
	s.setState()
}

// request queues an ad hoc snapshot (any goroutine).
func (s *snapshotter) request(tables []string) {
	s.mu.Lock()
	s.reqs = append(s.reqs, tables...)
	s.mu.Unlock()
	s.hasReqs.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// planAll queues every included base table.
func (s *snapshotter) planAll(ctx context.Context) error {
	c, err := s.connection(ctx)
	if err != nil {
		return err
	}
	// Databases first (no table is opened), then the tables of those
	// include can match: a lock held in an unrelated database (a DDL
	// waiting behind a prepared XA transaction) does not stall the plan.
	r, err := c.Execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return s.sqlError("list databases", err)
	}
	var tables []string
	for i := 0; i < r.RowNumber(); i++ {
		db, _ := r.GetString(i, 0)
		switch db {
		case "mysql", "information_schema", "performance_schema", "sys":
			continue
		}
		if !s.dbWanted(db) {
			continue
		}
		tr, err := c.Execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", db)
		if err != nil {
			return s.sqlError("list tables of "+db, err)
		}
		for j := 0; j < tr.RowNumber(); j++ {
			name, _ := tr.GetString(j, 0)
			if s.isSignal(db, name) || !s.filters.keepTable(db, name) {
				continue
			}
			tables = append(tables, db+"."+name)
		}
	}
	s.queue(tables)
	if len(tables) == 0 {
		s.ran = true // nothing to read: initial_only is done
	}
	s.log.Info("snapshot planned", "tables", len(tables), "chunk_rows", s.cfg.SnapshotChunkRows, "signal_table", s.cfg.SnapshotSignalTable)
	return nil
}

// dbWanted reports whether include can match tables of db.
func (s *snapshotter) dbWanted(db string) bool {
	if len(s.filters.include) == 0 {
		return true
	}
	for _, p := range s.filters.include {
		dp, _, _ := strings.Cut(p, ".")
		if ok, _ := path.Match(dp, db); ok {
			return true
		}
	}
	return false
}

func (s *snapshotter) sqlError(what string, err error) error {
	if e := explainServerError(err, s.cfg); e != nil {
		return e
	}
	if myError(err) != nil {
		// A server-side error (no table, bad SQL): retrying the same
		// statement does not help.
		return fatal("snapshot: %s on %s: %v", what, s.cfg.Addr, err)
	}
	s.closeConn()
	return fmt.Errorf("snapshot: %s on %s: %w", what, s.cfg.Addr, err)
}

// connection returns the query connection, opening it (and the signal
// table) on first use.
func (s *snapshotter) connection(ctx context.Context) (*client.Conn, error) {
	if s.busy != nil {
		if err := s.collect(s.busy); err != nil {
			return nil, err
		}
	}
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := connect(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	// A lock wait (a DDL queued on a table) fails the chunk after a
	// minute instead of stalling the stream; the input restarts from its
	// checkpoint.
	for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION time_zone = '+00:00'", "SET SESSION autocommit = 1", "SET SESSION lock_wait_timeout = 60"} {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, fmt.Errorf("snapshot connection to %s: %s: %w", s.cfg.Addr, q, err)
		}
	}
	s.conn = c
	return c, nil
}

// ensureSignal creates the signal table if it is missing.
func (s *snapshotter) ensureSignal(c *client.Conn) error {
	if s.sigReady {
		return nil
	}
	if _, err := c.Execute("CREATE TABLE IF NOT EXISTS " + quoteID(s.sigDB) + "." + quoteID(s.sigName) +
		" (id INT UNSIGNED NOT NULL PRIMARY KEY, wm VARCHAR(64) NOT NULL, ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))"); err != nil {
		s.closeConn()
		if me := myError(err); me != nil {
			return fatal("snapshot: cannot create the signal table %s on %s: %v (create it yourself, or GRANT CREATE, INSERT, UPDATE ON %s.* TO '%s'; set snapshot_signal_table to a database dbus may write)",
				s.cfg.SnapshotSignalTable, s.cfg.Addr, me.Message, quoteID(s.sigDB), s.cfg.User)
		}
		return fmt.Errorf("snapshot: create signal table on %s: %w", s.cfg.Addr, err)
	}
	s.sigReady = true
	return nil
}

// watermark writes a watermark value into the signal table.
func (s *snapshotter) watermark(c *client.Conn, wm string) error {
	if _, err := c.Execute(s.watermarkQuery(wm)); err != nil {
		return s.watermarkError(err)
	}
	return nil
}

// watermarkQuery is the statement that writes watermark wm (it starts
// with "INSERT INTO ").
func (s *snapshotter) watermarkQuery(wm string) string {
	return "INSERT INTO " + quoteID(s.sigDB) + "." + quoteID(s.sigName) + " (id, wm) VALUES (" +
		strconv.FormatUint(uint64(s.cfg.ServerID), 10) + ", '" + wm + "') ON DUPLICATE KEY UPDATE wm = VALUES(wm)"
}

func (s *snapshotter) watermarkError(err error) error {
	if me := myError(err); me != nil {
		return fatal("snapshot: cannot write the watermark into %s on %s: %v (GRANT INSERT, UPDATE ON %s TO '%s')",
			s.cfg.SnapshotSignalTable, s.cfg.Addr, me.Message, s.cfg.SnapshotSignalTable, s.cfg.User)
	}
	s.closeConn()
	return fmt.Errorf("snapshot: watermark on %s: %w", s.cfg.Addr, err)
}

// takeRequests moves ad hoc requests into the state.
func (s *snapshotter) takeRequests() {
	if !s.hasReqs.Load() {
		return
	}
	s.mu.Lock()
	reqs := s.reqs
	s.reqs = nil
	s.hasReqs.Store(false)
	s.mu.Unlock()
	if len(reqs) > 0 {
		s.log.Info("ad hoc snapshot requested", "tables", strings.Join(reqs, ","))
		s.queue(reqs)
	}
}

// step reads chunks ahead of the stream (up to snapAhead) while tables
// are queued. It runs in the stream loop, before each event.
func (s *snapshotter) step(ctx context.Context) error {
	s.takeRequests()
	if w := s.busy; w != nil {
		select {
		case <-w.ready:
			if err := s.collect(w); err != nil {
				return err
			}
		default:
			return nil // the reader still has the connection
		}
	}
	for s.busy == nil && len(s.ahead) < snapAhead && s.planTi < len(s.state.Tables) {
		if s.planCur == nil {
			name := s.state.Tables[s.planTi]
			st, err := s.loadTable(ctx, name)
			if err != nil {
				return err
			}
			if st == nil { // gone: an empty last chunk ends it in order
				db, tbl, _ := strings.Cut(name, ".")
				st = &snapTable{db: db, name: tbl, gone: true}
			}
			s.planCur = st
			if !st.gone {
				rows := int64(0)
				if s.planTi == 0 {
					rows = s.state.Rows
				}
				s.startProgress(st, rows)
			}
		}
		if err := s.readChunk(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startProgress starts the progress entry of a table whose first chunk
// is read (rows: those a resumed snapshot emitted before).
func (s *snapshotter) startProgress(st *snapTable, rows int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progressOf(st.db+"."+st.name) != nil {
		return
	}
	if len(s.progress) >= 32 {
		s.progress = append(s.progress[:0], s.progress[1:]...)
	}
	s.progress = append(s.progress, &tableProgress{Table: st.db + "." + st.name, Rows: rows, Estimate: st.estimate, Started: time.Now()})
}

// progressOf returns the unfinished progress entry of table (s.mu held).
func (s *snapshotter) progressOf(table string) *tableProgress {
	for i := len(s.progress) - 1; i >= 0; i-- {
		if pr := s.progress[i]; pr.Table == table && pr.Finished.IsZero() {
			return pr
		}
	}
	return nil
}

// nextWatermark returns a fresh watermark value.
func (s *snapshotter) nextWatermark() string {
	s.seq++
	return s.runID + ":" + strconv.FormatUint(s.seq, 10)
}

// readChunk reads the next planned chunk between the last watermark (a
// fresh one is written first if needed) and a new one.
func (s *snapshotter) readChunk(ctx context.Context) error {
	c, err := s.connection(ctx)
	if err != nil {
		return err
	}
	if s.posMode {
		return s.readChunkAt(c)
	}
	if err := s.ensureSignal(c); err != nil {
		return err
	}
	if s.lastW == "" {
		wm := s.nextWatermark()
		if err := s.watermark(c, wm); err != nil {
			return err
		}
		s.lastW = wm
	}
	st := s.planCur
	var w *chunk
	if n := len(s.free); n > 0 {
		w, s.free = s.free[n-1], s.free[:n-1]
	} else {
		w = &chunk{}
	}
	*w = chunk{st: st, arena: w.arena[:0], rows: w.rows[:0], last: w.last[:0], pend: w.pend[:0], pendS: w.pendS[:0], low: s.lastW}
	if st.gone {
		w.done = true
		return s.endChunk(c, w)
	}
	// The reader selects the rows, then writes the high watermark; the
	// chunk is in ahead from now on, so the stream drops the keys it
	// changes from the window (into pend until the rows are in).
	w.high = s.nextWatermark()
	s.lastW = w.high
	s.launch(c, w, nil, s.watermarkQuery(w.high), false, "read chunk of "+st.db+"."+st.name)
	return nil
}

// launch hands the connection to a reader goroutine that runs head (if
// any), fills w by its chunk query, then runs tail (always, or only if
// the read succeeded). w joins ahead at once; the plan moves on when it
// is collected.
func (s *snapshotter) launch(c *client.Conn, w *chunk, head func() error, tail string, always bool, what string) {
	q := s.chunkQuery(w.st, s.planAfter)
	ready := make(chan struct{})
	w.ready, w.err, w.what = ready, nil, what
	s.busy = w
	s.ahead = append(s.ahead, w)
	go func() {
		defer close(ready)
		var err error
		if head != nil {
			err = head()
		}
		if err == nil {
			err = s.selectRows(c, w, q)
		}
		if err == nil || always {
			if _, terr := c.Execute(tail); err == nil && terr != nil {
				err = terr
				w.what = tail
			}
		}
		w.err = err
	}()
}

// collect waits for the reader to finish w (s.busy), takes the
// connection back, applies the keys the stream dropped meanwhile and
// moves the plan on.
func (s *snapshotter) collect(w *chunk) error {
	<-w.ready
	w.ready, w.atReady, s.busy = nil, nil, nil
	if err := w.err; err != nil {
		what := w.what
		s.resetPlan() // w goes back to free
		if strings.HasPrefix(what, "INSERT INTO ") {
			return s.watermarkError(err)
		}
		return s.sqlError(what, err)
	}
	for _, sp := range w.pendS {
		s.dropKey(w, w.pend[sp.off:sp.off+sp.n])
	}
	w.pend, w.pendS = w.pend[:0], w.pendS[:0]
	s.advance(w)
	return nil
}

// settle waits for the reader goroutine, if any, and forgets its chunk's
// outcome (the plan is reset or the connection closed after it).
func (s *snapshotter) settle() {
	if w := s.busy; w != nil {
		<-w.ready
		w.ready, w.atReady, s.busy = nil, nil, nil
	}
}

// await makes sure w's rows are in (it is collected).
func (s *snapshotter) await(w *chunk) error {
	if w.ready != nil && s.busy == w {
		return s.collect(w)
	}
	return nil
}

// newChunk returns an empty chunk of the planned table.
func (s *snapshotter) newChunk() *chunk {
	var w *chunk
	if n := len(s.free); n > 0 {
		w, s.free = s.free[n-1], s.free[:n-1]
	} else {
		w = &chunk{}
	}
	*w = chunk{st: s.planCur, arena: w.arena[:0], rows: w.rows[:0], last: w.last[:0], pend: w.pend[:0], pendS: w.pendS[:0]}
	return w
}

// readChunkAt reads the next chunk in a consistent snapshot and notes
// its binlog position (position mode).
func (s *snapshotter) readChunkAt(c *client.Conn) error {
	w := s.newChunk()
	if w.st.gone {
		w.done = true
		s.planned(w)
		return nil
	}
	// The reader opens the consistent snapshot and publishes its binlog
	// position (w.at, by closing atReady), then selects and commits while
	// the stream goes on. The stream handles no event before the position
	// is known (beforeEvent), and the chunk is emitted when the stream
	// reaches it, after the reader is done.
	atReady := make(chan struct{})
	w.atReady = atReady
	s.launch(c, w, func() error {
		defer close(atReady)
		return openSnapshot(c, w)
	}, "COMMIT", true, "read chunk of "+w.st.db+"."+w.st.name+" in a consistent snapshot")
	return nil
}

// openSnapshot starts a consistent snapshot on c and notes its binlog
// position in w.at (reader goroutine).
func openSnapshot(c *client.Conn, w *chunk) error {
	if _, err := c.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return err
	}
	r, err := c.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err == nil {
		for i := 0; i < r.RowNumber(); i++ {
			name, _ := r.GetString(i, 0)
			v, _ := r.GetString(i, 1)
			switch strings.ToLower(name) {
			case "binlog_snapshot_file":
				w.at.File = v
			case "binlog_snapshot_position":
				p, _ := strconv.ParseUint(v, 10, 32)
				w.at.Pos = uint32(p)
			}
		}
		if w.at.File == "" || w.at.Pos == 0 {
			err = fmt.Errorf("binlog_snapshot_file/_position are empty")
		}
	}
	if err != nil {
		w.at = Position{}
	}
	return err
}

// awaitPos waits until w's read-view position is known (position mode).
func (s *snapshotter) awaitPos(w *chunk) {
	if w.atReady != nil {
		<-w.atReady
		w.atReady = nil
	}
}

// selectRows reads w's rows by q (in the reader goroutine: it touches
// only w and the connection).
func (s *snapshotter) selectRows(c *client.Conn, w *chunk, q string) error {
	st := w.st
	var err error
	var res mysql.Result
	row := &snapRow{}
	limit := s.cfg.SnapshotChunkRows
	maxBytes := int(s.cfg.SnapshotChunkBytes)
	n := 0
	full := false
	err = c.ExecuteSelectStreaming(q, &res, func(vals []mysql.FieldValue) error {
		n++
		if full {
			return nil
		}
		row.vals = vals
		if err := s.addRow(w, row); err != nil {
			return err
		}
		if st.key != nil && maxBytes > 0 && len(w.arena) >= maxBytes {
			full = true // the next chunk starts after this row
		} else if st.key == nil && maxBytes > 0 && len(w.arena) >= maxBytes {
			full, w.tooBig = true, true
		}
		if st.key != nil && (full || n == limit) {
			w.last = keyText(w.last[:0], st, vals)
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	w.done = st.key == nil || n < limit && !full
	return nil
}

// addRow encodes row (key, payload body, chunk key) into w's arena.
func (s *snapshotter) addRow(w *chunk, row *snapRow) error {
	st := w.st
	var r chunkRow
	at := len(w.arena)
	var err error
	if w.arena, err = appendKey(w.arena, st.t, row, s.cfg.MaskValue); err != nil {
		return fmt.Errorf("cannot encode the key of a row of %s.%s: %v", st.db, st.name, err)
	}
	r.key = span{int32(at), int32(len(w.arena) - at)}
	at = len(w.arena)
	if w.arena, err = appendRowBody(w.arena, nil, st.t, (*snapRow)(nil), row, s.cfg.MaskValue); err != nil {
		return fmt.Errorf("cannot encode row of %s.%s: %v", st.db, st.name, err)
	}
	r.body = span{int32(at), int32(len(w.arena) - at)}
	if st.key != nil {
		at = len(w.arena)
		w.arena = appendCKey(w.arena, st.t, row, st.key, s.cfg.MaskValue)
		r.ckey = span{int32(at), int32(len(w.arena) - at)}
	}
	w.rows = append(w.rows, r)
	return nil
}

// endChunk writes the chunk's high watermark and moves the plan on.
func (s *snapshotter) endChunk(c *client.Conn, w *chunk) error {
	w.high = s.nextWatermark()
	if err := s.watermark(c, w.high); err != nil {
		s.free = append(s.free, w)
		return err
	}
	s.lastW = w.high
	s.planned(w)
	return nil
}

// planned appends w to the chunks read ahead and moves the plan on.
func (s *snapshotter) planned(w *chunk) {
	s.ahead = append(s.ahead, w)
	s.advance(w)
}

// advance moves the plan after w.
func (s *snapshotter) advance(w *chunk) {
	if w.done {
		s.planTi++
		s.planAfter = s.planAfter[:0]
		s.planCur = nil
	} else {
		s.planAfter = append(s.planAfter[:0], w.last...)
	}
}

// chunkQuery is the SELECT of the next chunk.
func (s *snapshotter) chunkQuery(st *snapTable, after []string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(st.cols)
	b.WriteString(" FROM ")
	b.WriteString(st.from)
	if st.key == nil {
		return b.String()
	}
	if len(after) == len(st.key) {
		// (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...
		b.WriteString(" WHERE ")
		for i := range st.key {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteByte('(')
			for j := 0; j <= i; j++ {
				if j > 0 {
					b.WriteString(" AND ")
				}
				c := &st.t.cols[st.key[j]]
				b.WriteString(quoteID(c.def.Name))
				if j < i {
					b.WriteString(" = ")
				} else {
					b.WriteString(" > ")
				}
				b.WriteString(sqlLiteral(c, after[j]))
			}
			b.WriteByte(')')
		}
	}
	b.WriteString(" ORDER BY ")
	for i, k := range st.key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteID(st.t.cols[k].def.Name))
	}
	b.WriteString(" LIMIT ")
	b.WriteString(strconv.Itoa(s.cfg.SnapshotChunkRows))
	return b.String()
}

// keyText keeps a row's key values for the next chunk's WHERE (and the
// checkpoint): numbers and strings as their text, binary as hex.
func keyText(dst []string, st *snapTable, vals []mysql.FieldValue) []string {
	for _, k := range st.key {
		v := &vals[k]
		switch v.Type {
		case mysql.FieldValueTypeSigned:
			dst = append(dst, strconv.FormatInt(v.AsInt64(), 10))
		case mysql.FieldValueTypeUnsigned:
			dst = append(dst, strconv.FormatUint(v.AsUint64(), 10))
		default:
			if st.t.cols[k].kind == vkBinary {
				dst = append(dst, hex.EncodeToString(v.AsString()))
			} else {
				dst = append(dst, string(v.AsString()))
			}
		}
	}
	return dst
}

// sqlLiteral renders a kept key value as a literal comparable with column
// c under its own collation: numbers as they are, binary as X'hex', text
// and temporal values as a utf8mb4 string introduced in hex (safe under
// any sql_mode).
func sqlLiteral(c *column, v string) string {
	switch c.kind {
	case vkNumber, vkDecimal:
		for i := 0; i < len(v); i++ {
			if !strings.ContainsRune("0123456789+-.eE", rune(v[i])) {
				return "NULL" // never matches: the chunk reads nothing more
			}
		}
		return v
	case vkBinary:
		return "X'" + v + "'"
	}
	return "_utf8mb4 X'" + hex.EncodeToString([]byte(v)) + "'"
}

func quoteID(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// loadTable reads a table's columns and keys from information_schema and
// compiles it as the stream would. nil: the table does not exist.
func (s *snapshotter) loadTable(ctx context.Context, name string) (*snapTable, error) {
	c, err := s.connection(ctx)
	if err != nil {
		return nil, err
	}
	db, tbl, ok := strings.Cut(name, ".")
	if !ok {
		s.log.Warn("snapshot: bad table name, skipped (want db.table)", "table", name)
		return nil, nil
	}
	r, err := c.Execute("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(NUMERIC_PRECISION, 0), IFNULL(NUMERIC_SCALE, 0), "+
		"IFNULL(DATETIME_PRECISION, 0), IFNULL(CHARACTER_SET_NAME, ''), IFNULL(CHARACTER_OCTET_LENGTH, 0), IS_NULLABLE "+
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", db, tbl)
	if err != nil {
		return nil, s.sqlError("read columns of "+name, err)
	}
	n := r.RowNumber()
	if n == 0 {
		s.log.Warn("snapshot: table does not exist, skipped", "table", name)
		return nil, nil
	}
	tm := &replication.TableMapEvent{Schema: []byte(db), Table: []byte(tbl), ColumnCount: uint64(n),
		ColumnType: make([]byte, n), ColumnMeta: make([]uint16, n)}
	def := TableDef{Columns: make([]ColumnDef, n)}
	byName := map[string]int{}
	notNull := make([]bool, n)
	for i := 0; i < n; i++ {
		col, _ := r.GetString(i, 0)
		dt, _ := r.GetString(i, 1)
		ct, _ := r.GetString(i, 2)
		prec, _ := r.GetInt(i, 3)
		scale, _ := r.GetInt(i, 4)
		dtp, _ := r.GetInt(i, 5)
		cs, _ := r.GetString(i, 6)
		octets, _ := r.GetInt(i, 7)
		nullable, _ := r.GetString(i, 8)
		notNull[i] = nullable == "NO"
		tp, meta, unsigned, binary, ok := binlogType(strings.ToLower(dt), strings.ToLower(ct), prec, scale, dtp, cs, octets)
		if !ok {
			return nil, fatal("snapshot of %s: column %s has type %s that the snapshot cannot read yet", name, col, ct)
		}
		tm.ColumnType[i], tm.ColumnMeta[i] = tp, meta
		// The connection converts latin1 to utf8mb4 already.
		def.Columns[i] = ColumnDef{Name: col, Unsigned: unsigned, Binary: binary, Type: typeName(tp, meta, unsigned, binary)}
		byName[col] = i
	}
	st := &snapTable{db: db, name: tbl, from: quoteID(db) + "." + quoteID(tbl)}
	// Keys: the primary key first, else unique keys on NOT NULL columns.
	r, err = c.Execute("SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? "+
		"AND NON_UNIQUE = 0 ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX", db, tbl)
	if err != nil {
		return nil, s.sqlError("read keys of "+name, err)
	}
	type idx struct {
		name string
		cols []int
	}
	var keys []idx
	for i := 0; i < r.RowNumber(); i++ {
		in, _ := r.GetString(i, 0)
		cn, _ := r.GetString(i, 1)
		if len(keys) == 0 || keys[len(keys)-1].name != in {
			keys = append(keys, idx{name: in})
		}
		keys[len(keys)-1].cols = append(keys[len(keys)-1].cols, byName[cn])
	}
	if len(keys) > 0 && keys[0].name == "PRIMARY" {
		def.PK = keys[0].cols
	}
	t, err := compile(tm, def, s.filters, "snapshot")
	if err != nil {
		return nil, fatal("snapshot of %s: %v", name, err)
	}
	st.t = t
	for _, k := range keys {
		usable := true
		for _, ci := range k.cols {
			switch t.cols[ci].kind {
			case vkNumber, vkDecimal, vkString, vkBinary, vkTemporal:
			default:
				usable = false
			}
			if strings.HasPrefix(t.cols[ci].def.Type, "float") || strings.HasPrefix(t.cols[ci].def.Type, "double") || !notNull[ci] {
				usable = false
			}
		}
		if usable {
			st.key, st.keyName = k.cols, k.name
			break
		}
	}
	var cols strings.Builder
	for i := range t.cols {
		if i > 0 {
			cols.WriteByte(',')
		}
		cols.WriteString(quoteID(t.cols[i].def.Name))
	}
	st.cols = cols.String()
	if r, err := c.Execute("SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, tbl); err == nil && r.RowNumber() > 0 {
		st.estimate, _ = r.GetInt(0, 0)
	}
	if st.key == nil {
		s.log.Warn("snapshot: table has no primary key nor unique NOT NULL key: read whole in one window (changes during the read are not reconciled; bounded by snapshot_chunk_bytes)",
			"table", name)
	}
	return st, nil
}

// binlogType maps an information_schema column to the binlog type and
// metadata the table map would carry, so the snapshot compiles the table
// like the stream does.
func binlogType(dt, ct string, prec, scale, dtp int64, cs string, octets int64) (tp byte, meta uint16, unsigned, binary, ok bool) {
	unsigned = strings.Contains(ct, "unsigned")
	binary = cs == "" || cs == "binary"
	ok = true
	switch dt {
	case "tinyint", "bool", "boolean":
		tp = mysql.MYSQL_TYPE_TINY
	case "smallint":
		tp = mysql.MYSQL_TYPE_SHORT
	case "mediumint":
		tp = mysql.MYSQL_TYPE_INT24
	case "int", "integer":
		tp = mysql.MYSQL_TYPE_LONG
	case "bigint":
		tp = mysql.MYSQL_TYPE_LONGLONG
	case "decimal", "numeric":
		tp, meta = mysql.MYSQL_TYPE_NEWDECIMAL, uint16(prec)<<8|uint16(scale)
	case "float":
		tp, meta = mysql.MYSQL_TYPE_FLOAT, 4
	case "double", "real", "double precision":
		tp, meta = mysql.MYSQL_TYPE_DOUBLE, 8
	case "bit":
		tp, meta = mysql.MYSQL_TYPE_BIT, uint16(prec/8)<<8|uint16(prec%8)
	case "date":
		tp = mysql.MYSQL_TYPE_DATE
	case "datetime":
		tp, meta = mysql.MYSQL_TYPE_DATETIME2, uint16(dtp)
	case "timestamp":
		tp, meta = mysql.MYSQL_TYPE_TIMESTAMP2, uint16(dtp)
	case "time":
		tp, meta = mysql.MYSQL_TYPE_TIME2, uint16(dtp)
	case "year":
		tp = mysql.MYSQL_TYPE_YEAR
	case "char", "binary":
		tp = mysql.MYSQL_TYPE_STRING
		l := uint16(min(octets, 1023))
		meta = uint16(0xfe^byte((l&0x300)>>4))<<8 | l&0xff
		binary = dt == "binary" || binary
	case "varchar", "varbinary":
		tp, meta = mysql.MYSQL_TYPE_VARCHAR, uint16(min(octets, 65535))
		binary = dt == "varbinary" || binary
	case "tinytext", "tinyblob":
		tp, meta = mysql.MYSQL_TYPE_BLOB, 1
	case "text", "blob":
		tp, meta = mysql.MYSQL_TYPE_BLOB, 2
	case "mediumtext", "mediumblob":
		tp, meta = mysql.MYSQL_TYPE_BLOB, 3
	case "longtext", "longblob":
		tp, meta = mysql.MYSQL_TYPE_BLOB, 4
	case "enum":
		tp, meta = mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_ENUM)<<8|1
		binary = false
	case "set":
		tp, meta = mysql.MYSQL_TYPE_STRING, uint16(mysql.MYSQL_TYPE_SET)<<8|1
		binary = false
	case "json":
		tp, meta = mysql.MYSQL_TYPE_JSON, 4
		binary = false
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		tp, meta, binary = mysql.MYSQL_TYPE_GEOMETRY, 4, true
	default:
		ok = false
	}
	switch tp {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG,
		mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_BIT, mysql.MYSQL_TYPE_DATE,
		mysql.MYSQL_TYPE_DATETIME2, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIME2, mysql.MYSQL_TYPE_YEAR:
		binary = false
	}
	return
}

// signalTableDef is the signal table's layout (connection creates it):
// table maps of it without column names (binlog_row_metadata not FULL)
// are decoded with it.
var signalTableDef = TableDef{Columns: []ColumnDef{
	{Name: "id", Type: "int unsigned", Unsigned: true}, {Name: "wm", Type: "varchar"}, {Name: "ts", Type: "timestamp(6)"},
}, PK: []int{0}}

// snapRow is a row read by the snapshot's SELECT (text protocol), written
// like the stream writes the same row from the binlog.
type snapRow struct{ vals []mysql.FieldValue }

func (r *snapRow) isNil() bool { return r == nil }

func (r *snapRow) appendColumn(dst []byte, c *column, i int, mask string) ([]byte, error) {
	if i >= len(r.vals) {
		return append(dst, "null"...), nil
	}
	v := &r.vals[i]
	if v.Type == mysql.FieldValueTypeNull {
		return append(dst, "null"...), nil
	}
	if c.mask {
		return appendJSONString(dst, mask), nil
	}
	switch v.Type {
	case mysql.FieldValueTypeUnsigned:
		return strconv.AppendUint(dst, v.AsUint64(), 10), nil
	case mysql.FieldValueTypeSigned:
		return strconv.AppendInt(dst, v.AsInt64(), 10), nil
	case mysql.FieldValueTypeFloat:
		f := v.AsFloat64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), nil
		}
		if strings.HasPrefix(c.def.Type, "float") {
			return strconv.AppendFloat(dst, float64(float32(f)), 'g', -1, 32), nil
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
	}
	b := v.AsString()
	switch c.kind {
	case vkBit:
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return strconv.AppendUint(dst, n, 10), nil
	case vkNumber:
		return dst, fmt.Errorf("column %s: number read as text %q", c.def.Name, b)
	}
	return appendText(dst, c, b), nil
}

// appendCKey appends the chunk key of row: its key columns' JSON values.
func appendCKey[R rowT](dst []byte, t *table, row R, key []int, mask string) []byte {
	dst = append(dst, '[')
	for i, k := range key {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst, _ = row.appendColumn(dst, &t.cols[k], k, mask)
	}
	return append(dst, ']')
}

// row is called for every row change the stream decodes (per-row mode,
// the decoder's current row) before it is emitted. It returns true when
// the row is the signal table's (not emitted).
func (s *snapshotter) row(r *runSink, d *decoder, t *table, kind Kind) (bool, error) {
	if s.isSignal(t.db, t.name) {
		return true, s.signal(r, d, t, kind, d.cur)
	}
	if w := s.open(); w != nil && t.name == w.st.name && t.db == w.st.db {
		s.conflict(w, d, t, kind, d.cur)
	}
	return false, nil
}

// rowsEvent is row for a whole rows event (per-event mode).
func (s *snapshotter) rowsEvent(r *runSink, d *decoder, t *table, kind Kind) (bool, error) {
	step := 1
	if kind == KindUpdate {
		step = 2
	}
	sig := s.isSignal(t.db, t.name)
	w := s.open()
	if !sig && (w == nil || t.name != w.st.name || t.db != w.st.db) {
		return false, nil
	}
	for i := 0; i+step-1 < d.nraws; i += step {
		if sig {
			if err := s.signal(r, d, t, kind, i); err != nil {
				return true, err
			}
		} else {
			s.conflict(w, d, t, kind, i)
		}
	}
	return sig, nil
}

// conflict drops the keys of row change i from the chunk in flight.
func (s *snapshotter) conflict(w *chunk, d *decoder, t *table, kind Kind, i int) {
	if w.st.key == nil {
		return
	}
	if len(t.cols) != len(w.st.t.cols) {
		w.schemaChg = true
		return
	}
	if d.native {
		b, a := d.imagesRaw(kind, i)
		if b != nil {
			s.drop(w, appendCKey(s.ckey[:0], t, b, w.st.key, s.cfg.MaskValue))
		}
		if a != nil {
			s.drop(w, appendCKey(s.ckey[:0], t, a, w.st.key, s.cfg.MaskValue))
		}
		return
	}
	b, a := d.imagesAny(kind, i)
	if b != nil {
		s.drop(w, appendCKey(s.ckey[:0], t, b, w.st.key, s.cfg.MaskValue))
	}
	if a != nil {
		s.drop(w, appendCKey(s.ckey[:0], t, a, w.st.key, s.cfg.MaskValue))
	}
}

// outPacket is called for a packet encoded ahead of its emission (the
// rows of an XA transaction, held until its XA COMMIT; a TRUNCATE or DDL
// packet) before it is emitted. A row of the chunk's table between the
// watermarks drops its key when the chunk follows the primary key (the
// packet's key carries it); anything else on that table (a statement,
// a row without the chunk key) makes the chunk be read again.
func (s *snapshotter) outPacket(db, table, kind string, key []byte) {
	w := s.open()
	if w == nil || table != w.st.name || db != w.st.db {
		return
	}
	t := w.st.t
	switch kind {
	case "insert", "update", "delete":
		if w.st.keyName == "PRIMARY" && len(key) > len(t.keyPrefix) && string(key[:len(t.keyPrefix)]) == string(t.keyPrefix) {
			s.drop(w, key[len(t.keyPrefix):])
			return
		}
	}
	w.schemaChg = true
}

func (s *snapshotter) drop(w *chunk, k []byte) {
	s.ckey = k
	if w.ready != nil { // the rows are not in yet: collect drops it
		w.pendS = append(w.pendS, span{int32(len(w.pend)), int32(len(k))})
		w.pend = append(w.pend, k...)
		return
	}
	s.dropKey(w, k)
}

// dropKey marks the row of w with chunk key k dropped.
func (s *snapshotter) dropKey(w *chunk, k []byte) {
	if w.index == nil {
		w.index = make(map[string]int32, len(w.rows))
		for i := range w.rows {
			c := w.rows[i].ckey
			w.index[string(w.arena[c.off:c.off+c.n])] = int32(i)
		}
	}
	if i, ok := w.index[string(k)]; ok && !w.rows[i].dropped {
		w.rows[i].dropped = true
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// signal handles a row of the signal table: a watermark.
func (s *snapshotter) signal(r *runSink, d *decoder, t *table, kind Kind, i int) error {
	if len(s.ahead) == 0 || kind == KindDelete {
		return nil
	}
	w := s.ahead[0]
	saved := d.cur
	d.cur = i
	var err error
	s.scratch, err = d.appendRow(s.scratch[:0], t, kind)
	d.cur = saved
	if err != nil {
		return fmt.Errorf("signal table row at %s:%d: %v", d.src.file, d.src.pos, err)
	}
	var sig struct {
		After struct {
			ID uint32 `json:"id"`
			WM string `json:"wm"`
		} `json:"after"`
	}
	if json.Unmarshal(s.scratch, &sig) != nil || sig.After.ID != s.cfg.ServerID {
		return nil // another input's watermark
	}
	switch sig.After.WM {
	case w.low:
		w.lowSeen = true
	case w.high:
		if err := s.closeChunk(r, d); err != nil {
			return err
		}
		// The high watermark opens the next chunk's window.
		if len(s.ahead) > 0 && s.ahead[0].low == sig.After.WM {
			s.ahead[0].lowSeen = true
		}
	}
	return nil
}

// closeChunk emits what is left of the chunk at the high watermark and
// moves the progress on.
func (s *snapshotter) closeChunk(r *runSink, d *decoder) error {
	return s.emitChunk(r, &d.src, d.offset)
}

// emitChunk emits ahead[0] with source src at offset.
func (s *snapshotter) emitChunk(r *runSink, src *rowSource, offset int64) error {
	w := s.ahead[0]
	if err := s.await(w); err != nil {
		return err
	}
	s.emitted++
	st := w.st
	name := st.db + "." + st.name
	if w.schemaChg {
		s.log.Warn("snapshot: table changed during the chunk: reading it again", "table", name)
		s.resetPlan()
		return nil
	}
	if w.tooBig {
		s.log.Error("snapshot: table without a usable key is larger than snapshot_chunk_bytes: skipped (add a primary key or raise snapshot_chunk_bytes)",
			"table", name, "snapshot_chunk_bytes", s.cfg.SnapshotChunkBytes)
		s.resetPlan()
		s.finishTable(0)
		return nil
	}
	s.ahead = append(s.ahead[:0], s.ahead[1:]...)
	// The reader reads the next chunk while w is emitted. Signal-table
	// mode: its low watermark is w's high one, which the stream is at
	// (signal marks it seen after this), so it needs no write of its own.
	if err := s.step(r.ctx); err != nil {
		return err
	}
	defer func() { s.free = append(s.free, w) }() // after the emission
	if len(s.ahead) == 0 {
		s.lastW = "" // seen: the next chunk needs a fresh low watermark
	}
	emitted := 0
	if len(w.rows) > 0 {
		s.head = appendHead(s.head[:0], src, st.t, KindRead)
	}
	for i := 0; i < len(w.rows); {
		if cap(s.batch) == 0 {
			s.batch = make([]*pack.Packet, 64)
		}
		left := 0
		for j := i; j < len(w.rows) && left < len(s.batch); j++ {
			if !w.rows[j].dropped {
				left++
			}
		}
		if left == 0 {
			break
		}
		n, err := r.ic.NewPackets(r.ctx, s.batch[:left])
		if err != nil {
			return err
		}
		k := 0
		for ; i < len(w.rows) && k < n; i++ {
			cr := &w.rows[i]
			if cr.dropped {
				continue
			}
			p := s.batch[k]
			k++
			p.Payload = append(append(p.Payload[:0], s.head...), w.arena[cr.body.off:cr.body.off+cr.body.n]...)
			p.Key = append(p.Key[:0], w.arena[cr.key.off:cr.key.off+cr.key.n]...)
			p.Ts = src.tsMs * 1e6
			p.Attrs.SetString("db", st.db)
			p.Attrs.SetString("table", st.name)
			p.Attrs.SetString("kind", "read")
			p.Pos.Offset = offset
			if max := s.cfg.MaxRowBytes; max > 0 && int64(len(p.Payload)) > max {
				r.in.oversize.Add(1)
				p.Attrs.SetBool("oversize", true)
			}
		}
		if err := r.ic.EmitBatch(r.ctx, r.s, s.batch[:k]); err != nil {
			return err
		}
		emitted += k
	}
	r.in.snapRows.Add(uint64(emitted))
	s.state.Rows += int64(emitted)
	s.mu.Lock()
	s.chunks++
	s.rowsRead += uint64(len(w.rows))
	pr := s.progressOf(name)
	if pr != nil {
		pr.Rows = s.state.Rows
		if el := time.Since(pr.Started); pr.Rows > 0 && pr.Estimate > pr.Rows {
			pr.ETA = (time.Duration(float64(el) / float64(pr.Rows) * float64(pr.Estimate-pr.Rows))).Round(time.Second).String()
		} else {
			pr.ETA = ""
		}
	}
	s.mu.Unlock()
	if w.done {
		s.finishTable(emitted)
		return nil
	}
	s.state.After = append(s.state.After[:0], w.last...)
	s.setState()
	if time.Since(s.lastLog) >= 5*time.Second && pr != nil {
		s.lastLog = time.Now()
		s.log.Info("snapshot progress", "table", name, "rows", pr.Rows, "estimate", pr.Estimate, "eta", pr.ETA)
	}
	return nil
}

// finishTable ends the first queued table.
func (s *snapshotter) finishTable(lastChunk int) {
	name := s.state.Tables[0]
	rows := s.state.Rows
	s.state.Tables = s.state.Tables[1:]
	s.state.After, s.state.Rows = nil, 0
	if s.planTi > 0 {
		s.planTi--
	}
	s.ran = true
	s.setState()
	s.mu.Lock()
	var took time.Duration
	if pr := s.progressOf(name); pr != nil {
		pr.Finished, pr.ETA, pr.Rows = time.Now(), "", rows
		took = pr.Finished.Sub(pr.Started)
	}
	s.mu.Unlock()
	s.log.Info("snapshot of table done", "table", name, "rows", rows, "took", took.Round(time.Millisecond), "tables_left", len(s.state.Tables))
	if len(s.state.Tables) == 0 {
		s.closeConn()
	}
}

// SnapshotProgress is the snapshot status the admin API shows.
type SnapshotProgress struct {
	Pending  int              `json:"tables_pending"`
	Chunks   uint64           `json:"chunks"`
	Rows     uint64           `json:"rows_read"`
	Dropped  uint64           `json:"rows_superseded"`
	Tables   []*tableProgress `json:"tables"`
	Signal   string           `json:"signal_table"`
	Snapshot string           `json:"snapshot"`
}

// Progress returns the snapshot progress (any goroutine).
func (in *Input) Progress() SnapshotProgress {
	s := in.snap
	s.mu.Lock()
	defer s.mu.Unlock()
	p := SnapshotProgress{Pending: s.pending + len(s.reqs), Chunks: s.chunks, Rows: s.rowsRead, Dropped: s.dropped,
		Signal: in.cfg.SnapshotSignalTable, Snapshot: in.cfg.Snapshot}
	for _, t := range s.progress {
		c := *t
		p.Tables = append(p.Tables, &c)
	}
	return p
}

// Snapshot queues an ad hoc snapshot of tables (db.table) while the
// stream goes on; safe from any goroutine. Tables must pass include and
// exclude.
func (in *Input) Snapshot(tables []string) error {
	if len(tables) == 0 {
		return fmt.Errorf("snapshot: name at least one table (db.table)")
	}
	for _, t := range tables {
		db, name, ok := strings.Cut(t, ".")
		if !ok || db == "" || name == "" || strings.ContainsAny(name, "*?[.") || strings.ContainsAny(db, "*?[") {
			return fmt.Errorf("snapshot: %q: want db.table (no globs)", t)
		}
		if in.snap.isSignal(db, name) || !in.filters.keepTable(db, name) {
			return fmt.Errorf("snapshot: %s is not read by this input (include/exclude)", t)
		}
	}
	in.snap.request(tables)
	return nil
}

// Command implements engine.Commander: "snapshot db.table...".
func (in *Input) Command(ctx context.Context, cmd string, args []string) (any, error) {
	switch cmd {
	case "snapshot":
		if err := in.Snapshot(args); err != nil {
			return nil, err
		}
		return map[string]any{"queued": args}, nil
	case "snapshot-status":
		return in.Progress(), nil
	}
	return nil, fmt.Errorf("unknown command %q (MysqlbinlogInput: snapshot db.table..., snapshot-status)", cmd)
}

// ReportMetrics implements engine.MetricsReporter: XA transactions held
// and rolled back, and snapshot progress.
func (in *Input) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	in.reportXA(emit)
	p := in.Progress()
	emit("dbus_binlog_snapshot_tables_pending", "Tables queued for a snapshot after the one being read.", engine.MetricGauge, float64(p.Pending))
	emit("dbus_binlog_snapshot_chunks_total", "Snapshot chunks finished.", engine.MetricCounter, float64(p.Chunks))
	emit("dbus_binlog_snapshot_rows_read_total", "Rows read by snapshot chunks.", engine.MetricCounter, float64(p.Rows))
	emit("dbus_binlog_snapshot_rows_superseded_total", "Snapshot rows not emitted because the stream changed them between the watermarks.", engine.MetricCounter, float64(p.Dropped))
	for _, t := range p.Tables {
		emit("dbus_binlog_snapshot_table_rows", "Rows of a table emitted by its snapshot so far.", engine.MetricGauge, float64(t.Rows), "table", t.Table)
		emit("dbus_binlog_snapshot_table_rows_estimate", "The server's estimate of a table's rows when its snapshot started.", engine.MetricGauge, float64(t.Estimate), "table", t.Table)
		eta := 0.0
		if d, err := time.ParseDuration(t.ETA); err == nil {
			eta = d.Seconds()
		}
		emit("dbus_binlog_snapshot_table_eta_seconds", "Estimated time left of a table's snapshot (0: done or unknown).", engine.MetricGauge, eta, "table", t.Table)
	}
}

var errSnapshotDone = errors.New("snapshot done (initial_only)")

// dropChunk forgets the chunk in flight (it is read again): the stream
// moved to a position its watermarks may precede.
func (s *snapshotter) dropChunk() {
	s.resetPlan()
}

// purgedSnapshot is on_purged for snapshot: when_needed: the stream
// restarts at the server's current position and every table is read
// again, so nothing that was purged is missing from the output.
func (in *Input) purgedSnapshot(ctx context.Context, at Position, cause error, log *slog.Logger) (Position, error) {
	in.purged.Add(1)
	info, err := preflight(ctx, &in.cfg)
	if err != nil {
		return Position{}, err
	}
	p := info.Current
	if !info.GTIDMode {
		p.GTID = ""
	}
	log.Warn("binlog position purged on the server: snapshot when_needed: reading every table again from the current position",
		"position", at.String(), "resume", p.String(), "cause", cause)
	s := in.snap
	s.state = snapState{}
	s.resetPlan()
	if err := s.planAll(ctx); err != nil {
		return Position{}, err
	}
	return p, nil
}

// beforeEvent is called before the stream handles an event (position
// mode): chunks whose read-view position the event starts at or after
// are emitted first.
func (s *snapshotter) beforeEvent(r *runSink, d *decoder, h *replication.EventHeader) error {
	if !s.posMode || h.LogPos == 0 {
		return nil
	}
	if s.busy != nil {
		s.awaitPos(s.busy) // the chunk being read may start before this event
	}
	start := h.LogPos - h.EventSize
	if h.LogPos < h.EventSize {
		start = h.LogPos
	}
	if err := s.reached(r, d, d.file, start); err != nil {
		return err
	}
	s.seenFile, s.seenPos = d.file, h.LogPos
	return nil
}

// idle is called before the stream blocks for events: chunks whose
// position the stream has reached are emitted. It reports whether it
// emitted one (then the stream loop reads the next chunks instead of
// blocking).
func (s *snapshotter) idle(r *runSink, d *decoder) (bool, error) {
	if !s.posMode || len(s.ahead) == 0 {
		return false, nil
	}
	// The stream is at the end of the last event it handled, or at its
	// start position when it handled none yet.
	file, pos := s.seenFile, s.seenPos
	if file == "" || d.commitFile != "" && comparePos(d.commitFile, d.commitPos, file, pos) > 0 {
		file, pos = d.commitFile, d.commitPos
	}
	n := s.emitted
	err := s.reached(r, d, file, pos)
	return s.emitted != n, err
}

// reached emits the chunks read at or before file:pos (position mode),
// then marks the stream's last boundary with the new progress.
func (s *snapshotter) reached(r *runSink, d *decoder, file string, pos uint32) error {
	// Only the chunks in ahead now: emitChunk reads the next ones, and
	// the stream's boundary marks the progress between.
	n := 0
	for todo := len(s.ahead); todo > 0 && len(s.ahead) > 0 && file != ""; todo-- {
		w := s.ahead[0]
		s.awaitPos(w)
		if comparePos(file, pos, w.at.File, w.at.Pos) < 0 {
			break
		}
		src := rowSource{file: w.at.File, pos: w.at.Pos, serverID: d.src.serverID, tsMs: time.Now().UnixMilli()}
		if err := s.emitChunk(r, &src, w.at.Offset()); err != nil {
			return err
		}
		n++
	}
	if n > 0 && !d.inTxn && d.commitFile != "" {
		return r.boundary(d)
	}
	return nil
}
