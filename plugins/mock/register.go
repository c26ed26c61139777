package mock

import (
	"time"

	"github.com/dbus-project/dbus/engine"
)

func init() { Register(engine.Default) }

// Register adds MockInput, MockFilter and MockOutput to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "MockInput", Kind: engine.KindInput, Distributed: true,
		Summary: "Deterministic packet generator: payload \"<stream>:<seq>\" padded to a size, optional keys, rate limit, count; resumes from its checkpoint.",
		Fields: []engine.Field{
			{Name: "count", Type: engine.TypeInt, Default: int64(0), Doc: "Packets per stream, 0 for unlimited.", HasRange: true, Min: 0, Max: 1 << 62},
			{Name: "rate", Type: engine.TypeInt, Default: int64(0), Doc: "Packets per second, 0 for as fast as possible.", HasRange: true, Min: 0, Max: 1 << 40},
			{Name: "payload", Type: engine.TypeSize, Default: int64(128), Doc: "Payload size in bytes.", HasRange: true, Min: 1, Max: 64 << 20},
			{Name: "keys", Type: engine.TypeInt, Default: int64(0), Doc: "Key cardinality (key \"k<seq mod keys>\"), 0 for no key.", HasRange: true, Min: 0, Max: 1 << 40},
			{Name: "streams", Type: engine.TypeInt, Default: int64(1), Doc: "Number of streams (each with its own sequence and checkpoint).", HasRange: true, Min: 1, Max: 4096},
		},
		NewInput: newInput,
	})
	reg.MustRegister(engine.Spec{
		Class: "MockFilter", Kind: engine.KindFilter,
		Summary: "Test filter: pass, modify (copy-on-write append of a suffix), drop, emit N derived packets, or fail; optional drop ratio.",
		Fields: []engine.Field{
			{Name: "mode", Type: engine.TypeString, Default: "pass", Enum: []string{"pass", "modify", "drop", "emit", "fail"}, Doc: "What to do with each packet."},
			{Name: "drop_ratio", Type: engine.TypeFloat, Default: 0.0, HasRange: true, Min: 0, Max: 1, Doc: "Fraction of packets dropped (deterministic: one in every 1/ratio)."},
			{Name: "emit", Type: engine.TypeInt, Default: int64(2), HasRange: true, Min: 0, Max: 1024, Doc: "Derived packets per input packet in mode emit."},
			{Name: "suffix", Type: engine.TypeString, Default: "!", Doc: "Bytes appended in mode modify."},
		},
		NewFilter: newFilter,
	})
	reg.MustRegister(engine.Spec{
		Class: "MockOutput", Kind: engine.KindOutput,
		Summary: "Acks on receipt; optional latency per batch and failure injection.",
		Fields: []engine.Field{
			{Name: "latency", Type: engine.TypeDuration, Default: time.Duration(0), Doc: "Delay before each batch is acked."},
			{Name: "fail_ratio", Type: engine.TypeFloat, Default: 0.0, HasRange: true, Min: 0, Max: 1, Doc: "Fraction of packets whose write fails (deterministic)."},
			{Name: "fail_first", Type: engine.TypeInt, Default: int64(0), HasRange: true, Min: 0, Max: 1 << 30, Doc: "Fail the first N writes entirely."},
			{Name: "fail_permanent", Type: engine.TypeBool, Default: false, Doc: "Injected failures are permanent (engine.Permanent: dead-lettered at once) instead of retryable."},
		},
		NewOutput: newOutput,
	})
}
