package mysqlbinlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Input is the MysqlbinlogInput plugin. See doc.go.
type Input struct {
	cfg     Config
	filters *filters

	lagNs     atomic.Int64  // seconds behind the source, in ns
	oversize  atomic.Uint64 // row changes larger than max_row_bytes
	purged    atomic.Uint64 // times the resume position was found purged
	reconnect atomic.Uint64 // reconnects after a lost connection
	rowsOut   atomic.Uint64 // row packets emitted
	nativeOut atomic.Uint64 // of which decoded by the native decoder
	xaRolled  atomic.Uint64 // prepared XA transactions rolled back (rows dropped)
	xaHeld    atomic.Int64  // prepared XA transactions whose rows are held
	snapRows  atomic.Uint64 // kind read packets emitted by snapshots

	snap *snapshotter // snapshot.go
}

func newInput(c *engine.Conf) (*Input, error) {
	cfg, err := configFromConf(c)
	if err != nil {
		return nil, err
	}
	return NewInput(cfg)
}

// NewInput builds the input from cfg (validated here).
func NewInput(cfg Config) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := newFilters(cfg.Include, cfg.Exclude, cfg.DropColumns, cfg.MaskColumns, cfg.Kinds)
	if err != nil {
		return nil, err
	}
	f.noColumns = cfg.Columns == ColumnsNone
	in := &Input{cfg: cfg, filters: f}
	if in.cfg.Snapshot == "" {
		in.cfg.Snapshot = SnapshotNever
	}
	in.snap = newSnapshotter(&in.cfg, f)
	f.sigDB, f.sigName = in.snap.sigDB, in.snap.sigName
	return in, nil
}

// Lag returns how far the input is behind the source: now minus the
// timestamp of the last event read, 0 once a heartbeat says the source has
// nothing newer. Safe for concurrent use (metrics).
func (in *Input) Lag() time.Duration { return time.Duration(in.lagNs.Load()) }

// Oversize returns the number of row changes larger than max_row_bytes.
func (in *Input) Oversize() uint64 { return in.oversize.Load() }

// Reconnects returns the number of reconnects after a lost connection.
func (in *Input) Reconnects() uint64 { return in.reconnect.Load() }

// Rows returns the number of row packets emitted.
func (in *Input) Rows() uint64 { return in.rowsOut.Load() }

