package mysqlbinlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// Peek tails a server's binlog to w for operators (dbc peek): one JSON
// line per row change (the input's payload format, filters applied) and,
// every second and at the end, a rate line starting with "#". It starts
// at cfg.Start (usually "current") and returns when ctx ends (nil) or on
// an error. It writes nothing to any checkpoint.
func Peek(ctx context.Context, cfg Config, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	f, err := newFilters(cfg.Include, cfg.Exclude, cfg.DropColumns, cfg.MaskColumns, cfg.Kinds)
	if err != nil {
		return err
	}
	f.noColumns = cfg.Columns == ColumnsNone
	in := &Input{cfg: cfg, filters: f}
	info, err := preflight(ctx, &cfg)
	if err != nil {
		return err
	}
	start, err := in.configuredStart(ctx, info)
	if err != nil {
		return err
	}
	var hist *history
	if cfg.SchemaFile != "" {
		if hist, err = loadHistory(cfg.SchemaFile); err != nil {
			return err
		}
	}
	d, err := newDecoder(info.MariaDB, f, hist, start, cfg.PerEvent, cfg.MaskValue)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := startStream(ctx, &cfg, f, info, start, log)
	if err != nil {
		return err
	}
	defer st.close()
	ps := &peekSink{w: w, began: time.Now(), last: time.Now()}
	fmt.Fprintf(w, "# peeking %s (%s) from %s\n", cfg.Addr, info.Version, start)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ev := <-st.events:
			if ts := ev.ev.Header.Timestamp; ts != 0 && ev.ev.Header.EventType != replication.HEARTBEAT_EVENT {
				ps.lag = max(time.Since(time.Unix(int64(ts), 0)), 0)
			}
			if err := d.handle(ev, ps); err != nil {
				return err
			}
			if ps.err != nil {
				return ps.err
			}
		case err := <-st.errs:
			return err
		case <-tick.C:
			ps.rate(d)
		case <-ctx.Done():
			ps.rate(d)
			if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil
			}
			return ctx.Err()
		}
	}
}

type peekSink struct {
	w          io.Writer
	buf        []byte
	err        error
	began      time.Time
	last       time.Time
	rows, prev uint64
	lag        time.Duration
}

func (p *peekSink) row(d *decoder, t *table, kind Kind) error {
	var err error
	p.buf, err = d.appendRow(p.buf[:0], t, kind)
	if err != nil {
		return err
	}
	p.rows++
	_, p.err = p.w.Write(append(p.buf, '\n'))
	return p.err
}

func (p *peekSink) rowsEvent(d *decoder, t *table, kind Kind) error {
	var err error
	p.buf, err = d.appendEvent(p.buf[:0], t, kind)
	if err != nil {
		return err
	}
	p.rows += uint64(d.eventChanges(kind))
	_, p.err = p.w.Write(append(p.buf, '\n'))
	return p.err
}

func (p *peekSink) boundary(d *decoder) error { return nil }
func (p *peekSink) heartbeat(d *decoder)      { p.lag = 0 }

func (p *peekSink) packet(d *decoder, op *outPacket) error {
	if op.row {
		p.rows++
	}
	_, p.err = p.w.Write(append(append(p.buf[:0], op.payload...), '\n'))
	return p.err
}

func (p *peekSink) xaResolved(d *decoder, xid string, t *xaTxn, committed bool, at string) {}

// rate writes "# rows N (R/s) txns T lag L at file:pos".
func (p *peekSink) rate(d *decoder) {
	now := time.Now()
	el := now.Sub(p.last).Seconds()
	r := 0.0
	if el > 0 {
		r = float64(p.rows-p.prev) / el
	}
	fmt.Fprintf(p.w, "# rows %d (%.0f/s) txns %d lag %v at %s:%d\n", p.rows, r, d.txns, p.lag.Truncate(time.Second), d.commitFile, d.commitPos)
	p.prev, p.last = p.rows, now
}
