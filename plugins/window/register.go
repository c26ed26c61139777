package window

import (
	"time"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds WindowAlarm to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "WindowAlarm", Kind: engine.KindFilter,
		Summary: "Sliding event-time windows per group (count/sum/mean/min/max/stddev/percentiles) with threshold and relative-change rules; alerts to log, stdout, webhook, batched email with quiet hours, and downstream.",
		Fields: []engine.Field{
			{Name: "group_by", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes forming the group key (empty: one group)."},
			{Name: "field", Type: engine.TypeString, Default: "", Doc: "Numeric attribute for sum/mean/min/max/stddev/percentiles (empty: count only)."},
			{Name: "length", Type: engine.TypeDuration, Default: 5 * time.Minute, Doc: "Window length W (the key \"window\" is the engine's)."},
			{Name: "slide", Type: engine.TypeDuration, Default: time.Minute, Doc: "Slide S (W must be a multiple of S)."},
			{Name: "lateness", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "How far behind the newest event time a window stays open for late events."},
			{Name: "rules", Type: engine.TypeAny, Doc: "List of {name, metric (count, sum, mean, min, max, stddev, pNN), op (>, >=, <, <=) and threshold, or change (relative to the previous window: 0.5 = +50 %, -0.5 = -50 %), min_count, severity (info, warning, critical)}."},
			{Name: "suppress", Type: engine.TypeDuration, Default: 10 * time.Minute, Doc: "Repeated alerts of one rule and group are suppressed for this much event time."},
			{Name: "sinks", Type: engine.TypeAny, SecretKeys: []string{"email.password", "webhook.headers.*"}, Doc: "{log: bool (default true), stdout: bool, webhook: {url, timeout, headers}, email: {smtp, from, to, username, password, subject, interval, quiet_hours: {from: \"22:00\", to: \"07:00\", zone, min_severity}}, queue}."},
			{Name: "emit_alerts", Type: engine.TypeBool, Default: true, Doc: "Emit alerts downstream as packets (attributes type=alert, rule, severity, group, value; JSON payload)."},
			{Name: "emit_windows", Type: engine.TypeBool, Default: false, Doc: "Emit one summary packet per group and window (type=window, count, sum, mean, min, max, stddev, p50, p90, p99)."},
			{Name: "idle_advance", Type: engine.TypeDuration, Default: time.Duration(0), Doc: "Live only: advance event time by wall time after this long without events (0: never)."},
			{Name: "tick", Type: engine.TypeDuration, Default: time.Second, Doc: "How often alerts are emitted downstream."},
		},
		NewFilter: newFilter,
	})
}
