package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dbus-project/dbus/cluster"
	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/admin"
)

// console runs the single-node commands.
type console struct {
	c     *client
	json  bool
	stdin io.Reader
	out   io.Writer
	errw  io.Writer
}

func (cl *console) raw(b []byte) error {
	_, err := cl.out.Write(b)
	return err
}

func (cl *console) table() *tabwriter.Writer {
	return tabwriter.NewWriter(cl.out, 0, 4, 2, ' ', 0)
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected arguments %s", errUsage, strings.Join(args, " "))
	}
	return nil
}

func (cl *console) status(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var st admin.Status
	b, err := cl.c.getJSON("/api/v1/status", &st)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	w := cl.table()
	fmt.Fprintf(w, "version\t%s (%s)\n", st.Version, st.GoVersion)
	fmt.Fprintf(w, "uptime\t%s (since %s, pid %d)\n", (time.Duration(st.UptimeSeconds) * time.Second).String(), st.StartedAt.Format(time.RFC3339), st.PID)
	fmt.Fprintf(w, "generation\t%d\n", st.Generation)
	if st.ConfigFile != "" {
		fmt.Fprintf(w, "config\t%s\n", st.ConfigFile)
	}
	fmt.Fprintf(w, "plugins\t%d\n", st.Plugins)
	fmt.Fprintf(w, "in flight\t%d\n", st.InFlight)
	fmt.Fprintf(w, "features\ttap=%v pprof=%v watch=%v\n", st.Tap, st.Pprof, st.Watch)
	if st.Reloading {
		fmt.Fprintf(w, "reloading\tyes\n")
	}
	if r := st.LastReload; r != nil {
		res := fmt.Sprintf("applied, generation %d -> %d", r.PreviousGeneration, r.Generation)
		if !r.Applied {
			res = "rejected: " + r.Error
		}
		fmt.Fprintf(w, "last reload\t%s by %s: %s\n", r.At.Format(time.RFC3339), r.Source, res)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var cs struct {
		Cluster *cluster.MemberState `json:"cluster"`
	}
	if json.Unmarshal(b, &cs) == nil && cs.Cluster != nil {
		return cl.memberStatus(cs.Cluster)
	}
	return nil
}

// memberStatus prints a cluster member's state (dbc status against a
// member's admin address).
func (cl *console) memberStatus(st *cluster.MemberState) error {
	w := cl.table()
	leader := st.Leader
	if st.IsLeader {
		leader += " (this member)"
	}
	fmt.Fprintf(w, "cluster\t%s, member %s, %d members, leader %s\n", st.Cluster, st.Member, st.Members, leader)
	fmt.Fprintf(w, "assignment\tepoch %d\n", st.Epoch)
	fmt.Fprintf(w, "session\t%s, lease %.1fs left\n", st.Session, st.LeaseSeconds)
	if st.ConfigError != "" {
		fmt.Fprintf(w, "pushed config\tversion %d applied; newest rejected: %s\n", st.Config, st.ConfigError)
	} else if st.Config > 0 {
		fmt.Fprintf(w, "pushed config\tversion %d\n", st.Config)
	}
	fmt.Fprintf(w, "resources\t%d owned\n", len(st.Resources))
	if err := w.Flush(); err != nil {
		return err
	}
	if len(st.Resources) == 0 {
		return nil
	}
	w = cl.table()
	fmt.Fprintln(w, "RESOURCE\tEPOCH\tSTATE")
	for _, r := range st.Resources {
		state := r.State
		if r.Error != "" {
			state += ": " + strings.Join(strings.Fields(r.Error), " ")
		}
		fmt.Fprintf(w, "%s\t%d\t%s\n", r.ID, r.Epoch, state)
	}
	return w.Flush()
}

func orRaw(cl *console, b []byte, err error) error {
	if err != nil {
		return err
	}
	return cl.raw(b)
}

func (cl *console) plugins(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: plugins [CLASS]", errUsage)
	}
	if len(args) == 1 {
		var sp admin.SpecView
		b, err := cl.c.getJSON("/api/v1/plugins/"+url.PathEscape(args[0]), &sp)
		if err != nil || cl.json {
			return orRaw(cl, b, err)
		}
		fmt.Fprintf(cl.out, "%s (%s): %s\n", sp.Class, sp.Kind, sp.Summary)
		if len(sp.Instances) > 0 {
			fmt.Fprintf(cl.out, "running as: %s\n", strings.Join(sp.Instances, ", "))
		}
		w := cl.table()
		fmt.Fprintln(w, "FIELD\tTYPE\tDEFAULT\tDOC")
		for _, f := range sp.Fields {
			def := ""
			if f.Default != nil {
				def = fmt.Sprint(f.Default)
			}
			if f.Required {
				def = "(required)"
			}
			doc := f.Doc
			if len(f.Enum) > 0 {
				doc += " One of: " + strings.Join(f.Enum, ", ") + "."
			}
			if f.Min != nil && f.Max != nil {
				doc += fmt.Sprintf(" Range [%g, %g].", *f.Min, *f.Max)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Name, f.Type, def, strings.TrimSpace(doc))
		}
		return w.Flush()
	}
	var pl struct{ Plugins []admin.SpecView }
	b, err := cl.c.getJSON("/api/v1/plugins", &pl)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	w := cl.table()
	fmt.Fprintln(w, "CLASS\tKIND\tRUNNING\tSUMMARY")
	for _, p := range pl.Plugins {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Class, p.Kind, strings.Join(p.Instances, ","), p.Summary)
	}
	return w.Flush()
}

