package mysqlbinlog

// Snapshots of the rows that already exist, interleaved with the binlog
// stream by low and high watermarks (Netflix DBLog's algorithm; Debezium's
// incremental snapshots use the same idea). Everything here runs in the
// Run goroutine except Snapshot (requests) and ReportMetrics/Progress
// (read under snapshotter.mu).
//
// Per chunk (snapshotter.step, then the stream):
//
//  1. write the low watermark: upsert a row of the signal table (one row
//     per input, keyed by server_id) with a fresh value, autocommit;
//  2. SELECT the next chunk_rows rows of the table in key order after the
//     last key of the previous chunk (a fresh read view: every
//     transaction before the low watermark in the binlog is visible);
//  3. write the high watermark the same way;
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

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
}

// chunkRow is one buffered row: spans of the chunk's arena.
type chunkRow struct {
	key, body, ckey span
	dropped         bool
}

// chunk is the chunk in flight between its watermarks.
type chunk struct {
	st        *snapTable
	low, high string
	lowSeen   bool
	arena     []byte
	rows      []chunkRow
	index     map[string]int32 // conflict key -> row; built at the first conflict
	last      []string         // key of the last buffered row
	done      bool             // the table has no row after this chunk
	tooBig    bool             // a table without key did not fit chunk_bytes
	schemaChg bool             // the table changed between the watermarks
	began     time.Time
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

	state   snapState
	tok     []byte // snapTokenSep + state JSON; nil: nothing pending
	cur     *snapTable
	win     *chunk
	spare   *chunk // buffers of the last chunk, reused
	scratch []byte
	head    []byte
	ckey    []byte
	batch   []*pack.Packet
	ran     bool // a snapshot ran in this Run (initial_only stops after)
	lastLog time.Time

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
func (s *snapshotter) reset(st *snapState, log *slog.Logger) {
	s.closeConn()
	s.log = log
	var b [8]byte
	rand.Read(b[:])
	s.runID = hex.EncodeToString(b[:])
	s.seq = 0
	s.cur, s.win = nil, nil
	s.state = snapState{}
	if st != nil {
		s.state = *st
	}
	s.ran = false
	s.setState()
}

func (s *snapshotter) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// active reports whether tables are queued or a chunk is in flight.
func (s *snapshotter) active() bool { return len(s.state.Tables) > 0 || s.win != nil }

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
		for i, q := range s.state.Tables {
			// The table being read restarts only if asked again after it.
			if q == t && (i > 0 || s.win == nil && s.state.After == nil) {
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
	r, err := c.Execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' " +
		"AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return s.sqlError("list tables", err)
	}
	var tables []string
	for i := 0; i < r.RowNumber(); i++ {
		db, _ := r.GetString(i, 0)
		name, _ := r.GetString(i, 1)
		if s.isSignal(db, name) || !s.filters.keepTable(db, name) {
			continue
		}
		tables = append(tables, db+"."+name)
	}
	s.queue(tables)
	if len(tables) == 0 {
		s.ran = true // nothing to read: initial_only is done
	}
	s.log.Info("snapshot planned", "tables", len(tables), "chunk_rows", s.cfg.SnapshotChunkRows, "signal_table", s.cfg.SnapshotSignalTable)
	return nil
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
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := connect(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION time_zone = '+00:00'", "SET SESSION autocommit = 1"} {
		if _, err := c.Execute(q); err != nil {
			c.Close()
			return nil, fmt.Errorf("snapshot connection to %s: %s: %w", s.cfg.Addr, q, err)
		}
	}
	s.conn = c
	if _, err := c.Execute("CREATE TABLE IF NOT EXISTS " + quoteID(s.sigDB) + "." + quoteID(s.sigName) +
		" (id INT UNSIGNED NOT NULL PRIMARY KEY, wm VARCHAR(64) NOT NULL, ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))"); err != nil {
		s.closeConn()
		if me := myError(err); me != nil {
			return nil, fatal("snapshot: cannot create the signal table %s on %s: %v (create it yourself, or GRANT CREATE, INSERT, UPDATE ON %s.* TO '%s'; set snapshot_signal_table to a database dbus may write)",
				s.cfg.SnapshotSignalTable, s.cfg.Addr, me.Message, quoteID(s.sigDB), s.cfg.User)
		}
		return nil, fmt.Errorf("snapshot: create signal table on %s: %w", s.cfg.Addr, err)
	}
	return c, nil
}

// watermark writes a watermark value into the signal table.
func (s *snapshotter) watermark(c *client.Conn, wm string) error {
	q := "INSERT INTO " + quoteID(s.sigDB) + "." + quoteID(s.sigName) + " (id, wm) VALUES (" +
		strconv.FormatUint(uint64(s.cfg.ServerID), 10) + ", '" + wm + "') ON DUPLICATE KEY UPDATE wm = VALUES(wm)"
	if _, err := c.Execute(q); err != nil {
		if me := myError(err); me != nil {
			return fatal("snapshot: cannot write the watermark into %s on %s: %v (GRANT INSERT, UPDATE ON %s TO '%s')",
				s.cfg.SnapshotSignalTable, s.cfg.Addr, me.Message, s.cfg.SnapshotSignalTable, s.cfg.User)
		}
		s.closeConn()
		return fmt.Errorf("snapshot: watermark on %s: %w", s.cfg.Addr, err)
	}
	return nil
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

// step starts the next chunk when none is in flight and a table is
// queued. It runs in the stream loop, before each event.
func (s *snapshotter) step(ctx context.Context) error {
	s.takeRequests()
	for s.win == nil && len(s.state.Tables) > 0 {
		if s.cur == nil {
			st, err := s.loadTable(ctx, s.state.Tables[0])
			if err != nil {
				return err
			}
			if st == nil { // gone: skip
				s.finishTable(0)
				continue
			}
			s.cur = st
			s.startProgress(st)
		}
		return s.startChunk(ctx)
	}
	return nil
}

func (s *snapshotter) startProgress(st *snapTable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := st.db + "." + st.name
	if n := len(s.progress); n > 0 && s.progress[n-1].Table == name && s.progress[n-1].Finished.IsZero() {
		return
	}
	if len(s.progress) >= 32 {
		s.progress = append(s.progress[:0], s.progress[1:]...)
	}
	s.progress = append(s.progress, &tableProgress{Table: name, Rows: s.state.Rows, Estimate: st.estimate, Started: time.Now()})
}

// startChunk writes the low watermark, reads the chunk, writes the high
// watermark.
func (s *snapshotter) startChunk(ctx context.Context) error {
	c, err := s.connection(ctx)
	if err != nil {
		return err
	}
	st := s.cur
	w := s.spare
	if w == nil {
		w = &chunk{}
	}
	s.spare = nil
	*w = chunk{st: st, arena: w.arena[:0], rows: w.rows[:0], began: time.Now()}
	s.seq++
	w.low = s.runID + ":" + strconv.FormatUint(s.seq, 10) + ":L"
	w.high = s.runID + ":" + strconv.FormatUint(s.seq, 10) + ":H"
	if err := s.watermark(c, w.low); err != nil {
		return err
	}
	q := s.chunkQuery(st)
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
		return s.sqlError("read chunk of "+st.db+"."+st.name, err)
	}
	w.done = st.key == nil || n < limit && !full
	if err := s.watermark(c, w.high); err != nil {
		return err
	}
	s.win = w
	return nil
}

// chunkQuery is the SELECT of the next chunk.
func (s *snapshotter) chunkQuery(st *snapTable) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(st.cols)
	b.WriteString(" FROM ")
	b.WriteString(st.from)
	if st.key == nil {
		return b.String()
	}
	if after := s.state.After; len(after) == len(st.key) {
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
	if w := s.win; w != nil && w.lowSeen && t.name == w.st.name && t.db == w.st.db {
		s.conflict(d, t, kind, d.cur)
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
	w := s.win
	if !sig && (w == nil || !w.lowSeen || t.name != w.st.name || t.db != w.st.db) {
		return false, nil
	}
	for i := 0; i+step-1 < d.nraws; i += step {
		if sig {
			if err := s.signal(r, d, t, kind, i); err != nil {
				return true, err
			}
		} else {
			s.conflict(d, t, kind, i)
		}
	}
	return sig, nil
}

// conflict drops the keys of row change i from the chunk in flight.
func (s *snapshotter) conflict(d *decoder, t *table, kind Kind, i int) {
	w := s.win
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
			s.drop(appendCKey(s.ckey[:0], t, b, w.st.key, s.cfg.MaskValue))
		}
		if a != nil {
			s.drop(appendCKey(s.ckey[:0], t, a, w.st.key, s.cfg.MaskValue))
		}
		return
	}
	b, a := d.imagesAny(kind, i)
	if b != nil {
		s.drop(appendCKey(s.ckey[:0], t, b, w.st.key, s.cfg.MaskValue))
	}
	if a != nil {
		s.drop(appendCKey(s.ckey[:0], t, a, w.st.key, s.cfg.MaskValue))
	}
}

