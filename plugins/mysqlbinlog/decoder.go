package mysqlbinlog

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// sink receives what the decoder makes of the event stream. Its methods
// are called from the decoder's goroutine, in binlog order.
type sink interface {
	// row is one row change (per-row mode): before is nil for an insert,
	// after is nil for a delete.
	row(d *decoder, t *table, kind Kind, before, after []any) error
	// rowsEvent is one whole rows event (per-event mode).
	rowsEvent(d *decoder, t *table, kind Kind, ev *replication.RowsEvent) error
	// boundary is the end of a transaction (XID, COMMIT, or a DDL or other
	// standalone statement): d.committed() is a safe resume position.
	boundary(d *decoder) error
	// heartbeat: the source has nothing newer to send.
	heartbeat(d *decoder)
}

// decoder turns binlog events into row changes and transaction
// boundaries. It keeps the current binlog file, the GTID state, and the
// compiled tables. Not safe for concurrent use.
type decoder struct {
	perEvent bool
	mask     string
	filters  *filters
	hist     *history // nil: FULL table-map metadata is required

	tables map[uint64]*table
	gtid   *gtidState

	file       string // binlog file being read
	commitFile string // position after the last transaction boundary
	commitPos  uint32
	inTxn      bool
	src        rowSource
	lastTs     uint32 // header timestamp of the last event with one

	// Per rows event, shared by its rows: the payload head (appendHead)
	// and the packet offset.
	head   []byte
	offset int64

	// Counters (read by the owner's goroutine only).
	rows, txns uint64
}

func newDecoder(mariadb bool, f *filters, hist *history, start Position, perEvent bool, mask string) (*decoder, error) {
	g, err := newGTIDState(mariadb, start.GTID)
	if err != nil {
		return nil, err
	}
	return &decoder{
		perEvent: perEvent, mask: mask, filters: f, hist: hist,
		tables: map[uint64]*table{}, gtid: g,
		file: start.File, commitFile: start.File, commitPos: start.Pos,
	}, nil
}

// committed returns the position after the last transaction boundary.
// The GTID text is valid until the next boundary.
func (d *decoder) committedGTID() []byte { return d.gtid.set() }

// committed returns the resume position after the last boundary.
func (d *decoder) committed() Position {
	return Position{File: d.commitFile, Pos: d.commitPos, GTID: string(d.gtid.set())}
}

// where names the event position for errors.
func (d *decoder) where(h *replication.EventHeader) string {
	start := h.LogPos - h.EventSize
	if h.LogPos < h.EventSize {
		start = h.LogPos
	}
	return fmt.Sprintf("%s:%d", d.file, start)
}

func (d *decoder) handle(ev *replication.BinlogEvent, s sink) error {
	return d.handleEvent(ev.Header, ev.Event, s)
}

