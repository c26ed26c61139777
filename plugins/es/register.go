package es

import (
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/plugins/tlsconf"
)

func init() { Register(engine.Default) }

// Register adds ESOutput to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "ESOutput", Kind: engine.KindOutput,
		Summary: "Elasticsearch/OpenSearch bulk API (NDJSON, gzip): per-item results, retries only 429/5xx items, permanent item failures to dead_letter, ids from the source position (replays do not duplicate), index from a template.",
		Fields: []engine.Field{
			{Name: "urls", Type: engine.TypeStrings, Required: true, Doc: "Cluster nodes (http://host:9200); requests rotate to the next node after a failure."},
			{Name: "index", Type: engine.TypeString, Required: true, Doc: "Index name template: text, %{+2006.01.02} (event time, UTC, Go layout) and %{attribute}."},
			{Name: "index_attr", Type: engine.TypeString, Default: "_index", Doc: "Attribute that, when set, names the index (DecorateFilter's index name); not indexed as a field."},
			{Name: "action", Type: engine.TypeString, Default: "index", Enum: []string{"index", "create"}, Doc: "Bulk action: index overwrites the same id; create keeps the first (409 counts as success)."},
			{Name: "id", Type: engine.TypeString, Default: "position", Doc: "Document id: position (from the source position), none (cluster-chosen), or attr:<name>."},
			{Name: "id_attrs", Type: engine.TypeStrings, Default: []string{"file", "topic", "partition"}, Doc: "Attributes that, with the position token, name the source in position ids."},
			{Name: "document", Type: engine.TypeString, Default: "attrs", Enum: []string{"attrs", "payload", "both"}, Doc: "Document body: the attributes, the payload (a JSON object), or the attributes plus message."},
			{Name: "timestamp_field", Type: engine.TypeString, Default: "@timestamp", Doc: "Field holding the event time in attrs/both documents (empty: none)."},
			{Name: "exclude", Type: engine.TypeStrings, Default: []string{}, Doc: "Attributes not indexed."},
			{Name: "gzip", Type: engine.TypeBool, Default: true, Doc: "Compress request bodies."},
			{Name: "max_bytes", Type: engine.TypeSize, Default: int64(5 << 20), HasRange: true, Min: 1024, Max: 1 << 30, Doc: "Largest uncompressed bulk request; a batch is split into several."},
			{Name: "timeout", Type: engine.TypeDuration, Default: 30 * time.Second, Doc: "HTTP request timeout."},
			{Name: "username", Type: engine.TypeString, Default: "", Doc: "Basic auth user."},
			{Name: "password", Type: engine.TypeString, Default: "", Secret: true, Doc: "Basic auth password."},
			{Name: "api_key", Type: engine.TypeString, Default: "", Secret: true, Doc: "API key (the base64 \"encoded\" value Elasticsearch returns), sent as Authorization: ApiKey <api_key>; instead of username/password."},
			{Name: "pipeline", Type: engine.TypeString, Default: "", Doc: "Ingest pipeline."},
			tlsconf.Field(),
		},
		NewOutput: newOutput,
	})
}
