package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dbus-project/dbus/plugins/mysqlbinlog"
)

// runPeek tails a MySQL/MariaDB server's binlog to the terminal: one JSON
// line per decoded row change and a rate line every second, until
// Ctrl-C or -duration.
func runPeek(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dbc peek", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := mysqlbinlog.DefaultConfig()
	fs.StringVar(&cfg.Addr, "mysql", "127.0.0.1:3306", "server `host:port`")
	fs.StringVar(&cfg.User, "user", cfg.User, "replication user (REPLICATION SLAVE, REPLICATION CLIENT, SELECT)")
	password := fs.String("password", os.Getenv("DBC_MYSQL_PASSWORD"), "password (default $DBC_MYSQL_PASSWORD)")
	fs.StringVar(&cfg.Flavor, "flavor", cfg.Flavor, "auto, mysql or mariadb")
	serverID := fs.Uint("server-id", 64000+uint(os.Getpid()%1000), "replica server id, unique among the server's replicas")
	start := fs.String("start", "current", "current, earliest, gtid:SET or FILE:POS")
	include := fs.String("include", "", "comma-separated db.table globs to show (default all)")
	exclude := fs.String("exclude", "", "comma-separated db.table globs to hide")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	fs.StringVar(&cfg.TLS.Mode, "tls-mode", "", "TLS to the server: verify-full, verify-ca, required or preferred (default: off, or verify-full when another -tls flag is set)")
	fs.StringVar(&cfg.TLS.CAFile, "tls-ca", "", "CA certificates (PEM) that signed the server's certificate (default: the system roots)")
	fs.StringVar(&cfg.TLS.CertFile, "tls-cert", "", "client certificate (PEM), with -tls-key")
	fs.StringVar(&cfg.TLS.KeyFile, "tls-key", "", "client key (PEM)")
	fs.StringVar(&cfg.TLS.ServerName, "tls-server-name", "", "name checked against the server's certificate (default: the host of -mysql)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Password = *password
	cfg.ServerID = uint32(*serverID)
	switch s := *start; {
	case s == "current" || s == "earliest":
		cfg.Start = s
	case strings.HasPrefix(s, "gtid:"):
		cfg.Start, cfg.StartGTID = "gtid", strings.TrimPrefix(s, "gtid:")
	default:
		file, pos, ok := strings.Cut(s, ":")
		var p uint32
		if _, err := fmt.Sscanf(pos, "%d", &p); !ok || err != nil || file == "" {
			fmt.Fprintf(stderr, "dbc peek: -start %q: want current, earliest, gtid:SET or FILE:POS\n", s)
			return 2
		}
		cfg.Start, cfg.StartFile, cfg.StartPos = "file", file, p
	}
	if *include != "" {
		cfg.Include = strings.Split(*include, ",")
	}
	if *exclude != "" {
		cfg.Exclude = strings.Split(*exclude, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := mysqlbinlog.Peek(ctx, cfg, stdout); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "dbc peek: %v\n", err)
		return 1
	}
	return 0
}
