package mysqlbinlog

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
)

// XA transactions (doc.go, "XA transactions").
//
// The server logs an XA transaction's rows when it is prepared: GTID,
// "XA START xid", the rows, "XA END xid", XA_PREPARE_LOG_EVENT (the group
// end). Its outcome comes later in a group of its own: "XA COMMIT xid" or
// "XA ROLLBACK xid". The decoder holds the rows of a prepared transaction,
// encoded, until then: they are emitted at the commit (with the commit's
// position), dropped at the rollback. While a prepared transaction is
// unresolved, the checkpoint stays at the boundary before its GTID event
// (xaState.oldest), so a restart re-reads the prepare and holds its rows
// again; held rows live only in memory, bounded by xa_max_bytes.

// DefaultXAMaxBytes bounds the rows held for prepared XA transactions.
const DefaultXAMaxBytes = 64 << 20

// outPacket is a packet encoded ahead of its emission: a held row of a
// prepared XA transaction, or a statement packet (truncate, ddl).
type outPacket struct {
	payload, key []byte
	db, table    string
	kind         string
	tsMs         int64
	offset       int64 // the packet's position offset, set when emitted
	row          bool  // a row change (counted by Rows)
	native       bool  // decoded by the native decoder
}

// xaTxn is an XA transaction being read or prepared and unresolved.
type xaTxn struct {
	xid   string   // as logged: X'..',X'..',formatID
	start Position // the boundary before its GTID event: resuming there re-reads it
	at    string   // where it was prepared (file:pos), for messages
	rows  []outPacket
	bytes int64
}

// xaState is the decoder's XA bookkeeping; it is also the sink rows go to
// between XA START and the prepare. Not safe for concurrent use.
type xaState struct {
	max   int64    // bound on held bytes (0: DefaultXAMaxBytes)
	cur   *xaTxn   // the XA transaction being read (XA START .. prepare)
	held  []*xaTxn // prepared and unresolved, in prepare order
	bytes int64    // payload and key bytes in cur and held

	// Counters (the owner's goroutine; Input mirrors them atomically).
	committed, rolledBack uint64
}

// oldest returns the oldest unresolved prepared transaction, nil if none.
func (x *xaState) oldest() *xaTxn {
	if len(x.held) == 0 {
		return nil
	}
	return x.held[0]
}

// take removes and returns the held transaction xid, nil if not held.
func (x *xaState) take(xid string) *xaTxn {
	for i, t := range x.held {
		if t.xid == xid {
			x.held = append(x.held[:i], x.held[i+1:]...)
			x.bytes -= t.bytes
			return t
		}
	}
	return nil
}

// hold adds an encoded row to the transaction being read, failing past
// the bound.
func (x *xaState) hold(d *decoder, op outPacket) error {
	n := int64(len(op.payload) + len(op.key))
	max := x.max
	if max <= 0 {
		max = DefaultXAMaxBytes
	}
	if x.bytes+n > max {
		return fatal("XA transaction %s at %s:%d: the rows held for prepared XA transactions until their XA COMMIT or ROLLBACK "+
			"would exceed xa_max_bytes (%d bytes; %d held in %d prepared transactions). Raise xa_max_bytes (memory), "+
			"or resolve the prepared transactions on the server (XA RECOVER lists them); the checkpoint stays before the oldest prepare",
			x.cur.xid, d.src.file, d.src.pos, max, x.bytes, len(x.held))
	}
	x.bytes += n
	x.cur.bytes += n
	x.cur.rows = append(x.cur.rows, op)
	return nil
}

// row holds the decoder's current row (sink, between XA START and prepare).
func (x *xaState) row(d *decoder, t *table, kind Kind) error {
	payload := append(make([]byte, 0, len(d.head)+128), d.head...)
	var key []byte
	payload, err := d.appendRowBody(payload, &key, t, kind)
	if err != nil {
		return fatal("cannot encode row of %s.%s at %s:%d: %v", t.db, t.name, d.src.file, d.src.pos, err)
	}
	return x.hold(d, outPacket{payload: payload, key: key, db: t.db, table: t.name, kind: kindNames[kind],
		tsMs: d.src.tsMs, row: true, native: d.native})
}

