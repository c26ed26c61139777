package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dbus-project/dbus/cluster"
	"github.com/go-zookeeper/zk"
	// Every built-in spec in engine.Default: the cluster commands refuse
	// configs and resources whose secret fields hold literal values.
	_ "github.com/dbus-project/dbus/plugins/all"
)

const clusterUsage = `usage: dbc [-zk host:port,...] [-root /dbus] [-json] <command> [args]

commands:
  clusters                                   list clusters
  members   -cluster C                       live members (leader marked, weight, resources)
  resources -cluster C                       resources with owner, epoch and checkpoint lag
  resources add -cluster C -id ID -input NAME [-config '{"k":"v"}']
  resources add -cluster C -file F.json      many at once: [{"id", "input", "config"}, ...]
  resources remove -cluster C -id ID [-purge]
  rebalance -cluster C                       ask the leader to recompute the assignment
  checkpoints -cluster C                     every resource's checkpoint
  config push -cluster C -file F [-comment S]
  config history -cluster C
  config show -cluster C [-version N]
  config diff -cluster C [-from N] [-to M]   (default: previous -> newest)

ZooKeeper servers come from -zk or DBUS_ZK (default 127.0.0.1:2181).
With cluster.auth set on the members, authenticate as they do:
  -auth-user USER -auth-password '${cred:NAME}' [-credentials FILE]
(the password is resolved from DBUS_CRED_<NAME> or the credentials file;
also DBUS_ZK_AUTH_USER, DBUS_ZK_AUTH_PASSWORD, DBUS_CREDENTIALS_FILE).
Credentials never go into ZooKeeper: write "${cred:NAME}" in resource configs.
`

