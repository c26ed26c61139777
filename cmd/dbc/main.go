package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: dbc [-addr HOST:PORT|https://HOST:PORT] [-token T | -token-file F] [-cacert F] [-cert F -key F] [-json] COMMAND [ARGS]

commands (one dbusd, via its admin API):
  status                 version, uptime, config generation, last reload
  plugins [CLASS]        registered plugin classes, or one class's fields
  dag                    nodes with rates and drops, and edges
  queues                 ring depths, pools, in-flight windows
  checkpoints            committed checkpoints
  metrics [PLUGIN]       plugins' own series: Kafka mirror lag and latency per partition, consumer lag...
  tap NODE [-max N] [-every N] [-payload-bytes N] [-timeout D]
  pause INPUT | resume INPUT
  query NAME [K=V ...]   state of a queryable plugin (Cardinality, Funnel), as JSON
  snapshot INPUT [DB.TABLE ...]
                         re-read tables of a binlog input while it streams; none: progress
  peek -mysql HOST:PORT [-user U] [-start current|earliest|gtid:SET|FILE:POS]
                         tail a MySQL/MariaDB binlog: decoded rows and a rate line
  reload [FILE|-]        apply FILE (- for stdin); none: dbusd re-reads its file

cluster commands (ZooKeeper): clusters, members, resources, rebalance, config,
  and checkpoints with -zk; or "dbc cluster COMMAND ..." (dbc cluster -h)

flags:
`

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// clusterCommands are handed to package cluster whole.
var clusterCommands = map[string]bool{"clusters": true, "members": true, "resources": true, "rebalance": true, "config": true}

// wantsCluster reports whether args select a cluster command: an explicit
// "cluster", a ZooKeeper flag, or a cluster-only command word.
func wantsCluster(args []string) (rest []string, ok bool) {
	if len(args) > 0 && args[0] == "cluster" {
		return args[1:], true
	}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "zk" || name == "root") {
			return args, true
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
	}
	return args, false
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if rest, ok := wantsCluster(args); ok {
		return runCluster(rest, stdout, stderr)
	}
	fs := flag.NewFlagSet("dbc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envOr("DBC_ADDR", "127.0.0.1:8714"), "dbusd admin `address` (host:port or URL)")
	token := fs.String("token", os.Getenv("DBC_TOKEN"), "bearer `token` for the admin API")
	tokenFile := fs.String("token-file", "", "read the token from `file`")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of tables")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout (tap: see its -timeout)")
	var tc tlsFlags
	fs.StringVar(&tc.ca, "cacert", os.Getenv("DBC_CACERT"), "CA `file` (PEM) of an https:// admin API's certificate")
	fs.StringVar(&tc.cert, "cert", os.Getenv("DBC_CERT"), "client certificate `file` (PEM) for an admin API with client_ca_file")
	fs.StringVar(&tc.key, "key", os.Getenv("DBC_KEY"), "client key `file` (PEM) for -cert")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	cmd, cargs := rest[0], rest[1:]
	if cmd == "peek" {
		return runPeek(cargs, stdout, stderr)
	}
	if cmd == "cluster" {
		return runCluster(cargs, stdout, stderr)
	}
	if clusterCommands[cmd] {
		return runCluster(args, stdout, stderr)
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "dbc: -token-file: %v\n", err)
			return 2
		}
		*token = strings.TrimSpace(string(b))
	}
	c, err := newClient(*addr, *token, *timeout)
	if err == nil {
		err = c.useTLS(tc)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dbc: %v\n", err)
		return 2
	}
	cl := &console{c: c, json: *asJSON, stdin: stdin, out: stdout, errw: stderr}
	var cerr error
	switch cmd {
	case "status":
		cerr = cl.status(cargs)
	case "plugins":
		cerr = cl.plugins(cargs)
	case "dag":
		cerr = cl.dag(cargs)
	case "queues":
		cerr = cl.queues(cargs)
	case "checkpoints":
		cerr = cl.checkpoints(cargs)
	case "tap":
		cerr = cl.tap(cargs)
	case "pause":
		cerr = cl.pause(cargs, true)
	case "resume":
		cerr = cl.pause(cargs, false)
	case "reload":
		cerr = cl.reload(cargs)
	case "query":
		cerr = cl.query(cargs)
	case "snapshot":
		cerr = cl.snapshot(cargs)
	case "metrics":
		cerr = cl.metrics(cargs)
	case "help", "-h":
		fs.Usage()
		return 0
	default:
		fmt.Fprintf(stderr, "dbc: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	switch {
	case cerr == nil:
		return 0
	case errors.Is(cerr, errUsage):
		fmt.Fprintf(stderr, "dbc %s: %v\n", cmd, cerr)
		return 2
	}
	fmt.Fprintf(stderr, "dbc %s: %v\n", cmd, cerr)
	return 1
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