// rowsEvent holds the decoder's current rows event (per-event mode).
func (x *xaState) rowsEvent(d *decoder, t *table, kind Kind) error {
	payload, err := d.appendEvent(nil, t, kind)
	if err != nil {
		return fatal("cannot encode rows event of %s.%s at %s:%d: %v", t.db, t.name, d.src.file, d.src.pos, err)
	}
	return x.hold(d, outPacket{payload: payload, key: append([]byte(nil), t.keyPrefix...), db: t.db, table: t.name,
		kind: kindNames[kind], tsMs: d.src.tsMs, row: true, native: d.native})
}

func (x *xaState) boundary(d *decoder) error              { return nil }
func (x *xaState) heartbeat(d *decoder)                   {}
func (x *xaState) packet(d *decoder, op *outPacket) error { return nil }
func (x *xaState) xaResolved(d *decoder, xid string, t *xaTxn, committed bool, at string) {
}

// xaQuery handles an "XA ..." query event. ok is false for a query that
// is not an XA statement.
func (d *decoder) xaQuery(h *replication.EventHeader, q []byte, s sink) (ok bool, err error) {
	f := strings.Fields(string(q))
	if len(f) < 2 || !strings.EqualFold(f[0], "XA") {
		return false, nil
	}
	verb := strings.ToUpper(f[1])
	xid := ""
	if len(f) > 2 {
		xid = strings.ToLower(strings.TrimRight(f[2], ";"))
	}
	switch verb {
	case "START", "BEGIN": // MySQL; MariaDB flags the GTID event instead
		d.xaStart(xid)
		d.inTxn = true
		return true, nil
	case "END":
		return true, nil
	case "COMMIT":
		if len(f) > 4 && strings.EqualFold(f[3], "ONE") && strings.EqualFold(f[4], "PHASE") && d.xa.cur != nil && d.xa.cur.xid == xid {
			// One-phase commit logged as XA statements: rows are final here.
			cur := d.xa.cur
			d.xa.cur = nil
			d.xa.bytes -= cur.bytes
			if err := d.xaDeliver(h, cur, s); err != nil {
				return true, err
			}
			return true, d.boundary(h, s)
		}
		t := d.xa.take(xid)
		if t != nil {
			if err := d.xaDeliver(h, t, s); err != nil {
				return true, err
			}
		}
		s.xaResolved(d, xid, t, true, d.where(h))
		return true, d.boundary(h, s)
	case "ROLLBACK":
		t := d.xa.take(xid)
		if t != nil {
			d.xa.rolledBack++
		}
		s.xaResolved(d, xid, t, false, d.where(h))
		return true, d.boundary(h, s)
	}
	// XA PREPARE (logged as its own event), RECOVER: nothing to do.
	return true, nil
}

// xaStart begins reading an XA transaction's prepare group.
func (d *decoder) xaStart(xid string) {
	// The boundary before this group: committed() has not moved since the
	// previous one.
	d.xa.cur = &xaTxn{xid: xid, start: d.committed()}
}

// MariaDB GTID event flags (log_event.h) go-mysql does not name.
const (
	mariaFlPreparedXA  = 64
	mariaFlCompletedXA = 128
)

// mariaGTIDXA handles a MariaDB GTID event flagged FL_PREPARED_XA: the
// start of an XA transaction's prepare group (MariaDB logs no XA START
// query). The xid follows the GTID in the event body, which go-mysql
// does not decode: seq_no(8) domain(4) flags(1) [commit_id(8)]
// format_id(4) gtrid_len(1) bqual_len(1) data.
func (d *decoder) mariaGTIDXA(h *replication.EventHeader, flags byte, raw []byte) error {
	if flags&mariaFlPreparedXA == 0 {
		return nil
	}
	b := raw[min(len(raw), replication.EventHeaderSize):]
	i := 13
	if flags&replication.BINLOG_MARIADB_FL_GROUP_COMMIT_ID != 0 {
		i += 8
	}
	if len(b) < i+6 {
		return fmt.Errorf("XA GTID event at %s: %d bytes, too short for its xid", d.where(h), len(b))
	}
	format := binary.LittleEndian.Uint32(b[i:])
	gl, bl := int(b[i+4]), int(b[i+5])
	i += 6
	if len(b) < i+gl+bl {
		return fmt.Errorf("XA GTID event at %s: xid of %d+%d bytes past the event's end", d.where(h), gl, bl)
	}
	d.xaStart(fmt.Sprintf("x'%x',x'%x',%d", b[i:i+gl], b[i+gl:i+gl+bl], format))
	return nil
}