// runCluster implements the dbc cluster sub-commands (clusters,
// members, resources, rebalance, checkpoints, config) over package
// cluster's Admin: args are the command line after "dbc" (after "dbc
// cluster" for the explicit form), global flags first. It returns the
// exit status.
func runCluster(args []string, stdout, stderr io.Writer) int {
	g := flag.NewFlagSet("dbc", flag.ContinueOnError)
	g.SetOutput(stderr)
	g.Usage = func() { fmt.Fprint(stderr, clusterUsage) }
	zkFlag := g.String("zk", envOr("DBUS_ZK", "127.0.0.1:2181"), "ZooKeeper servers, comma-separated")
	root := g.String("root", cluster.DefaultRoot, "znode root")
	asJSON := g.Bool("json", false, "print JSON")
	timeout := g.Duration("timeout", 10*time.Second, "connect timeout")
	authUser := g.String("auth-user", os.Getenv("DBUS_ZK_AUTH_USER"), "ZooKeeper digest auth user (the members' cluster.auth.user)")
	authPass := g.String("auth-password", os.Getenv("DBUS_ZK_AUTH_PASSWORD"), "its password as a credential reference, \"${cred:NAME}\"")
	credFile := g.String("credentials", os.Getenv("DBUS_CREDENTIALS_FILE"), "credentials file resolving ${cred:NAME}")
	if err := g.Parse(args); err != nil {
		return 2
	}
	rest := g.Args()
	if len(rest) == 0 {
		g.Usage()
		return 2
	}
	cmd, rest := rest[0], rest[1:]
	sub := ""
	if (cmd == "resources" || cmd == "config") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("dbc "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	clusterName := fs.String("cluster", "", "cluster name")
	id := fs.String("id", "", "resource id")
	input := fs.String("input", "", "input name in the pipeline config")
	conf := fs.String("config", "", "resource config as a JSON object")
	purge := fs.Bool("purge", false, "also delete the checkpoint")
	file := fs.String("file", "", "config file to push")
	comment := fs.String("comment", "", "comment of a pushed config")
	version := fs.Int("version", 0, "config version (0: newest)")
	from := fs.Int("from", 0, "diff from version (0: the one before -to)")
	to := fs.Int("to", 0, "diff to version (0: newest)")
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	fail := func(err error) int {
		if errors.Is(err, zk.ErrNoAuth) {
			err = fmt.Errorf("%w: the cluster's znodes are protected (cluster.auth): pass -auth-user and -auth-password '${cred:NAME}' as the members use", err)
		}
		fmt.Fprintf(stderr, "dbc %s: %v\n", cmd, err)
		return 1
	}
	needCluster := func() error {
		if *clusterName == "" {
			return fmt.Errorf("-cluster is required")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+time.Second)
	defer cancel()
	ao := cluster.AdminOptions{Root: *root, ConnectTimeout: *timeout}
	if *authUser != "" || *authPass != "" {
		if *authUser == "" || !cluster.IsCredentialRef(*authPass) {
			return fail(errors.New(`-auth-user and -auth-password go together, and the password must be a credential reference like "${cred:zk-dbus}" (never a literal on the command line)`))
		}
		creds, err := cluster.LoadCredentials(*credFile)
		if err != nil {
			return fail(err)
		}
		ao.Auth, ao.Credentials = &cluster.AuthConfig{User: *authUser, Password: *authPass}, creds
	}
	a, err := cluster.Dial(ctx, strings.Split(*zkFlag, ","), ao)
	if err != nil {
		return fail(err)
	}
	defer a.Close()
	out := func(v any, table func(w *tabwriter.Writer)) int {
		if *asJSON {
			fmt.Fprintln(stdout, clusterJSON(v))
			return 0
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		table(w)
		w.Flush()
		return 0
	}
	if cmd != "clusters" {
		if err := needCluster(); err != nil {
			return fail(err)
		}
	}
	switch cmd + " " + sub {
	case "clusters ":
		cs, err := a.Clusters()
		if err != nil {
			return fail(err)
		}
		return out(cs, func(w *tabwriter.Writer) {
			for _, c := range cs {
				fmt.Fprintln(w, c)
			}
		})
	case "members ":
		ms, err := a.Members(*clusterName)
		if err != nil {
			return fail(err)
		}
		return out(ms, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "MEMBER\tLEADER\tWEIGHT\tADMIN\tRUNNING\tOWNED\tFAILED\tCONFIG")
			for _, m := range ms {
				lead := ""
				if m.Leader {
					lead = "*"
				}
				conf := "file"
				if m.Config > 0 {
					conf = fmt.Sprintf("v%d", m.Config)
				}
				if m.ConfigError != "" {
					conf += " (" + m.ConfigError + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\n", m.Name, lead, m.Weight, m.Admin, len(m.Running), strings.Join(m.Owned, ","), len(m.Failed), conf)
			}
		})
	case "resources ":
		rs, err := a.Resources(*clusterName)
		if err != nil {
			return fail(err)
		}
		return out(rs, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "RESOURCE\tINPUT\tOWNER\tEPOCH\tSTATE\tCHECKPOINT LAG")
			for _, r := range rs {
				state := "running"
				switch {
				case r.Owner == "":
					state = "unassigned"
				case r.Releasing:
					state = "moving to " + r.Target
				case r.Failed != "":
					state = "failed: " + oneLine(r.Failed, 100)
				}
				lag := "-"
				if !r.CheckpointTime.IsZero() {
					lag = r.Lag.String()
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Input, r.Owner, r.Epoch, state, lag)
			}
		})
	case "resources add":
		if *file != "" {
			// Bulk: a JSON array of {"id", "input", "config"}.
			data, err := os.ReadFile(*file)
			if err != nil {
				return fail(err)
			}
			var specs []cluster.ResourceSpec
			if err := json.Unmarshal(data, &specs); err != nil {
				return fail(fmt.Errorf("%s: want a JSON array of {\"id\", \"input\", \"config\"}: %v", *file, err))
			}
			n, err := a.AddResources(*clusterName, specs)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "%d resources added to cluster %s\n", n, *clusterName)
			break
		}
		spec := cluster.ResourceSpec{ID: *id, Input: *input}
		if *conf != "" {
			if err := json.Unmarshal([]byte(*conf), &spec.Config); err != nil {
				return fail(fmt.Errorf("-config: want a JSON object: %v", err))
			}
		}
		if err := a.AddResource(*clusterName, spec); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "resource %s added to cluster %s\n", *id, *clusterName)
	case "resources remove":
		if err := a.RemoveResource(*clusterName, *id, *purge); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "resource %s removed from cluster %s\n", *id, *clusterName)
	case "rebalance ":
		if err := a.Rebalance(*clusterName); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "rebalance of cluster %s requested\n", *clusterName)
	case "checkpoints ":
		cps, err := a.Checkpoints(*clusterName)
		if err != nil {
			return fail(err)
		}
		return out(cps, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "RESOURCE\tSTREAM\tOFFSET\tTOKEN\tBY\tEPOCH\tTIME")
			for _, id := range slices.Sorted(maps.Keys(cps)) {
				rec := cps[id]
				for _, k := range slices.Sorted(maps.Keys(rec.Checkpoints)) {
					cp := rec.Checkpoints[k]
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", id, k, cp.Offset, cp.Token, rec.Member, rec.Epoch, rec.Time.Format(time.RFC3339))
				}
			}
		})
	case "config push":
		if *file == "" {
			return fail(fmt.Errorf("-file is required"))
		}
		data, err := os.ReadFile(*file)
		if err != nil {
			return fail(err)
		}
		v, err := a.PushConfig(*clusterName, data, *comment)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "cluster %s config version %d pushed\n", *clusterName, v)
	case "config history":
		hs, err := a.ConfigHistory(*clusterName)
		if err != nil {
			return fail(err)
		}
		return out(hs, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "VERSION\tTIME\tSIZE")
			for _, h := range hs {
				fmt.Fprintf(w, "%d\t%s\t%d\n", h.Version, h.Time.Format(time.RFC3339), h.Size)
			}
		})
	case "config show":
		_, data, err := a.Config(*clusterName, *version)
		if err != nil {
			return fail(err)
		}
		stdout.Write(data)
	case "config diff":
		t := *to
		if t == 0 {
			v, _, err := a.Config(*clusterName, 0)
			if err != nil {
				return fail(err)
			}
			t = v
		}
		f := *from
		if f == 0 {
			f = t - 1
		}
		if f < 1 {
			return fail(fmt.Errorf("nothing to diff: version %d is the first", t))
		}
		d, err := a.DiffConfig(*clusterName, f, t)
		if err != nil {
			return fail(err)
		}
		fmt.Fprint(stdout, d)
	default:
		fmt.Fprintf(stderr, "dbc: unknown command %q\n", strings.TrimSpace(cmd+" "+sub))
		fmt.Fprint(stderr, clusterUsage)
		return 2
	}
	return 0
}

// oneLine returns s on one line, cut to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

// clusterJSON renders v for -json.
func clusterJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf(`{"error": %q}`, err.Error())
	}
	return string(b)
}
