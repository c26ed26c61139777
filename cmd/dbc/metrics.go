package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dbus-project/dbus/engine/admin"
)

// metrics prints the series plugins report themselves (MetricsReporter,
// also on /metrics): a Kafka mirror's replication lag and end-to-end
// latency per partition, a KafkaInput's consumer lag, and so on. With a
// plugin name, only that plugin's.
func (cl *console) metrics(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("%w: metrics [PLUGIN]", errUsage)
	}
	var d admin.DAG
	b, err := cl.c.getJSON("/api/v1/dag", &d)
	if err != nil || cl.json {
		return orRaw(cl, b, err)
	}
	w := cl.table()
	fmt.Fprintln(w, "PLUGIN\tMETRIC\tLABELS\tVALUE")
	found := false
	for _, n := range d.Nodes {
		if len(args) == 1 && n.Name != args[0] {
			continue
		}
		found = true
		for _, m := range n.Metrics {
			var labels []string
			for i := 0; i+1 < len(m.Labels); i += 2 {
				labels = append(labels, m.Labels[i]+"="+m.Labels[i+1])
			}
			l := strings.Join(labels, ",")
			if l == "" {
				l = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Name, strings.TrimPrefix(m.Name, "dbus_"), l, strconv.FormatFloat(m.Value, 'f', -1, 64))
		}
	}
	if !found {
		return fmt.Errorf("no plugin %q", args[0])
	}
	return w.Flush()
}