func (s *snapshotter) drop(k []byte) {
	s.ckey = k
	w := s.win
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
	w := s.win
	if w == nil || kind == KindDelete {
		return nil
	}
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
		return s.closeChunk(r, d)
	}
	return nil
}

// closeChunk emits what is left of the chunk at the high watermark and
// moves the progress on.
func (s *snapshotter) closeChunk(r *runSink, d *decoder) error {
	w := s.win
	st := w.st
	name := st.db + "." + st.name
	if w.schemaChg {
		s.log.Warn("snapshot: table changed during the chunk: reading it again", "table", name)
		s.win, s.spare, s.cur = nil, w, nil
		return nil
	}
	if w.tooBig {
		s.log.Error("snapshot: table without a usable key is larger than snapshot_chunk_bytes: skipped (add a primary key or raise snapshot_chunk_bytes)",
			"table", name, "snapshot_chunk_bytes", s.cfg.SnapshotChunkBytes)
		s.win, s.spare = nil, w
		s.finishTable(0)
		return nil
	}
	s.head = appendHead(s.head[:0], &d.src, st.t, KindRead)
	emitted := 0
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
			p.Ts = d.src.tsMs * 1e6
			p.Attrs.SetString("db", st.db)
			p.Attrs.SetString("table", st.name)
			p.Attrs.SetString("kind", "read")
			p.Pos.Offset = d.offset
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
	var pr *tableProgress
	if n := len(s.progress); n > 0 {
		pr = s.progress[n-1]
		pr.Rows = s.state.Rows
		if el := time.Since(pr.Started); pr.Rows > 0 && pr.Estimate > pr.Rows {
			pr.ETA = (time.Duration(float64(el) / float64(pr.Rows) * float64(pr.Estimate-pr.Rows))).Round(time.Second).String()
		} else {
			pr.ETA = ""
		}
	}
	s.mu.Unlock()
	s.win, s.spare = nil, w
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
	s.cur = nil
	s.ran = true
	s.setState()
	s.mu.Lock()
	var took time.Duration
	if n := len(s.progress); n > 0 && s.progress[n-1].Table == name {
		pr := s.progress[n-1]
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

// ReportMetrics implements engine.MetricsReporter: snapshot progress.
func (in *Input) ReportMetrics(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
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
	if s.win != nil {
		s.win, s.spare = nil, s.win
	}
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
	s.win, s.cur, s.state = nil, nil, snapState{}
	if err := s.planAll(ctx); err != nil {
		return Position{}, err
	}
	return p, nil
}