func (d *decoder) handleEvent(h *replication.EventHeader, e replication.Event, s sink) error {
	if h.Timestamp != 0 {
		d.lastTs = h.Timestamp
	}
	switch e := e.(type) {
	case *replication.RowsEvent:
		return d.rowsEvent(h, e, s)
	case *replication.TableMapEvent:
		return d.tableMap(h, e)
	case *replication.XIDEvent:
		return d.boundary(h, s)
	case *replication.MariadbGTIDEvent:
		d.gtid.beginMaria(e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber)
		d.inTxn = !e.IsStandalone()
		d.src.tsMs = int64(h.Timestamp) * 1000
	case *replication.GTIDEvent:
		if err := d.gtid.beginMySQL(e.SID, e.GNO); err != nil {
			return fmt.Errorf("GTID event at %s: %w", d.where(h), err)
		}
		d.inTxn = false // a BEGIN query follows for DML
		if e.OriginalCommitTimestamp != 0 {
			d.src.tsMs = int64(e.OriginalCommitTimestamp / 1000)
		} else {
			d.src.tsMs = int64(h.Timestamp) * 1000
		}
	case *replication.GtidTaggedLogEvent:
		return fmt.Errorf("tagged GTID at %s: tagged GTIDs (MySQL 8.4) are not supported yet", d.where(h))
	case *replication.QueryEvent:
		return d.query(h, e, s)
	case *replication.RotateEvent:
		d.file = string(e.NextLogName)
		if d.commitFile == "" {
			// Started from a GTID set: the first rotate names the file.
			d.commitFile, d.commitPos = d.file, uint32(e.Position)
		}
	case *replication.HeartbeatEvent:
		s.heartbeat(d)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			ih := *inner.Header
			ih.LogPos = h.LogPos // inner events carry no usable position
			if err := d.handleEvent(&ih, inner.Event, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) query(h *replication.EventHeader, e *replication.QueryEvent, s sink) error {
	q := e.Query
	switch {
	case eqFold(q, "BEGIN"):
		if !d.gtid.hasCur {
			d.src.tsMs = int64(h.Timestamp) * 1000
		}
		d.inTxn = true
		return nil
	case eqFold(q, "COMMIT"), eqFold(q, "ROLLBACK"):
		return d.boundary(h, s)
	case d.inTxn:
		// SAVEPOINT and the like inside a transaction.
		return nil
	}
	// A standalone statement: DDL or an administrative statement.
	if d.hist != nil {
		changed, err := d.hist.apply(string(e.Schema), string(q), d.file, h.LogPos)
		if err != nil {
			return fmt.Errorf("schema history at %s: %w", d.where(h), err)
		}
		if changed {
			clear(d.tables)
		}
	} else if isDDL(q) {
		// Compiled tables are checked against every table map; nothing to
		// keep in sync with FULL metadata. Drop them so renamed tables do
		// not linger.
		clear(d.tables)
	}
	return d.boundary(h, s)
}

func (d *decoder) boundary(h *replication.EventHeader, s sink) error {
	d.commitFile, d.commitPos = d.file, h.LogPos
	d.gtid.commit()
	d.inTxn = false
	d.txns++
	return s.boundary(d)
}

func (d *decoder) tableMap(h *replication.EventHeader, tm *replication.TableMapEvent) error {
	if t, ok := d.tables[tm.TableID]; ok && t.sameMap(tm) {
		return nil
	}
	db, name := string(tm.Schema), string(tm.Table)
	if !d.filters.keepTable(db, name) {
		// Not decoded into rows: no schema needed.
		d.tables[tm.TableID] = &table{db: db, name: name, keep: false, tmTypes: tm.ColumnType, tmMeta: tm.ColumnMeta,
			tmSigned: tm.SignednessBitmap, tmDefCS: tm.DefaultCharset, tmColCS: tm.ColumnCharset, tmPK: tm.PrimaryKey,
			tmNames: tm.ColumnName, tmEnum: tm.EnumStrValue, tmSet: tm.SetStrValue}
		return nil
	}
	var def TableDef
	source := "metadata"
	switch {
	case hasFullMetadata(tm):
		def = defFromMetadata(tm)
	case d.hist != nil:
		var err error
		def, err = d.hist.lookup(db, name, d.file, h.LogPos, tm)
		if err != nil {
			return fmt.Errorf("table map of %s.%s at %s: %w", db, name, d.where(h), err)
		}
		source = "history"
	default:
		return fmt.Errorf("table map of %s.%s at %s has no column names: the server does not log full row metadata. "+
			"Set binlog_row_metadata=FULL on the server (SET GLOBAL binlog_row_metadata=FULL and in my.cnf; MySQL >= 8.0.1, MariaDB >= 10.5), "+
			"or set schema_file so dbus keeps a schema history", db, name, d.where(h))
	}
	t, err := compile(tm, def, d.filters, source)
	if err != nil {
		return fmt.Errorf("table map at %s: %w", d.where(h), err)
	}
	d.tables[tm.TableID] = t
	return nil
}

func (d *decoder) rowsEvent(h *replication.EventHeader, e *replication.RowsEvent, s sink) error {
	t := d.tables[e.TableID]
	if t == nil {
		return fmt.Errorf("rows event at %s for table id %d without a table map", d.where(h), e.TableID)
	}
	if !t.keep {
		return nil
	}
	var kind Kind
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		kind = KindInsert
	case replication.EnumRowsEventTypeUpdate:
		kind = KindUpdate
	case replication.EnumRowsEventTypeDelete:
		kind = KindDelete
	default:
		return fmt.Errorf("rows event at %s: unknown rows event type %v", d.where(h), h.EventType)
	}
	if t.kinds&(1<<kind) == 0 {
		return nil
	}
	for _, sk := range e.SkippedColumns {
		if len(sk) > 0 {
			return fmt.Errorf("rows event of %s.%s at %s has partial row images: set binlog_row_image=FULL on the server", t.db, t.name, d.where(h))
		}
	}
	d.src.file, d.src.pos, d.src.gtid = d.file, h.LogPos, d.gtid.current()
	d.offset = fileSeq(d.file)<<32 | int64(h.LogPos)
	if d.perEvent {
		d.rows += uint64(len(e.Rows))
		if err := s.rowsEvent(d, t, kind, e); err != nil {
			return err
		}
		return nil
	}
	d.head = appendHead(d.head[:0], &d.src, t, kind)
	switch kind {
	case KindInsert:
		for _, r := range e.Rows {
			d.rows++
			if err := s.row(d, t, kind, nil, r); err != nil {
				return err
			}
		}
	case KindDelete:
		for _, r := range e.Rows {
			d.rows++
			if err := s.row(d, t, kind, r, nil); err != nil {
				return err
			}
		}
	case KindUpdate:
		if len(e.Rows)%2 != 0 {
			return fmt.Errorf("update rows event of %s.%s at %s: odd number of row images", t.db, t.name, d.where(h))
		}
		for i := 0; i+1 < len(e.Rows); i += 2 {
			d.rows++
			if err := s.row(d, t, kind, e.Rows[i], e.Rows[i+1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendEvent encodes a whole rows event (per-event mode).
func (d *decoder) appendEvent(dst []byte, t *table, kind Kind, e *replication.RowsEvent) ([]byte, error) {
	dst = appendEventStart(dst, &d.src, t, kind)
	var err error
	step := 1
	if kind == KindUpdate {
		step = 2
	}
	for i := 0; i+step-1 < len(e.Rows); i += step {
		var before, after []any
		switch kind {
		case KindInsert:
			after = e.Rows[i]
		case KindDelete:
			before = e.Rows[i]
		case KindUpdate:
			before, after = e.Rows[i], e.Rows[i+1]
		}
		if dst, err = appendEventRow(dst, t, i == 0, before, after, d.mask); err != nil {
			return dst, err
		}
	}
	return appendEventEnd(dst), nil
}

// eqFold compares a query with an upper-case keyword, ignoring case and
// surrounding space.
func eqFold(q []byte, kw string) bool {
	for len(q) > 0 && (q[0] == ' ' || q[0] == '\n' || q[0] == '\t' || q[0] == '\r') {
		q = q[1:]
	}
	for len(q) > 0 && (q[len(q)-1] == ' ' || q[len(q)-1] == '\n' || q[len(q)-1] == ';') {
		q = q[:len(q)-1]
	}
	if len(q) != len(kw) {
		return false
	}
	for i := range q {
		c := q[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}
