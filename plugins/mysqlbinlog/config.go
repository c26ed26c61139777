package mysqlbinlog

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// Config configures a binlog reader (the input and Peek).
type Config struct {
	Addr     string // host:port
	User     string
	Password string
	Flavor   string // "auto", "mysql" or "mariadb"
	ServerID uint32 // unique among the source's replicas, non-zero
	// TLS to the server (the checks' connections and the binlog stream);
	// mode preferred uses TLS when the server offers it.
	TLS tlsconf.Config

	// Start applies when the stream has no checkpoint: "current" (the
	// server's position now), "earliest" (oldest binlog kept), "gtid"
	// (StartGTID) or "file" (StartFile, StartPos).
	Start     string
	StartGTID string
	StartFile string
	StartPos  uint32
	// UseGTID resumes from the GTID set when the checkpoint has one (else
	// from file/position).
	UseGTID bool
	// OnPurged: what to do when the resume position was purged on the
	// server: "fail" (default), "earliest", "current".
	OnPurged string

	Heartbeat        time.Duration
	ReadTimeout      time.Duration
	ConnectTimeout   time.Duration
	ReconnectBackoff time.Duration
	MaxBackoff       time.Duration

	// XAMaxBytes bounds the encoded rows held for prepared XA
	// transactions until their XA COMMIT or ROLLBACK (0: the default).
	XAMaxBytes int64

	PerEvent    bool // one packet per rows event instead of per row
	Include     []string
	Exclude     []string
	DropColumns []string
	MaskColumns []string
	MaskValue   string
	Kinds       []string
	MaxRowBytes int64 // row changes larger than this are counted (and still emitted)
	SchemaFile  string
	// Decoder of row images: "native" (dbus reads them straight into
	// JSON, go-mysql for the types it does not know; also "") or
	// "go-mysql".
	Decoder string
	// Columns: the column list ("columns" and "pk") in each row payload:
	// ColumnsPerRow (default; also "") or ColumnsNone (rows carry only
	// key, before and after, about half the bytes).
	Columns string

	// Snapshot of existing rows (snapshot.go): "never" (default),
	// "initial" (without a checkpoint), "when_needed" (also when the
	// checkpoint was purged), "initial_only" (snapshot, then stop).
	Snapshot            string
	SnapshotChunkRows   int
	SnapshotChunkBytes  int64
	SnapshotSignalTable string // db.table written with the watermarks
	// SnapshotWatermarks: "auto" (MariaDB: consistent-snapshot binlog
	// positions, no writes; MySQL: the signal table) or "signal_table".
	SnapshotWatermarks string
}

// Column list modes (Config.Columns).
const (
	ColumnsPerRow = "per_row"
	ColumnsNone   = "none"
)

// DefaultConfig returns the defaults of every optional setting.
func DefaultConfig() Config {
	return Config{
		User: "dbus", Flavor: "auto", Start: "current", UseGTID: true, OnPurged: "fail",
		Heartbeat: time.Second, ReadTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second,
		ReconnectBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second,
		MaskValue: "***", Columns: ColumnsPerRow, MaxRowBytes: 1 << 20, Decoder: "native", XAMaxBytes: DefaultXAMaxBytes,
		Snapshot: SnapshotNever, SnapshotChunkRows: 4096, SnapshotChunkBytes: 32 << 20, SnapshotSignalTable: "dbus.dbus_signal",
		SnapshotWatermarks: "auto",
	}
}

