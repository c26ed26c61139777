package cardinality

import (
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/cardinality/hll"
)

func init() { Register(engine.Default) }

// Register adds Cardinality to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "Cardinality", Kind: engine.KindFilter,
		Summary: "Distinct counts (HyperLogLog, sparse+dense, mergeable) of an id per key and per event-time bucket (hour/day/week/month/total), emitted periodically, queryable, saved to a state file.",
		Fields: []engine.Field{
			{Name: "field", Type: engine.TypeString, Required: true, Doc: "Attribute holding the id (user id, IP...)."},
			{Name: "key_by", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes forming the key (empty: one key)."},
			{Name: "periods", Type: engine.TypeStrings, Default: []string{"day", "month"}, Doc: "Buckets: hour, day, week, month, total."},
			{Name: "precision", Type: engine.TypeInt, Default: int64(hll.DefaultPrecision), HasRange: true, Min: 4, Max: 18, Doc: "HyperLogLog precision p (error 1.04/sqrt(2^p); 16: 0.41 %, 64 KiB per dense sketch; small sets stay sparse)."},
			{Name: "keep", Type: engine.TypeInt, Default: int64(3), HasRange: true, Min: 1, Max: 10000, Doc: "Buckets kept per period."},
			{Name: "time_zone", Type: engine.TypeString, Default: "UTC", Doc: "Zone of calendar buckets."},
			{Name: "emit_interval", Type: engine.TypeDuration, Default: time.Minute, Doc: "How often changed counts are emitted."},
			{Name: "state_dir", Type: engine.TypeString, Default: "", Path: true, Writes: engine.WritesDir, Doc: "Directory of the state file (empty: counts are not persisted)."},
			{Name: "save_interval", Type: engine.TypeDuration, Default: time.Minute, Doc: "How often the state file is written (and at shutdown)."},
		},
		NewFilter: newFilter,
	})
}