// NativeRows returns the number of packets emitted whose rows the native
// decoder read (the rest went through go-mysql's decoding).
func (in *Input) NativeRows() uint64 { return in.nativeOut.Load() }

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	log := ic.Log()
	info, err := in.preflightRetry(ctx, log)
	if err != nil {
		return err
	}
	var start Position
	snapMode := in.cfg.Snapshot
	if cp, ok := s.Resume(); ok && cp.Token != "" {
		tok, st, err := splitSnapToken(cp.Token)
		if err == nil {
			start, err = ParseToken(tok)
		}
		if err != nil {
			return fatal("checkpoint of %s: %v (move the checkpoint away to start as configured)", s.Key(), err)
		}
		in.snap.reset(st, log, info.MariaDB)
		if st == nil && snapMode == SnapshotInitialOnly {
			log.Info("snapshot: initial_only and the snapshot is done: nothing to read")
			return nil
		}
		log.Info("resuming from checkpoint", "position", start.String(), "snapshot_tables_left", len(in.snap.state.Tables))
	} else {
		in.snap.reset(nil, log, info.MariaDB)
		if snapMode != SnapshotNever {
			if err := in.snap.planAll(ctx); err != nil {
				return err
			}
		}
		start, err = in.configuredStart(ctx, info)
		if err != nil {
			return err
		}
		// The resolved position is durable before the first read: after a
		// crash (or any stop) before the first transaction, a restart
		// resumes here instead of resolving "current" again and skipping
		// what was written in between.
		if err := ic.Mark(ctx, s, pack.Pos{Offset: start.Offset(), Token: in.snap.appendToken(start.AppendToken(nil))}); err != nil {
			return err
		}
		if err := ic.Commit(ctx); err != nil {
			return fmt.Errorf("cannot save the start position %s before reading: %w", start, err)
		}
		log.Info("starting without checkpoint", "start", in.cfg.Start, "position", start.String())
	}
	hist, err := in.openHistory(ctx, info, start, log)
	if err != nil {
		return err
	}
	defer in.snap.closeConn()
	rs := &runSink{in: in, ic: ic, s: s, ctx: ctx, log: log, snap: in.snap}
	d, err := newDecoder(info.MariaDB, in.filters, hist, start, in.cfg.PerEvent, in.cfg.MaskValue)
	if err != nil {
		return fatal("start position %s: %v", start, err)
	}
	backoff := in.cfg.ReconnectBackoff
	for {
		began := time.Now()
		err := in.session(ctx, info, d, rs, log)
		if ctx.Err() != nil {
			ic.Flush(ctx)
			return ctx.Err()
		}
		if errors.Is(err, errSnapshotDone) {
			// initial_only: the last chunk's boundary is marked.
			if err := ic.Flush(ctx); err != nil {
				return err
			}
			if err := ic.Commit(ctx); err != nil {
				return err
			}
			log.Info("snapshot: initial_only done: stopping")
			return nil
		}
		if isPurgedError(err) || errors.Is(err, errPurged) {
			var next Position
			var perr error
			if snapMode == SnapshotWhenNeeded {
				next, perr = in.purgedSnapshot(ctx, d.committed(), err, log)
			} else {
				next, perr = in.onPurged(ctx, d.committed(), err, log)
			}
			if perr != nil {
				return perr
			}
			in.snap.dropChunk() // its watermarks may lie before the new position
			if d, err = newDecoder(info.MariaDB, in.filters, hist, next, in.cfg.PerEvent, in.cfg.MaskValue); err != nil {
				return fatal("position %s: %v", next, err)
			}
			continue
		}
		if e := explainServerError(err, &in.cfg); e != nil {
			return e
		}
		if !isRetryable(err) {
			ic.Flush(ctx)
			if !isFatal(err) {
				err = &fatalError{err}
			}
			return err
		}
		if time.Since(began) > 10*in.cfg.MaxBackoff {
			backoff = in.cfg.ReconnectBackoff
		}
		if eo, ok := ic.(interface{ ExactlyOnce() bool }); ok && eo.ExactlyOnce() {
			// exactly_once: a reconnect would emit again the rows of the
			// interrupted transaction into the open Kafka transaction;
			// the engine restarts from the last committed one instead.
			ic.Flush(ctx)
			return fmt.Errorf("binlog connection lost; exactly_once pipelines do not reconnect inside the input: %w", err)
		}
		in.reconnect.Add(1)
		pos := d.committed()
		log.Warn("binlog connection lost: reconnecting", "err", err, "resume", pos.String(), "backoff", backoff)
		if err := ic.Flush(ctx); err != nil {
			return err
		}
		if !engine.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, in.cfg.MaxBackoff)
		// Re-read the server (it may have restarted with other settings).
		if ni, err := in.preflightRetry(ctx, log); err != nil {
			return err
		} else {
			info = ni
		}
	}
}

var errPurged = errors.New("binlog position purged")

// preflightRetry runs preflight, retrying while the server is unreachable.
func (in *Input) preflightRetry(ctx context.Context, log *slog.Logger) (*serverInfo, error) {
	backoff := in.cfg.ReconnectBackoff
	for {
		info, err := preflight(ctx, &in.cfg)
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !isRetryable(err) {
			if !isFatal(err) {
				err = &fatalError{err}
			}
			return nil, err
		}
		log.Warn("binlog source unreachable: retrying", "addr", in.cfg.Addr, "err", err, "backoff", backoff)
		if !engine.Sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, in.cfg.MaxBackoff)
	}
}

// configuredStart resolves the start setting against the server.
func (in *Input) configuredStart(ctx context.Context, info *serverInfo) (Position, error) {
	var p Position
	switch in.cfg.Start {
	case "current":
		p = info.Current
		if !info.GTIDMode {
			p.GTID = ""
		}
		return p, nil
	case "earliest":
		if len(info.Logs) == 0 {
			return p, fatal("SHOW BINARY LOGS on %s lists no binlog file", in.cfg.Addr)
		}
		p = Position{File: info.Logs[0], Pos: 4}
	case "gtid":
		if info.MariaDB {
			return Position{GTID: in.cfg.StartGTID}, nil
		}
		return Position{GTID: in.cfg.StartGTID}, nil
	case "file":
		p = Position{File: in.cfg.StartFile, Pos: in.cfg.StartPos}
	}
	if info.MariaDB {
		g, err := mariaGTIDAt(ctx, &in.cfg, p.File, p.Pos)
		if err == nil {
			p.GTID = g
		}
	}
	return p, nil
}

