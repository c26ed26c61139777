package stream

import "github.com/dbus-project/dbus/engine"

func init() { Register(engine.Default) }

// Register adds StreamInput and StreamOutput to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "StreamInput", Kind: engine.KindInput,
		Summary: "Lines from stdin, a file (resumes at its byte-offset checkpoint) or a command's stdout; stops at end of input.",
		Fields: []engine.Field{
			{Name: "source", Type: engine.TypeString, Default: "stdin", Enum: []string{"stdin", "file", "command"}, Doc: "Where lines come from."},
			{Name: "path", Type: engine.TypeString, Path: true, Doc: "File to read (source file)."},
			{Name: "command", Type: engine.TypeString, Command: true, Doc: "Shell command whose stdout is read (source command; a config posted to the admin API may run it only with admin.allow_commands or as the config file has it)."},
			{Name: "max_line", Type: engine.TypeSize, Default: int64(16 << 20), HasRange: true, Min: 1, Max: 1 << 30, Doc: "Longest accepted line; a longer one stops the input with an error."},
		},
		NewInput: newInput,
	})
	reg.MustRegister(engine.Spec{
		Class: "StreamOutput", Kind: engine.KindOutput,
		Summary: "One line per packet to stdout or a file (appended); a batch is acked once written and flushed (fsynced with sync).",
		Fields: []engine.Field{
			{Name: "path", Type: engine.TypeString, Default: "-", Path: true, Writes: engine.WritesFile, Doc: "File to append to; - for stdout."},
			{Name: "format", Type: engine.TypeString, Default: "raw", Enum: []string{"raw", "json"}, Doc: "raw: the payload; json: payload, key, ts and attributes as a JSON object per line (bytes that are not UTF-8 as base64 in payload_b64, key_b64, {\"b64\": ...})."},
			{Name: "framing", Type: engine.TypeString, Default: "line", Enum: []string{"line", "length"}, Doc: "raw format: line (payload + newline; a payload containing a newline fails, permanently) or length (4-byte big-endian length + payload: any bytes)."},
			{Name: "sync", Type: engine.TypeBool, Default: false, Doc: "fsync the file before acking each batch."},
		},
		NewOutput: newOutput,
	})
}
