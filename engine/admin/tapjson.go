package admin

import (
	"slices"
	"strconv"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/jsonstr"
)

// appendTapLine appends one tap record as the stream sends it: an NDJSON
// line, or an SSE "packet" event. The JSON is what encoding/json would
// write for engine.TapRecord (same fields, order, omitempty, sorted attrs,
// invalid UTF-8 as U+FFFD), built with the project's one string escaper
// so that a record costs no allocation: handleTap reuses one buffer from
// bytebufferpool for the whole stream (TestAPITapLineAllocsZero).
func appendTapLine(dst []byte, r *engine.TapRecord, sse bool) []byte {
	if sse {
		dst = append(dst, "event: packet\ndata: "...)
	}
	dst = append(dst, `{"node":`...)
	dst = jsonstr.Append(dst, r.Node)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	if r.Ts != 0 {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, r.Ts, 10)
	}
	if r.Key != "" {
		dst = append(dst, `,"key":`...)
		dst = jsonstr.Append(dst, r.Key)
	}
	dst = append(dst, `,"payload":`...)
	dst = jsonstr.Append(dst, r.Payload)
	dst = append(dst, `,"size":`...)
	dst = strconv.AppendInt(dst, int64(r.Size), 10)
	if len(r.Attrs) > 0 {
		// Sorted like encoding/json; up to 32 keys sort on the stack.
		var arr [32]string
		keys := arr[:0]
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, `,"attrs":{`...)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonstr.Append(dst, k)
			dst = append(dst, ':')
			dst = jsonstr.Append(dst, r.Attrs[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	if sse {
		return append(dst, "\n\n"...)
	}
	return append(dst, '\n')
}