// Validate checks the configuration; errors name the setting.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return fmt.Errorf("addr: required (host:port of the MySQL/MariaDB server)")
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("addr %q: want host:port: %v", c.Addr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("addr %q: bad port", c.Addr)
	}
	if c.ServerID == 0 {
		return fmt.Errorf("server_id: must be non-zero and unique among the server's replicas")
	}
	if err := c.TLS.Validate(tlsconf.Options{AllowPreferred: true}); err != nil {
		return fmt.Errorf("tls: %v", err)
	}
	switch c.Flavor {
	case "auto", "mysql", "mariadb":
	default:
		return fmt.Errorf("flavor %q: want auto, mysql or mariadb", c.Flavor)
	}
	switch c.Decoder {
	case "", "native", "go-mysql": // "": native
	default:
		return fmt.Errorf("decoder %q: want native or go-mysql", c.Decoder)
	}
	switch c.Start {
	case "current", "earliest":
	case "gtid":
		if c.StartGTID == "" {
			return fmt.Errorf("start: gtid needs start_gtid (a GTID set such as 0-1-100 or uuid:1-42)")
		}
	case "file":
		if c.StartFile == "" {
			return fmt.Errorf("start: file needs start_file (and start_pos, default 4)")
		}
	default:
		return fmt.Errorf("start %q: want current, earliest, gtid or file", c.Start)
	}
	switch c.OnPurged {
	case "fail", "earliest", "current":
	default:
		return fmt.Errorf("on_purged %q: want fail, earliest or current", c.OnPurged)
	}
	if c.Heartbeat < 0 || c.ReadTimeout < 0 || c.ConnectTimeout <= 0 || c.ReconnectBackoff <= 0 || c.MaxBackoff < c.ReconnectBackoff {
		return fmt.Errorf("heartbeat, read_timeout, connect_timeout, reconnect_backoff, reconnect_max_backoff: must be positive, max >= backoff")
	}
	if c.ReadTimeout > 0 && c.Heartbeat > 0 && c.ReadTimeout <= c.Heartbeat {
		return fmt.Errorf("read_timeout %v must be longer than heartbeat %v (an idle server sends only heartbeats)", c.ReadTimeout, c.Heartbeat)
	}
	switch c.Columns {
	case "", ColumnsPerRow, ColumnsNone:
	default:
		return fmt.Errorf("columns %q: want per_row or none", c.Columns)
	}
	if c.XAMaxBytes < 0 {
		return fmt.Errorf("xa_max_bytes: must not be negative")
	}
	if _, err := newFilters(c.Include, c.Exclude, c.DropColumns, c.MaskColumns, c.Kinds); err != nil {
		return err
	}
	switch c.Snapshot {
	case "", SnapshotNever, SnapshotInitial, SnapshotWhenNeeded, SnapshotInitialOnly:
	default:
		return fmt.Errorf("snapshot %q: want never, initial, when_needed or initial_only", c.Snapshot)
	}
	if c.SnapshotChunkRows < 1 || c.SnapshotChunkBytes < 0 {
		return fmt.Errorf("snapshot_chunk_rows must be at least 1, snapshot_chunk_bytes not negative")
	}
	if db, t, ok := strings.Cut(c.SnapshotSignalTable, "."); !ok || db == "" || t == "" || strings.Contains(t, ".") {
		return fmt.Errorf("snapshot_signal_table %q: want db.table", c.SnapshotSignalTable)
	}
	switch c.SnapshotWatermarks {
	case "", "auto", "signal_table":
	default:
		return fmt.Errorf("snapshot_watermarks %q: want auto or signal_table", c.SnapshotWatermarks)
	}
	return nil
}

