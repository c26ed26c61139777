package decorate

import (
	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds DecorateFilter to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "DecorateFilter", Kind: engine.KindFilter,
		Summary: "GeoIP country/city, rename/delete/normalise fields, numeric range buckets, currency conversion by a rate table, time-based index name.",
		Fields: []engine.Field{
			{Name: "geoip", Type: engine.TypeAny, PathKeys: []string{"db"}, Doc: "{db: path, format: csv|mmdb (MaxMind DB: GeoIP2/GeoLite2 Country or City), field: ip, country: geo_country, city: geo_city, language: en (mmdb city names)}."},
			{Name: "rename", Type: engine.TypeAny, Doc: "Map old -> new attribute name."},
			{Name: "delete", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes removed."},
			{Name: "lowercase", Type: engine.TypeStrings, Default: []string{}, Doc: "String attributes lower-cased (ASCII)."},
			{Name: "trim", Type: engine.TypeStrings, Default: []string{}, Doc: "String attributes trimmed of surrounding white space."},
			{Name: "buckets", Type: engine.TypeAny, Doc: "List of {field, target (default <field>_bucket), bounds: [ascending numbers]}: label \"<b0\", \"b0-b1\", ..., \">=bn\"."},
			{Name: "currency", Type: engine.TypeAny, Doc: "{amount, currency (attribute with the code), default (code when absent), target (default <amount>_converted), rates: {USD: 1, EUR: 1.08}}."},
			{Name: "index", Type: engine.TypeAny, Doc: "{prefix: \"logs-\", period: day|week|month, target: _index}: index name from the event time (UTC): logs-2024.05.01, logs-2024.w18, logs-2024.05."},
		},
		NewFilter: newFilter,
	})
}
