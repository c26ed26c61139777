package mysqlbinlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	pingcaperrors "github.com/pingcap/errors"

	"github.com/dbus-project/dbus/plugins/tlsconf"
)

// serverInfo is what the preflight check learned about the source.
type serverInfo struct {
	Version  string
	MariaDB  bool
	ServerID uint32
	// FullMetadata: binlog_row_metadata=FULL (column names in table maps).
	FullMetadata bool
	Current      Position // the server's binlog end now
	Logs         []string // binlog files on the server, oldest first
	GTIDMode     bool     // MySQL gtid_mode=ON, or MariaDB (always)
	TLS          bool     // the checks' connection used TLS (see tls.go)
}

// fatalError is an error that reconnecting will not cure: bad
// credentials, missing grants, server settings, a purged position, an
// undecodable event. The input stops with it.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(format string, args ...any) error { return &fatalError{fmt.Errorf(format, args...)} }

// isFatal reports whether err is final (see fatalError).
func isFatal(err error) bool {
	var f *fatalError
	return errors.As(err, &f)
}

// myError finds a server error in err's chain (go-mysql wraps errors with
// pingcap/errors).
func myError(err error) *mysql.MyError {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	if me, ok := pingcaperrors.Cause(err).(*mysql.MyError); ok {
		return me
	}
	return nil
}