var spec = engine.Spec{
	Class:   "MysqlbinlogInput",
	Kind:    engine.KindInput,
	Summary: "Reads row changes from a MySQL or MariaDB binlog (ROW format) as JSON, one packet per row change; checkpoints at transaction boundaries.",
	// In cluster mode one resource per source, read by one member (see
	// cluster/DESIGN.md); server_id is set per resource.
	Distributed: true,
	Fields: []engine.Field{
		{Name: "addr", Type: engine.TypeString, Required: true, Doc: "host:port of the source server."},
		{Name: "user", Type: engine.TypeString, Default: "dbus", Doc: "Replication user (needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT)."},
		{Name: "password", Type: engine.TypeString, Default: "", Secret: true, Doc: "Its password."},
		tlsconf.Field(),
		{Name: "flavor", Type: engine.TypeString, Default: "auto", Enum: []string{"auto", "mysql", "mariadb"}, Doc: "Server flavor; auto detects it from the version."},
		{Name: "server_id", Type: engine.TypeInt, Required: true, HasRange: true, Min: 1, Max: 4294967295, Doc: "Replica server id dbus registers with: non-zero, unique among the source's replicas. In cluster mode each resource sets its own.", PerResource: true},
		{Name: "start", Type: engine.TypeString, Default: "current", Enum: []string{"current", "earliest", "gtid", "file"}, Doc: "Where to start without a checkpoint."},
		{Name: "start_gtid", Type: engine.TypeString, Default: "", Doc: "GTID set for start: gtid (the first transaction after it is read)."},
		{Name: "start_file", Type: engine.TypeString, Default: "", Doc: "Binlog file for start: file."},
		{Name: "start_pos", Type: engine.TypeInt, Default: 4, HasRange: true, Min: 4, Max: 4294967295, Doc: "Position in start_file (a transaction boundary)."},
		{Name: "use_gtid", Type: engine.TypeBool, Default: true, Doc: "Resume from the checkpoint's GTID set when it has one (else file/position)."},
		{Name: "on_purged", Type: engine.TypeString, Default: "fail", Enum: []string{"fail", "earliest", "current"}, Doc: "When the resume position was purged on the server: fail (stop with an error), or skip to the earliest/current position (losing the purged changes)."},
		{Name: "heartbeat", Type: engine.TypeDuration, Default: time.Second, Doc: "Heartbeat period the server is asked for (0 disables)."},
		{Name: "read_timeout", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "A connection silent this long (no event, no heartbeat) is reconnected."},
		{Name: "connect_timeout", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "Dial and handshake timeout."},
		{Name: "reconnect_backoff", Type: engine.TypeDuration, Default: 100 * time.Millisecond, Doc: "First delay before reconnecting; doubles up to reconnect_max_backoff."},
		{Name: "reconnect_max_backoff", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "Longest delay between reconnects."},
		{Name: "mode", Type: engine.TypeString, Default: "row", Enum: []string{"row", "event"}, Doc: "row: one packet per row change; event: one packet per rows event."},
		{Name: "columns", Type: engine.TypeString, Default: ColumnsPerRow, Enum: []string{ColumnsPerRow, ColumnsNone}, Doc: "Column list in row payloads: per_row (\"columns\" with names and types and \"pk\" in every row) or none (left out: rows still name their values in key, before and after; about half the bytes of a typical row, see the plugin README)."},
		{Name: "include", Type: engine.TypeStrings, Doc: "Tables to read: db or db.table globs (empty: all)."},
		{Name: "exclude", Type: engine.TypeStrings, Doc: "Tables to skip: db or db.table globs."},
		{Name: "drop_columns", Type: engine.TypeStrings, Doc: "Columns left out of payloads: db.table.column globs."},
		{Name: "mask_columns", Type: engine.TypeStrings, Doc: "Columns whose non-null values are replaced by mask_value: db.table.column globs."},
		{Name: "mask_value", Type: engine.TypeString, Default: "***", Doc: "Replacement of masked values."},
		{Name: "kinds", Type: engine.TypeStrings, Doc: "Packet kinds emitted: insert, update, delete (row changes), truncate (TRUNCATE TABLE), ddl (CREATE/ALTER/DROP/RENAME of tables, databases, indexes, views, routines). Empty: insert, update, delete, truncate (ddl only when listed)."},
		{Name: "xa_max_bytes", Type: engine.TypeSize, Default: int64(DefaultXAMaxBytes), Doc: "Memory for the rows of prepared XA transactions, held until their XA COMMIT (then emitted) or XA ROLLBACK (dropped); past it the input stops with an error naming the transaction. While one is unresolved the checkpoint stays before its prepare."},
		{Name: "max_row_bytes", Type: engine.TypeSize, Default: int64(1 << 20), Doc: "Row changes with a larger payload are counted, logged with their position and marked with attribute oversize=true; they are still emitted (outputs that reject them route them to the dead-letter output). 0: no limit."},
		{Name: "schema_file", Type: engine.TypeString, Default: "", Path: true, Writes: engine.WritesFile, Doc: "Schema history file, needed when the server does not log full row metadata (binlog_row_metadata=FULL)."},
		{Name: "snapshot", Type: engine.TypeString, Default: SnapshotNever, Enum: []string{SnapshotNever, SnapshotInitial, SnapshotWhenNeeded, SnapshotInitialOnly}, Doc: "Existing rows: never; initial (without a checkpoint, every included table is read in key-ordered chunks interleaved with the stream, as kind read packets, no global lock); when_needed (also when the checkpoint position was purged: restart from the current position with a snapshot); initial_only (snapshot, then stop). Ad hoc: dbc snapshot INPUT db.table."},
		{Name: "snapshot_chunk_rows", Type: engine.TypeInt, Default: 4096, HasRange: true, Min: 1, Max: 1 << 20, Doc: "Rows per snapshot chunk (one SELECT between a low and a high watermark)."},
		{Name: "snapshot_chunk_bytes", Type: engine.TypeSize, Default: int64(32 << 20), Doc: "A chunk ends early once its encoded rows take this much memory; a table without a primary or unique NOT NULL key is read whole and skipped if larger. 0: no limit."},
		{Name: "snapshot_signal_table", Type: engine.TypeString, Default: "dbus.dbus_signal", Doc: "db.table the snapshot writes its watermarks into (created if missing; needs CREATE, INSERT, UPDATE on it; one row per server_id). Its changes are never emitted."},
		{Name: "snapshot_watermarks", Type: engine.TypeString, Default: "auto", Enum: []string{"auto", "signal_table"}, Doc: "How a snapshot chunk is placed in the stream: auto: on MariaDB each chunk is read in a consistent snapshot whose binlog position it is emitted at (no writes, no signal table), on MySQL as signal_table; signal_table: low/high watermark rows written into snapshot_signal_table around each chunk (DBLog)."},
		{Name: "decoder", Type: engine.TypeString, Default: "native", Enum: []string{"native", "go-mysql"}, Doc: "Row image decoder: native reads row images straight into JSON (tables with old-format temporal, MySQL JSON, geometry or vector columns, compressed and partial-JSON events still use go-mysql); go-mysql decodes every row with go-mysql (same output, slower)."},
	},
	NewInput: func(c *engine.Conf) (engine.Input, error) { return newInput(c) },
}

