package aggregate

import (
	"time"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds Aggregate to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "Aggregate", Kind: engine.KindFilter,
		Summary: "Per event-time interval and key, one summary packet (count, sum, mean, min, max, stddev, p50/p90/p99) instead of every raw event.",
		Fields: []engine.Field{
			{Name: "group_by", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes forming the key."},
			{Name: "field", Type: engine.TypeString, Default: "", Doc: "Numeric attribute summarised (empty: count only)."},
			{Name: "interval", Type: engine.TypeDuration, Default: time.Minute, Doc: "Interval length (tumbling, aligned in event time)."},
			{Name: "lateness", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "How long after its end (in event time) an interval stays open."},
			{Name: "tick", Type: engine.TypeDuration, Default: time.Second, Doc: "How often closed intervals are emitted."},
		},
		NewFilter: newFilter,
	})
}
