package funnel

import (
	"time"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds Funnel to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "Funnel", Kind: engine.KindFilter,
		Summary: "Dimensional funnel analysis: per user, ordered action steps within a time limit (event time); conversion counts per step, per interval and per dimension value, emitted as summary packets and queryable.",
		Fields: []engine.Field{
			{Name: "user", Type: engine.TypeString, Required: true, Doc: "Attribute holding the user id (string or number)."},
			{Name: "step_field", Type: engine.TypeString, Required: true, Doc: "Attribute holding the action (e.g. event, path)."},
			{Name: "steps", Type: engine.TypeStrings, Required: true, Doc: "Ordered action values forming the funnel (at least 2, distinct)."},
			{Name: "within", Type: engine.TypeDuration, Default: 30 * time.Minute, HasRange: true, Min: 1, Max: float64(366 * 24 * time.Hour), Doc: "Every step must happen within this much event time after the first step (inclusive)."},
			{Name: "dimensions", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes of the first step's event (country, platform...) counted by value; at most 4."},
			{Name: "interval", Type: engine.TypeDuration, Default: time.Hour, HasRange: true, Min: float64(time.Second), Max: float64(366 * 24 * time.Hour), Doc: "Journeys are counted in the interval (aligned, event time) of their first step."},
			{Name: "lateness", Type: engine.TypeDuration, Default: 10 * time.Second, HasRange: true, Min: 0, Max: float64(24 * time.Hour), Doc: "How far behind the newest event time events are still accepted (and put in order)."},
			{Name: "time_field", Type: engine.TypeString, Default: "", Doc: "Attribute holding the event time (empty: the packet's time, as set by ParseFilter)."},
			{Name: "time_layout", Type: engine.TypeString, Default: "rfc3339", Doc: "Layout of time_field: rfc3339, unix, unix_ms, unix_us, unix_ns or a Go layout (UTC unless it has a zone)."},
			{Name: "max_users", Type: engine.TypeInt, Default: int64(100000), HasRange: true, Min: 1, Max: 1 << 30, Doc: "Journeys in progress kept at most; beyond, the oldest is ended (counted as evicted)."},
			{Name: "max_pending", Type: engine.TypeInt, Default: int64(100000), HasRange: true, Min: 1, Max: 1 << 30, Doc: "Events held for ordering at most; beyond, the oldest are applied early (later events older than them become late)."},
			{Name: "max_dimension_values", Type: engine.TypeInt, Default: int64(100), HasRange: true, Min: 1, Max: 1 << 20, Doc: "Distinct values counted per dimension; further values are counted as \"_other\"."},
			{Name: "keep", Type: engine.TypeInt, Default: int64(48), HasRange: true, Min: 1, Max: 100000, Doc: "Finished intervals kept for queries."},
			{Name: "tick", Type: engine.TypeDuration, Default: time.Second, Doc: "How often finished intervals are emitted."},
		},
		NewFilter: newFilter,
	})
}