// onPurged applies on_purged after the resume position was not found.
func (in *Input) onPurged(ctx context.Context, at Position, cause error, log *slog.Logger) (Position, error) {
	in.purged.Add(1)
	info, err := preflight(ctx, &in.cfg)
	if err != nil {
		return Position{}, err
	}
	oldest := "none"
	if len(info.Logs) > 0 {
		oldest = info.Logs[0]
	}
	switch in.cfg.OnPurged {
	case "earliest":
		p := Position{File: oldest, Pos: 4}
		if info.MariaDB {
			if g, err := mariaGTIDAt(ctx, &in.cfg, p.File, p.Pos); err == nil {
				p.GTID = g
			}
		}
		log.Error("ALERT: binlog position purged on the server: changes between were LOST; on_purged=earliest moves on",
			"position", at.String(), "oldest", oldest, "resume", p.String(), "cause", cause)
		return p, nil
	case "current":
		p := info.Current
		log.Error("ALERT: binlog position purged on the server: changes between were LOST; on_purged=current moves on",
			"position", at.String(), "resume", p.String(), "cause", cause)
		return p, nil
	}
	return Position{}, fatal("ALERT: binlog position %s is no longer on %s: it was purged (oldest binlog now %s), so the changes after it cannot be read. "+
		"Nothing was skipped; the input stops. To move on, losing those changes, set on_purged: earliest or current (or remove the checkpoint). Server says: %v",
		at, in.cfg.Addr, oldest, cause)
}