func (cl *console) dag(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var d admin.DAG
	// Two samples a second apart give rates.
	if _, err := cl.c.getJSON("/api/v1/dag", &d); err != nil {
		return err
	}
	if !cl.json {
		time.Sleep(time.Second)
	}
	b, err := cl.c.getJSON("/api/v1/dag", &d)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	fmt.Fprintf(cl.out, "generation %d\n", d.Generation)
	w := cl.table()
	fmt.Fprintln(w, "PLUGIN\tKIND\tCLASS\tIN/S\tOUT/S\tIN\tOUT\tDROPS\tFAILED\tQUEUE")
	for _, n := range d.Nodes {
		q := "-"
		if n.QueueCap > 0 {
			q = fmt.Sprintf("%d/%d", n.QueueLen, n.QueueCap)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%.0f\t%d\t%d\t%d\t%d\t%s\n", n.Name, n.Kind, n.Class, n.InRate, n.OutRate, n.In, n.Out, n.DropTotal, n.Failed, q)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, e := range d.Edges {
		arrow := "->"
		if e.Kind == "dead_letter" {
			arrow = "-> (dead letters)"
		}
		fmt.Fprintf(cl.out, "  %s %s %s\n", e.From, arrow, e.To)
	}
	return nil
}

func (cl *console) queues(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var q struct {
		InFlight int `json:"in_flight"`
		Nodes    []admin.QueueView
	}
	b, err := cl.c.getJSON("/api/v1/queues", &q)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	w := cl.table()
	fmt.Fprintln(w, "PLUGIN\tKIND\tQUEUE\tFILL\tPOOL FREE\tIN FLIGHT\tHELD\tSTATE")
	for _, n := range q.Nodes {
		queue, fill, pool, inflight := "-", "-", "-", "-"
		if n.QueueCap > 0 {
			queue, fill = fmt.Sprintf("%d/%d", n.QueueLen, n.QueueCap), fmt.Sprintf("%.0f%%", 100*n.Fill)
		}
		state := ""
		if n.Kind == engine.KindInput.String() {
			pool, inflight = fmt.Sprintf("%d/%d", n.PoolFree, n.PoolCap), strconv.Itoa(n.InFlight)
			state = "running"
			if n.Paused {
				state = "paused"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.Name, n.Kind, queue, fill, pool, inflight, n.Held, state)
	}
	fmt.Fprintf(w, "total in flight\t\t\t\t\t%d\t\t\n", q.InFlight)
	return w.Flush()
}

func (cl *console) checkpoints(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var cp struct {
		Inputs  []admin.InputCheckpoint
		Streams []struct {
			Stream string `json:"stream"`
			engine.Checkpoint
		}
	}
	b, err := cl.c.getJSON("/api/v1/checkpoints", &cp)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	w := cl.table()
	fmt.Fprintln(w, "INPUT\tOFFSET\tCOMMITTED\tAGE\tIN FLIGHT")
	for _, in := range cp.Inputs {
		at := "never"
		if in.CommittedAt != nil {
			at = in.CommittedAt.Format(time.RFC3339Nano)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\n", in.Name, in.Offset, at, (time.Duration(in.AgeSeconds*1e3) * time.Millisecond).String(), in.InFlight)
	}
	fmt.Fprintln(w, "\nSTREAM\tOFFSET\tTOKEN\t\t")
	sort.Slice(cp.Streams, func(i, j int) bool { return cp.Streams[i].Stream < cp.Streams[j].Stream })
	for _, s := range cp.Streams {
		fmt.Fprintf(w, "%s\t%d\t%s\t\t\n", s.Stream, s.Offset, s.Token)
	}
	return w.Flush()
}

// parseInterleaved parses flags that may come before or after positional
// arguments and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (cl *console) tap(args []string) error {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.SetOutput(cl.errw)
	max := fs.Int("max", 10, "packets to print")
	every := fs.Int("every", 1, "sample one packet in `N`")
	payload := fs.Int("payload-bytes", 256, "payload bytes shown per packet")
	timeout := fs.Duration("timeout", 30*time.Second, "stop after this long")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: tap NODE [-max N] [-every N] [-payload-bytes N] [-timeout D]", errUsage)
	}
	q := url.Values{}
	q.Set("max", strconv.Itoa(*max))
	q.Set("every", strconv.Itoa(*every))
	q.Set("payload_bytes", strconv.Itoa(*payload))
	q.Set("timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+10*time.Second)
	defer cancel()
	resp, err := cl.c.do(ctx, http.MethodGet, "/api/v1/tap/"+url.PathEscape(pos[0])+"?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if cl.json {
			fmt.Fprintf(cl.out, "%s\n", sc.Bytes())
			continue
		}
		var r engine.TapRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("bad tap record %q: %v", sc.Text(), err)
		}
		line := fmt.Sprintf("%s seq=%d size=%d", r.Node, r.Seq, r.Size)
		if r.Ts != 0 {
			line += " ts=" + time.Unix(0, r.Ts).UTC().Format(time.RFC3339Nano)
		}
		if r.Key != "" {
			line += fmt.Sprintf(" key=%q", r.Key)
		}
		keys := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			line += fmt.Sprintf(" %s=%q", k, r.Attrs[k])
		}
		fmt.Fprintf(cl.out, "%s payload=%q\n", line, r.Payload)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tap stream: %v", err)
	}
	if !cl.json {
		fmt.Fprintf(cl.errw, "%d packets\n", n)
	}
	return nil
}

