package mysqlbinlog

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// sink receives what the decoder makes of the event stream. Its methods
// are called from the decoder's goroutine, in binlog order.
type sink interface {
	// row is one row change (per-row mode), the decoder's current row:
	// encode it with d.appendRowBody or d.appendRow.
	row(d *decoder, t *table, kind Kind) error
	// rowsEvent is one whole rows event (per-event mode), the decoder's
	// current event: encode it with d.appendEvent.
	rowsEvent(d *decoder, t *table, kind Kind) error
	// boundary is the end of a transaction (XID, COMMIT, or a DDL or other
	// standalone statement): d.committed() is a safe resume position.
	boundary(d *decoder) error
	// heartbeat: the source has nothing newer to send.
	heartbeat(d *decoder)
	// packet emits a packet encoded ahead: a held row of a committed XA
	// transaction, a statement packet (truncate, ddl).
	packet(d *decoder, op *outPacket) error
	// xaResolved reports an XA COMMIT (committed) or ROLLBACK at the
	// current event; t is nil when its prepare was not read.
	xaResolved(d *decoder, xid string, t *xaTxn, committed bool, at string)
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

	// The rows event being handed to the sink: go-mysql's decoded rows
	// (ev), or images the native decoder parsed (raws; native set). In
	// per-row mode cur is the index of the current row's first image.
	native bool
	ev     *replication.RowsEvent
	raws   []rawRow
	nraws  int
	cur    int

	// Counters (read by the owner's goroutine only).
	rows, txns uint64
	// nativeEvents counts rows events decoded natively (tests).
	nativeEvents uint64

	// Prepared XA transactions whose rows are held (xa.go).
	xa xaState
	// The statement packet being emitted (statement.go).
	stmt outPacket
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

func (d *decoder) handle(ev streamEvent, s sink) error {
	if g, ok := ev.ev.Event.(*replication.MariadbGTIDEvent); ok && g.Flags&mariaFlPreparedXA != 0 {
		if err := d.mariaGTIDXA(ev.ev.Header, g.Flags, ev.ev.RawData); err != nil {
			return err
		}
	}
	return d.handleEvent(ev.ev.Header, ev.ev.Event, ev.raw, s)
}

func (d *decoder) handleEvent(h *replication.EventHeader, e replication.Event, raw []rawRows, s sink) error {
	if h.Timestamp != 0 {
		d.lastTs = h.Timestamp
	}
	switch e := e.(type) {
	case *replication.RowsEvent:
		var r *rawRows
		for i := range raw {
			if raw[i].e == e {
				r = &raw[i]
				break
			}
		}
		if d.xa.cur != nil {
			// An XA transaction's rows: held until it is resolved (xa.go).
			return d.rowsEvent(h, e, r, &d.xa)
		}
		return d.rowsEvent(h, e, r, s)
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
	case *replication.ExecuteLoadQueryEvent:
		// LOAD DATA logged as a statement (with its file in
		// Begin_load_query events): no rows to read either.
		return d.statementDML(h, []byte("LOAD DATA ..."))
	case *replication.RotateEvent:
		d.file = string(e.NextLogName)
		if d.commitFile == "" {
			// Started from a GTID set: the first rotate names the file.
			d.commitFile, d.commitPos = d.file, uint32(e.Position)
		}
	case *replication.GenericEvent:
		if h.EventType == replication.XA_PREPARE_LOG_EVENT {
			return d.xaPrepare(h, e.Data, s)
		}
	case *replication.HeartbeatEvent:
		s.heartbeat(d)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			ih := *inner.Header
			ih.LogPos = h.LogPos // inner events carry no usable position
			if err := d.handleEvent(&ih, inner.Event, raw, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) query(h *replication.EventHeader, e *replication.QueryEvent, s sink) error {
	q := e.Query
	if len(q) > 3 && q[0]|0x20 == 'x' && q[1]|0x20 == 'a' && q[2] == ' ' {
		if ok, err := d.xaQuery(h, q, s); ok {
			return err
		}
	}
	switch {
	case eqFold(q, "BEGIN"):
		if !d.gtid.hasCur {
			d.src.tsMs = int64(h.Timestamp) * 1000
		}
		d.inTxn = true
		return nil
	case eqFold(q, "COMMIT"), eqFold(q, "ROLLBACK"):
		return d.boundary(h, s)
	case isStatementDML(q):
		// A change logged as a statement, not as rows: dbus cannot know
		// which rows it changed. Stop here, before the transaction's
		// boundary, so the checkpoint never passes it.
		return d.statementDML(h, q)
	case d.inTxn && isDDL(q):
		// CREATE TABLE ... SELECT: the new table's definition is logged
		// inside the transaction that inserts its rows.
		if err := d.applyDDL(h, e); err != nil {
			return err
		}
		return d.statementPacket(h, e, s)
	case d.inTxn:
		// SAVEPOINT, RELEASE / ROLLBACK TO SAVEPOINT, XA START/END.
		return nil
	}
	// A standalone statement: DDL or an administrative statement.
	if err := d.applyDDL(h, e); err != nil {
		return err
	}
	if err := d.statementPacket(h, e, s); err != nil {
		return err
	}
	return d.boundary(h, s)
}

// applyDDL keeps the schema history (when there is one) and the compiled
// tables in step with a DDL statement.
func (d *decoder) applyDDL(h *replication.EventHeader, e *replication.QueryEvent) error {
	q := e.Query
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
	return nil
}

// isStatementDML reports whether a query event is a data change logged as
// a statement (binlog_format=STATEMENT, or MIXED falling back to it).
func isStatementDML(q []byte) bool {
	toks := tokenize(string(q), 1)
	if len(toks) == 0 {
		return false
	}
	switch toks[0].up {
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "WITH":
		return true
	}
	return false
}

// statementDML is the error for a statement-logged change.
func (d *decoder) statementDML(h *replication.EventHeader, q []byte) error {
	excerpt := string(q)
	if len(excerpt) > 60 {
		excerpt = excerpt[:60] + "..."
	}
	return fatal("statement-logged change at %s (%q): the session that made it used binlog_format=STATEMENT or MIXED, "+
		"so its rows are not in the binlog and dbus cannot read them. Set binlog_format=ROW globally (SET GLOBAL and in my.cnf) "+
		"and keep sessions from changing it (SET SESSION binlog_format needs SUPER or BINLOG ADMIN); "+
		"the checkpoint stays before this transaction: re-apply the change as rows, or move the start past it deliberately",
		d.where(h), excerpt)
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
	case d.filters != nil && d.filters.isSignal(db, name) && tm.ColumnCount == 3:
		def = signalTableDef // snapshot.go: watermarks need no history
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

// rowsEvent hands a rows event's row changes to s. raw is non-nil when
// go-mysql left the row images undecoded (rowsHook): they are decoded here,
// natively when the table and event type allow it, else by go-mysql.
func (d *decoder) rowsEvent(h *replication.EventHeader, e *replication.RowsEvent, raw *rawRows, s sink) error {
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
	d.native = raw != nil && t.native && nativeEvent(h.EventType)
	if d.native {
		if err := d.parseRaw(t, kind, e, raw); err != nil {
			return fmt.Errorf("rows event of %s.%s at %s: %w", t.db, t.name, d.where(h), err)
		}
		d.nativeEvents++
	} else if raw != nil {
		if err := e.DecodeData(raw.pos, raw.data); err != nil {
			return fmt.Errorf("rows event of %s.%s at %s: %w", t.db, t.name, d.where(h), err)
		}
	}
	if !d.native {
		for _, sk := range e.SkippedColumns {
			if len(sk) > 0 {
				return fmt.Errorf("rows event of %s.%s at %s has partial row images: %s", t.db, t.name, d.where(h), partialImageHint)
			}
		}
		if kind == KindUpdate && len(e.Rows)%2 != 0 {
			return fmt.Errorf("update rows event of %s.%s at %s: odd number of row images", t.db, t.name, d.where(h))
		}
		d.ev = e
		d.nraws = len(e.Rows)
	}
	d.src.file, d.src.pos, d.src.gtid = d.file, h.LogPos, d.gtid.current()
	d.src.serverID = h.ServerID // the server where the change originated
	d.offset = fileSeq(d.file)<<32 | int64(h.LogPos)
	step := 1
	if kind == KindUpdate {
		step = 2
	}
	if d.perEvent {
		d.rows += uint64(d.eventChanges(kind))
		return s.rowsEvent(d, t, kind)
	}
	d.head = appendHead(d.head[:0], &d.src, t, kind)
	for d.cur = 0; d.cur+step-1 < d.nraws; d.cur += step {
		d.rows++
		if err := s.row(d, t, kind); err != nil {
			return err
		}
	}
	return nil
}

const partialImageHint = "set binlog_row_image=FULL on the server"

// parseRaw parses the row images of a natively decoded event into d.raws.
func (d *decoder) parseRaw(t *table, kind Kind, e *replication.RowsEvent, raw *rawRows) error {
	n := len(t.cols)
	if int(e.ColumnCount) != n {
		return fmt.Errorf("the event has %d columns, the table map %d", e.ColumnCount, n)
	}
	if !fullBitmap(e.ColumnBitmap1, n) || kind == KindUpdate && !fullBitmap(e.ColumnBitmap2, n) {
		return fmt.Errorf("partial row images: %s", partialImageHint)
	}
	data, pos := raw.data, raw.pos
	d.nraws = 0
	var err error
	for pos < len(data) {
		for img := 0; img < 1 || img < 2 && kind == KindUpdate; img++ {
			if d.nraws == len(d.raws) {
				d.raws = append(d.raws, rawRow{})
			}
			bm := e.ColumnBitmap1
			if img == 1 {
				bm = e.ColumnBitmap2
			}
			if pos, err = t.parseImage(&d.raws[d.nraws], data, pos, bm, n); err != nil {
				return fmt.Errorf("row %d: %w", d.nraws, err)
			}
			d.nraws++
		}
	}
	return nil
}

// images returns the current row's before and after images (per-row
// mode), as the go-mysql or the native representation.
func (d *decoder) imagesAny(kind Kind, i int) (before, after anyRow) {
	switch kind {
	case KindInsert:
		return nil, d.ev.Rows[i]
	case KindDelete:
		return d.ev.Rows[i], nil
	}
	return d.ev.Rows[i], d.ev.Rows[i+1]
}

func (d *decoder) imagesRaw(kind Kind, i int) (before, after *rawRow) {
	switch kind {
	case KindInsert:
		return nil, &d.raws[i]
	case KindDelete:
		return &d.raws[i], nil
	}
	return &d.raws[i], &d.raws[i+1]
}

// appendRowBody appends the current row's payload after the head (see
// appendRowBody) and, unless key is nil, its Kafka key to *key.
func (d *decoder) appendRowBody(dst []byte, key *[]byte, t *table, kind Kind) ([]byte, error) {
	if d.native {
		b, a := d.imagesRaw(kind, d.cur)
		return appendRowBody(dst, key, t, b, a, d.mask)
	}
	b, a := d.imagesAny(kind, d.cur)
	return appendRowBody(dst, key, t, b, a, d.mask)
}

// appendRow appends the current row change's whole payload.
func (d *decoder) appendRow(dst []byte, t *table, kind Kind) ([]byte, error) {
	dst = appendHead(dst, &d.src, t, kind)
	return d.appendRowBody(dst, nil, t, kind)
}

// eventChanges is the number of row changes in the current rows event.
func (d *decoder) eventChanges(kind Kind) int {
	if kind == KindUpdate {
		return d.nraws / 2
	}
	return d.nraws
}

// appendEvent encodes the current rows event whole (per-event mode).
func (d *decoder) appendEvent(dst []byte, t *table, kind Kind) ([]byte, error) {
	dst = appendEventStart(dst, &d.src, t, kind)
	var err error
	step := 1
	if kind == KindUpdate {
		step = 2
	}
	for i := 0; i+step-1 < d.nraws; i += step {
		if d.native {
			b, a := d.imagesRaw(kind, i)
			dst, err = appendEventRow(dst, t, i == 0, b, a, d.mask)
		} else {
			b, a := d.imagesAny(kind, i)
			dst, err = appendEventRow(dst, t, i == 0, b, a, d.mask)
		}
		if err != nil {
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