// Register adds MysqlbinlogInput to reg.
func Register(reg *engine.Registry) error { return reg.Register(spec) }

func init() { engine.Default.MustRegister(spec) }

// configFromConf reads a Conf declared by spec.
func configFromConf(c *engine.Conf) (Config, error) {
	cfg := DefaultConfig()
	cfg.Addr = c.String("addr")
	cfg.User = c.String("user")
	cfg.Password = c.String("password")
	var err error
	if cfg.TLS, err = tlsconf.FromConf(c, tlsconf.Options{AllowPreferred: true}); err != nil {
		return cfg, err
	}
	cfg.Flavor = c.String("flavor")
	sid := c.Int("server_id")
	if sid <= 0 || sid > 1<<32-1 {
		return cfg, c.Errorf("server_id", "must be in [1, 4294967295] and unique among the server's replicas")
	}
	cfg.ServerID = uint32(sid)
	cfg.Start = c.String("start")
	cfg.StartGTID = c.String("start_gtid")
	cfg.StartFile = c.String("start_file")
	cfg.StartPos = uint32(c.Int("start_pos"))
	cfg.UseGTID = c.Bool("use_gtid")
	cfg.OnPurged = c.String("on_purged")
	cfg.Heartbeat = c.Duration("heartbeat")
	cfg.ReadTimeout = c.Duration("read_timeout")
	cfg.ConnectTimeout = c.Duration("connect_timeout")
	cfg.ReconnectBackoff = c.Duration("reconnect_backoff")
	cfg.MaxBackoff = c.Duration("reconnect_max_backoff")
	cfg.PerEvent = c.String("mode") == "event"
	cfg.Columns = c.String("columns")
	cfg.Include = c.Strings("include")
	cfg.Exclude = c.Strings("exclude")
	cfg.DropColumns = c.Strings("drop_columns")
	cfg.MaskColumns = c.Strings("mask_columns")
	cfg.MaskValue = c.String("mask_value")
	cfg.Kinds = c.Strings("kinds")
	cfg.MaxRowBytes = c.Size("max_row_bytes")
	cfg.XAMaxBytes = c.Size("xa_max_bytes")
	cfg.SchemaFile = c.String("schema_file")
	cfg.Decoder = c.String("decoder")
	cfg.Snapshot = c.String("snapshot")
	cfg.SnapshotChunkRows = int(c.Int("snapshot_chunk_rows"))
	cfg.SnapshotChunkBytes = c.Size("snapshot_chunk_bytes")
	cfg.SnapshotSignalTable = c.String("snapshot_signal_table")
	cfg.SnapshotWatermarks = c.String("snapshot_watermarks")
	if err := cfg.Validate(); err != nil {
		return cfg, &engine.ConfigError{File: c.File, Line: c.Line, Msg: c.Redact(fmt.Sprintf("%s (%s): %v", c.Name, c.Class, err))}
	}
	return cfg, nil
}