// isRetryable is the one retry classifier of this package: network
// failures and a server going away are retried; server errors other than
// "shutting down" and every fatalError are not.
func isRetryable(err error) bool {
	if err == nil || isFatal(err) {
		return false
	}
	if me := myError(err); me != nil {
		switch me.Code {
		case mysql.ER_SERVER_SHUTDOWN, mysql.ER_CON_COUNT_ERROR, mysql.ER_TOO_MANY_USER_CONNECTIONS, 1927 /* ER_CONNECTION_KILLED */ :
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "i/o timeout", "bad connection", "use of closed network connection", "Sync was closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// explainServerError turns a server error into one that says what to
// change, or returns nil if it has no special meaning.
func explainServerError(err error, cfg *Config) error {
	me := myError(err)
	if me == nil {
		return nil
	}
	grant := fmt.Sprintf("GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '%s'@'%%'", cfg.User)
	if e := explainSecureTransport(me, cfg); e != nil {
		return e
	}
	switch me.Code {
	case mysql.ER_ACCESS_DENIED_ERROR:
		return fatal("cannot log in to %s as %q: access denied: check user and password%s (server says: %s)", cfg.Addr, cfg.User, plaintextRefusedHint(cfg), me.Message)
	case mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, mysql.ER_DBACCESS_DENIED_ERROR, mysql.ER_TABLEACCESS_DENIED_ERROR:
		return fatal("user %q on %s lacks a privilege dbus needs: %s (server says: %s)", cfg.User, cfg.Addr, grant, me.Message)
	}
	return nil
}

// connect opens a client connection for checks and queries, with TLS as
// cfg.TLS says (tls.go).
func connect(ctx context.Context, cfg *Config) (*client.Conn, error) {
	tc, err := cfg.tlsFor()
	if err != nil {
		return nil, fatal("tls to %s: %v", cfg.Addr, err)
	}
	c, err := dial(ctx, cfg, tc)
	if err != nil && tc != nil && cfg.TLS.Mode == tlsconf.ModePreferred && isNoTLS(err) {
		c, err = dial(ctx, cfg, nil)
	}
	if err != nil {
		if e := explainServerError(err, cfg); e != nil {
			return nil, e
		}
		if e := explainTLSError(err, cfg); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("cannot connect to %s as %q: %w", cfg.Addr, cfg.User, err)
	}
	return c, nil
}

// preflight checks the server is usable for row-based change capture and
// returns what it learned. Every setting error says what to change.
func preflight(ctx context.Context, cfg *Config) (*serverInfo, error) {
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	info := &serverInfo{TLS: isTLSConn(c)}
	r, err := c.Execute("SELECT @@version, @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, @@global.server_id")
	if err != nil {
		if e := explainServerError(err, cfg); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("cannot read server settings of %s: %w", cfg.Addr, err)
	}
	info.Version, _ = r.GetString(0, 0)
	logBin, _ := r.GetString(0, 1)
	format, _ := r.GetString(0, 2)
	image, _ := r.GetString(0, 3)
	sid, _ := r.GetUint(0, 4)
	info.ServerID = uint32(sid)
	info.MariaDB = strings.Contains(strings.ToLower(info.Version), "mariadb")
	switch cfg.Flavor {
	case "mysql":
		if info.MariaDB {
			return nil, fatal("flavor is mysql but %s runs %s: set flavor: mariadb (or auto)", cfg.Addr, info.Version)
		}
	case "mariadb":
		if !info.MariaDB {
			return nil, fatal("flavor is mariadb but %s runs MySQL %s: set flavor: mysql (or auto)", cfg.Addr, info.Version)
		}
	}
	if logBin != "1" && !strings.EqualFold(logBin, "ON") {
		return nil, fatal("binary logging is off on %s: start the server with log_bin enabled (--log-bin=mysql-bin), binlog_format=ROW and binlog_row_image=FULL", cfg.Addr)
	}
	if !strings.EqualFold(format, "ROW") {
		return nil, fatal("binlog_format is %s on %s: dbus needs ROW. Set binlog_format=ROW in my.cnf and SET GLOBAL binlog_format=ROW (sessions opened before keep the old format until they reconnect)", format, cfg.Addr)
	}
	if !strings.EqualFold(image, "FULL") {
		return nil, fatal("binlog_row_image is %s on %s: dbus needs FULL (before and after images of every column). Set binlog_row_image=FULL in my.cnf and SET GLOBAL binlog_row_image=FULL", image, cfg.Addr)
	}
	if info.ServerID == cfg.ServerID {
		return nil, fatal("server_id %d is the source's own server_id: choose a server_id unique among %s and its replicas", cfg.ServerID, cfg.Addr)
	}
	if r, err := c.Execute("SELECT @@global.binlog_row_metadata"); err == nil {
		md, _ := r.GetString(0, 0)
		info.FullMetadata = strings.EqualFold(md, "FULL")
	}
	if info.MariaDB {
		info.GTIDMode = true
	} else if r, err := c.Execute("SELECT @@global.gtid_mode"); err == nil {
		m, _ := r.GetString(0, 0)
		info.GTIDMode = strings.EqualFold(m, "ON")
	}
	if err := currentPosition(c, cfg, info); err != nil {
		return nil, err
	}
	r, err = c.Execute("SHOW BINARY LOGS")
	if err != nil {
		if e := explainServerError(err, cfg); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("SHOW BINARY LOGS on %s: %w", cfg.Addr, err)
	}
	for i := 0; i < r.RowNumber(); i++ {
		name, _ := r.GetString(i, 0)
		info.Logs = append(info.Logs, name)
	}
	// REPLICATION SLAVE cannot be checked without trying; the dump's
	// error is explained by explainServerError.
	return info, nil
}

// currentPosition reads the binlog end and the executed GTID set.
func currentPosition(c *client.Conn, cfg *Config, info *serverInfo) error {
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil && myError(err) != nil && myError(err).Code == mysql.ER_PARSE_ERROR {
		r, err = c.Execute("SHOW BINARY LOG STATUS") // MySQL >= 8.4
	}
	if err != nil {
		if e := explainServerError(err, cfg); e != nil {
			return e
		}
		return fmt.Errorf("SHOW MASTER STATUS on %s: %w", cfg.Addr, err)
	}
	if r.RowNumber() == 0 {
		return fatal("SHOW MASTER STATUS on %s returns nothing: binary logging is off; start the server with --log-bin", cfg.Addr)
	}
	info.Current.File, _ = r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	info.Current.Pos = uint32(pos)
	if info.MariaDB {
		g, err := c.Execute("SELECT @@global.gtid_binlog_pos")
		if err == nil {
			info.Current.GTID, _ = g.GetString(0, 0)
		}
	} else if info.GTIDMode && r.ColumnNumber() >= 5 {
		s, _ := r.GetString(0, 4)
		info.Current.GTID = strings.ReplaceAll(s, "\n", "")
	}
	return nil
}

// mariaGTIDAt asks a MariaDB server for the GTID position at file:pos.
func mariaGTIDAt(ctx context.Context, cfg *Config, file string, pos uint32) (string, error) {
	c, err := connect(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	r, err := c.Execute("SELECT BINLOG_GTID_POS(?, ?)", file, pos)
	if err != nil {
		return "", fmt.Errorf("BINLOG_GTID_POS(%s, %d) on %s: %w", file, pos, cfg.Addr, err)
	}
	s, _ := r.GetString(0, 0)
	return s, nil
}

// isPurgedError reports whether a dump error means the requested position
// is no longer in the server's binlogs.
func isPurgedError(err error) bool {
	me := myError(err)
	if me == nil || me.Code != mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		return false
	}
	m := strings.ToLower(me.Message)
	return strings.Contains(m, "could not find first log file") || strings.Contains(m, "purged") ||
		strings.Contains(m, "could not find gtid state") || strings.Contains(m, "has been purged") ||
		strings.Contains(m, "not find") && strings.Contains(m, "binlog")
}