// session streams from d's committed position until an error.
func (in *Input) session(ctx context.Context, info *serverInfo, d *decoder, rs *runSink, log *slog.Logger) error {
	start := d.committed()
	// A file position that is older than the oldest binlog is purged.
	if start.File != "" && !(in.cfg.UseGTID && start.GTID != "") && len(info.Logs) > 0 {
		if comparePos(start.File, start.Pos, info.Logs[0], 4) < 0 {
			return fmt.Errorf("%w: %s is older than the oldest binlog %s", errPurged, start, info.Logs[0])
		}
	}
	d.inTxn = false
	d.gtid.hasCur = false
	d.xa.cur, d.xa.max = nil, in.cfg.XAMaxBytes // prepared ones stay held
	st, err := startStream(ctx, &in.cfg, in.filters, info, start, log)
	if err != nil {
		return err
	}
	defer st.close()
	rs.stream = st
	sn := in.snap
	for {
		if err := sn.step(ctx); err != nil {
			return err
		}
		if sn.ran && !sn.active() && in.cfg.Snapshot == SnapshotInitialOnly && !d.inTxn {
			return errSnapshotDone
		}
		var ev streamEvent
		select {
		case ev = <-st.events:
		default:
			// Nothing buffered: hand on what we hold before blocking.
			if emitted, err := sn.idle(rs, d); err != nil {
				return err
			} else if emitted {
				continue // read the next snapshot chunks first
			}
			if err := rs.ic.Flush(ctx); err != nil {
				return err
			}
			select {
			case ev = <-st.events:
			case err := <-st.errs:
				return err
			case <-sn.wake: // an ad hoc snapshot was requested
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if ts := ev.ev.Header.Timestamp; ts != 0 && ev.ev.Header.EventType != replication.HEARTBEAT_EVENT {
			lag := time.Since(time.Unix(int64(ts), 0))
			in.lagNs.Store(int64(max(lag, 0)))
		}
		if err := sn.beforeEvent(rs, d, ev.ev.Header); err != nil {
			return err
		}
		if err := d.handle(ev, rs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !isFatal(err) && !errors.Is(err, context.Canceled) {
				err = &fatalError{fmt.Errorf("%s: %w", in.cfg.Addr, err)}
			}
			return err
		}
	}
}

// stream is one replication connection: go-mysql's syncer hands events to
// events from its own goroutine; its errors arrive on errs.
type stream struct {
	syncer *replication.BinlogSyncer
	events chan streamEvent
	errs   chan error
	done   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// streamEvent is an event and the rows events in it whose row images
// go-mysql left undecoded (rowsHook).
type streamEvent struct {
	ev  *replication.BinlogEvent
	raw []rawRows
}

type syncHandler struct {
	events chan<- streamEvent
	done   <-chan struct{}
	hook   *rowsHook // nil: go-mysql decodes every rows event
}

var errStreamClosed = errors.New("binlog stream closed")

func (h *syncHandler) HandleEvent(e *replication.BinlogEvent) error {
	se := streamEvent{ev: e}
	if h.hook != nil {
		se.raw = h.hook.take()
	}
	select {
	case h.events <- se:
		return nil
	case <-h.done:
		return errStreamClosed
	}
}

// startStream connects a replica session at pos.
// Rows events of tables or kinds f filters out are not decoded (see
// rowsSkipper).
func startStream(ctx context.Context, cfg *Config, f *filters, info *serverInfo, pos Position, log *slog.Logger) (*stream, error) {
	host, port, _ := net.SplitHostPort(cfg.Addr)
	p, _ := strconv.Atoi(port)
	flavor := mysql.MySQLFlavor
	if info.MariaDB {
		flavor = mysql.MariaDBFlavor
	}
	st := &stream{
		events: make(chan streamEvent, 1024),
		errs:   make(chan error, 1),
		done:   make(chan struct{}),
	}
	scfg := replication.BinlogSyncerConfig{
		ServerID: cfg.ServerID, Flavor: flavor, Host: host, Port: uint16(p),
		User: cfg.User, Password: cfg.Password,
		HeartbeatPeriod: cfg.Heartbeat, ReadTimeout: cfg.ReadTimeout,
		DisableRetrySync: true, ParseTime: false, TimestampStringLocation: time.UTC,
		UseDecimal: false, RenderJSONAsMySQLText: true, DiscardGTIDSet: true,
		EventCacheCount: 1, Logger: quietLogger(log),
	}
	tc, tlsErr := cfg.streamTLS(info)
	if tlsErr != nil {
		return nil, tlsErr
	}
	scfg.TLSConfig = tc
	h := &syncHandler{events: st.events, done: st.done, hook: newRowsHook(f, cfg.Decoder != "go-mysql")}
	scfg.SynchronousEventHandler = h
	if h.hook != nil {
		scfg.RowsEventDecodeFunc = h.hook.decode
	}
	st.syncer = replication.NewBinlogSyncer(scfg)
	var bs *replication.BinlogStreamer
	var err error
	if cfg.UseGTID && pos.GTID != "" {
		var set mysql.GTIDSet
		set, err = mysql.ParseGTIDSet(flavor, pos.GTID)
		if err != nil {
			st.syncer.Close()
			return nil, fatal("bad GTID set %q: %v", pos.GTID, err)
		}
		bs, err = st.syncer.StartSyncGTID(set)
	} else {
		if pos.File == "" {
			st.syncer.Close()
			return nil, fatal("no start position: neither file nor GTID set")
		}
		bs, err = st.syncer.StartSync(mysql.Position{Name: pos.File, Pos: pos.Pos})
	}
	if err != nil {
		close(st.done)
		st.syncer.Close()
		if me := myError(err); me != nil && (me.Code == mysql.ER_ACCESS_DENIED_ERROR || me.Code == mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR) {
			// The preflight logged in with these credentials: the
			// replica registration or dump was refused.
			return nil, fatal("user %q on %s lacks a privilege dbus needs: REPLICATION SLAVE (GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '%s'@'%%') (server says: %s)",
				cfg.User, cfg.Addr, cfg.User, me.Message)
		}
		if e := explainServerError(err, cfg); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("start replication from %s on %s: %w", pos, cfg.Addr, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	st.cancel = cancel
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		// In synchronous mode the streamer only carries errors.
		_, err := bs.GetEvent(sctx)
		if err != nil && sctx.Err() == nil {
			st.errs <- err
		}
	}()
	return st, nil
}

// close stops the session: unblock the handler, close the syncer (which
// waits for its goroutine), stop the error watcher.
func (st *stream) close() {
	close(st.done)
	st.syncer.Close()
	st.cancel()
	st.wg.Wait()
}

// pending returns the number of events read and not yet handled.
func (st *stream) pending() int { return len(st.events) }

// runSink emits the decoder's output into the engine.
type runSink struct {
	in     *Input
	ic     engine.InputContext
	s      *engine.Stream
	ctx    context.Context
	log    *slog.Logger
	stream *stream
	tok    []byte
	snap   *snapshotter
}

func (r *runSink) row(d *decoder, t *table, kind Kind) error {
	if sig, err := r.snap.row(r, d, t, kind); sig || err != nil {
		return err
	}
	p, err := r.ic.NewPacket(r.ctx)
	if err != nil {
		return err
	}
	p.Payload = append(p.Payload[:0], d.head...)
	p.Key = p.Key[:0]
	p.Payload, err = d.appendRowBody(p.Payload, &p.Key, t, kind)
	if err != nil {
		r.ic.Discard(p)
		return fatal("cannot encode row of %s.%s at %s:%d: %v", t.db, t.name, d.src.file, d.src.pos, err)
	}
	return r.emit(d, t, kind, p)
}

func (r *runSink) rowsEvent(d *decoder, t *table, kind Kind) error {
	if sig, err := r.snap.rowsEvent(r, d, t, kind); sig || err != nil {
		return err
	}
	p, err := r.ic.NewPacket(r.ctx)
	if err != nil {
		return err
	}
	p.Payload, err = d.appendEvent(p.Payload[:0], t, kind)
	if err != nil {
		r.ic.Discard(p)
		return fatal("cannot encode rows event of %s.%s at %s:%d: %v", t.db, t.name, d.src.file, d.src.pos, err)
	}
	p.Key = append(p.Key[:0], t.keyPrefix...)
	return r.emit(d, t, kind, p)
}

func (r *runSink) emit(d *decoder, t *table, kind Kind, p *pack.Packet) error {
	p.Ts = d.src.tsMs * 1e6
	p.Attrs.SetString("db", t.db)
	p.Attrs.SetString("table", t.name)
	p.Attrs.SetString("kind", kindNames[kind])
	p.Pos.Offset = d.offset
	if max := r.in.cfg.MaxRowBytes; max > 0 && int64(len(p.Payload)) > max {
		r.in.oversize.Add(1)
		p.Attrs.SetBool("oversize", true)
		r.log.Warn("row change larger than max_row_bytes (emitted; outputs that reject it route it to the dead-letter output)",
			"db", t.db, "table", t.name, "position", d.src.file+":"+strconv.FormatUint(uint64(d.src.pos), 10),
			"bytes", len(p.Payload), "max_row_bytes", max)
	}
	r.in.rowsOut.Add(1)
	if d.native {
		r.in.nativeOut.Add(1)
	}
	return r.ic.Emit(r.ctx, r.s, p)
}

func (r *runSink) boundary(d *decoder) error {
	pos := Position{File: d.commitFile, Pos: d.commitPos}
	r.tok = pos.AppendToken(r.tok[:0])
	r.tok = append(r.tok, d.committedGTID()...)
	r.in.xaHeld.Store(int64(len(d.xa.held)))
	if x := d.xa.oldest(); x != nil {
		// A prepared XA transaction is unresolved: a restart must re-read
		// its prepare, its rows are held only in memory (xa.go).
		pos = x.start
		r.tok = pos.AppendToken(r.tok[:0])
	}
	r.tok = r.snap.appendToken(r.tok)
	return r.ic.Mark(r.ctx, r.s, pack.Pos{Offset: pos.Offset(), Token: r.tok})
}

func (r *runSink) heartbeat(d *decoder) {
	if r.stream == nil || r.stream.pending() == 0 {
		r.in.lagNs.Store(0)
	}
}

// quietLogger passes go-mysql's warnings and errors to log, dropping its
// per-connection info lines.
func quietLogger(log *slog.Logger) *slog.Logger {
	return slog.New(levelHandler{min: slog.LevelWarn, h: log.Handler()}).With("lib", "go-mysql")
}

type levelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (l levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }
func (l levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{min: l.min, h: l.h.WithAttrs(a)}
}
func (l levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{min: l.min, h: l.h.WithGroup(n)}
}
