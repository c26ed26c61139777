package parse

import (
	"math"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

func floatBits(f float64) uint64 { return math.Float64bits(f) }

// Register adds ParseFilter to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "ParseFilter", Kind: engine.KindFilter,
		Summary: "Parses the payload (or an attribute) as JSON, logfmt or a regex with named groups into typed attributes; optional event time from a field; failures counted and tagged, dropped or dead-lettered.",
		Fields: []engine.Field{
			{Name: "format", Type: engine.TypeString, Required: true, Enum: []string{"json", "logfmt", "regex"}, Doc: "Input format."},
			{Name: "source", Type: engine.TypeString, Default: "", Doc: "String attribute to parse instead of the payload."},
			{Name: "pattern", Type: engine.TypeString, Default: "", Doc: "Regular expression (RE2) with named groups (?P<name>...), for format regex."},
			{Name: "prefix", Type: engine.TypeString, Default: "", Doc: "Prefix added to every parsed attribute name."},
			{Name: "types", Type: engine.TypeAny, Doc: "Map field -> int, float, bool or string: converts parsed fields (logfmt and regex give strings)."},
			{Name: "max_depth", Type: engine.TypeInt, Default: int64(16), HasRange: true, Min: 1, Max: 256, Doc: "Deepest JSON object nesting flattened."},
			{Name: "time_field", Type: engine.TypeString, Default: "", Doc: "Parsed field holding the event time; sets the packet's time."},
			{Name: "time_layout", Type: engine.TypeString, Default: "rfc3339", Doc: "rfc3339, unix, unix_ms, unix_us, unix_ns or a Go time layout (\"02/Jan/2006:15:04:05 -0700\")."},
			{Name: "time_zone", Type: engine.TypeString, Default: "UTC", Doc: "Zone of times without one (IANA name, or Local)."},
			{Name: "on_error", Type: engine.TypeString, Default: onErrorTag, Enum: []string{onErrorTag, onErrorDrop, onErrorDeadLetter}, Doc: "What a parse failure does: tag (attribute tag_field, packet goes on), drop (counted drop, reason parse_error), dead_letter (to the filter's dead_letter output; held if none)."},
			{Name: "tag_field", Type: engine.TypeString, Default: "parse_error", Doc: "Attribute set to the failure reason with on_error tag."},
		},
		NewFilter: newFilter,
	})
}