// xaDeliver emits a committed transaction's held rows at the commit's
// position.
func (d *decoder) xaDeliver(h *replication.EventHeader, t *xaTxn, s sink) error {
	d.xa.committed++
	off := fileSeq(d.file)<<32 | int64(h.LogPos)
	for i := range t.rows {
		t.rows[i].offset = off
		if err := s.packet(d, &t.rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// xaPrepare handles XA_PREPARE_LOG_EVENT, the end of an XA transaction's
// prepare group (data: one_phase flag, format id, gtrid and bqual lengths,
// xid). A one-phase prepare (MySQL's XA COMMIT ... ONE PHASE) commits.
func (d *decoder) xaPrepare(h *replication.EventHeader, data []byte, s sink) error {
	cur := d.xa.cur
	d.xa.cur = nil
	if cur != nil {
		switch {
		case len(data) > 0 && data[0] != 0:
			d.xa.bytes -= cur.bytes
			if err := d.xaDeliver(h, cur, s); err != nil {
				return err
			}
		case len(cur.rows) == 0:
			// Nothing of it is read: nothing to hold back.
		default:
			cur.at = d.where(h)
			d.xa.held = append(d.xa.held, cur)
		}
	}
	return d.boundary(h, s)
}

// packet emits a packet encoded ahead (held XA rows, statement packets).
func (r *runSink) packet(d *decoder, op *outPacket) error {
	r.snap.outPacket(op.db, op.table, op.kind, op.key) // snapshot.go: a chunk in its window
	p, err := r.ic.NewPacket(r.ctx)
	if err != nil {
		return err
	}
	p.Payload = append(p.Payload[:0], op.payload...)
	p.Key = append(p.Key[:0], op.key...)
	p.Ts = op.tsMs * 1e6
	p.Attrs.SetString("db", op.db)
	p.Attrs.SetString("table", op.table)
	p.Attrs.SetString("kind", op.kind)
	p.Pos.Offset = op.offset
	if op.row {
		if max := r.in.cfg.MaxRowBytes; max > 0 && int64(len(p.Payload)) > max {
			r.in.oversize.Add(1)
			p.Attrs.SetBool("oversize", true)
			r.log.Warn("row change larger than max_row_bytes (emitted; outputs that reject it route it to the dead-letter output)",
				"db", op.db, "table", op.table, "bytes", len(p.Payload), "max_row_bytes", max)
		}
		r.in.rowsOut.Add(1)
		if op.native {
			r.in.nativeOut.Add(1)
		}
	}
	return r.ic.Emit(r.ctx, r.s, p)
}

// xaResolved logs an XA ROLLBACK (counted: XARolledBack) and a commit or
// rollback whose prepare was not read.
func (r *runSink) xaResolved(d *decoder, xid string, t *xaTxn, committed bool, at string) {
	switch {
	case t == nil && committed:
		r.log.Warn("XA COMMIT of a transaction whose prepare was not read: it was prepared before the position reading started at "+
			"(after a restart its rows were delivered before; at a first start they are not read)", "xid", xid, "position", at)
	case t == nil:
		r.log.Info("XA ROLLBACK of a transaction whose prepare was not read", "xid", xid, "position", at)
	case !committed:
		r.in.xaRolled.Add(1)
		r.log.Info("XA transaction rolled back: its held rows are dropped", "xid", xid, "rows", len(t.rows),
			"prepared", t.at, "position", at)
	}
	r.in.xaHeld.Store(int64(len(d.xa.held)))
}

// XARolledBack returns the number of prepared XA transactions rolled back
// (their held rows dropped). Safe for concurrent use.
func (in *Input) XARolledBack() uint64 { return in.xaRolled.Load() }

// XAHeld returns the number of prepared XA transactions whose rows are
// held, as of the last transaction boundary. Safe for concurrent use.
func (in *Input) XAHeld() int64 { return in.xaHeld.Load() }

// reportXA emits the XA series (ReportMetrics).
func (in *Input) reportXA(emit func(name, help string, kind engine.MetricKind, value float64, labels ...string)) {
	emit("dbus_binlog_xa_held", "Prepared XA transactions whose rows are held until their XA COMMIT or XA ROLLBACK.", engine.MetricGauge, float64(in.XAHeld()))
	emit("dbus_binlog_xa_rolled_back_total", "Prepared XA transactions rolled back: their rows were dropped, never delivered.", engine.MetricCounter, float64(in.XARolledBack()))
}