func (cl *console) pause(args []string, pause bool) error {
	verb := "pause"
	if !pause {
		verb = "resume"
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: %s INPUT", errUsage, verb)
	}
	b, err := cl.c.call(http.MethodPost, "/api/v1/inputs/"+url.PathEscape(args[0])+"/"+verb, nil, "")
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	fmt.Fprintf(cl.out, "%s: %sd\n", args[0], verb)
	return nil
}

func (cl *console) reload(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: reload [FILE|-]", errUsage)
	}
	var body io.Reader
	if len(args) == 1 {
		var data []byte
		var err error
		if args[0] == "-" {
			data, err = io.ReadAll(cl.stdin)
		} else {
			data, err = os.ReadFile(args[0])
		}
		if err != nil {
			return fmt.Errorf("cannot read config: %v", err)
		}
		if len(strings.TrimSpace(string(data))) == 0 {
			return fmt.Errorf("%s is empty", args[0])
		}
		body = strings.NewReader(string(data))
	}
	b, err := cl.c.call(http.MethodPost, "/api/v1/reload", body, "application/yaml")
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	var res admin.ReloadResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	fmt.Fprintf(cl.out, "reloaded: generation %d (was %d)\n", res.Generation, res.PreviousGeneration)
	for _, w := range res.Warnings {
		fmt.Fprintf(cl.out, "warning: %s\n", w)
	}
	if len(res.Repaused) > 0 {
		fmt.Fprintf(cl.out, "paused again: %s\n", strings.Join(res.Repaused, ", "))
	}
	return nil
}

// query asks a running plugin's state (engine.Queryable): NAME k=v ...
// The answer is the plugin's JSON, printed as is.
func (cl *console) query(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || strings.Contains(args[0], "=") {
		return fmt.Errorf("%w: query NAME [KEY=VALUE ...]", errUsage)
	}
	q := url.Values{}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: query parameter %q: want KEY=VALUE", errUsage, a)
		}
		if q.Has(k) {
			return fmt.Errorf("%w: query parameter %q given twice", errUsage, k)
		}
		q.Set(k, v)
	}
	path := "/api/v1/plugins/" + url.PathEscape(args[0]) + "/query"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	b, err := cl.c.call(http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	return cl.raw(b)
}

// snapshot queues an ad hoc snapshot of tables on a MysqlbinlogInput
// (command "snapshot"), or shows its progress (no tables).
func (cl *console) snapshot(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: snapshot INPUT [DB.TABLE ...]", errUsage)
	}
	cmd := "snapshot"
	q := url.Values{}
	for _, a := range args[1:] {
		if !strings.Contains(a, ".") {
			return fmt.Errorf("%w: snapshot table %q: want DB.TABLE", errUsage, a)
		}
		q.Add("arg", a)
	}
	if len(args) == 1 {
		cmd = "snapshot-status"
	}
	path := "/api/v1/plugins/" + url.PathEscape(args[0]) + "/command/" + cmd
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	b, err := cl.c.call(http.MethodPost, path, nil, "")
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	return cl.raw(b)
}
