package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/jsonstr"
	"github.com/dbus-project/dbus/pack"
)

// Output writes one line per packet.
type Output struct {
	path    string
	format  string
	framing string // raw format: line or length
	sync    bool

	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	out io.Writer
	buf []byte
}

func newOutput(c *engine.Conf) (engine.Output, error) {
	o := &Output{path: c.String("path"), format: c.String("format"), framing: c.String("framing"), sync: c.Bool("sync")}
	if o.framing == "length" && o.format != "raw" {
		return nil, c.Errorf("framing", "framing: length applies to format: raw (format: json frames every packet as one line)")
	}
	return o, nil
}

// Start opens the file.
func (o *Output) Start(context.Context) error {
	if o.path == "" || o.path == "-" {
		o.out = os.Stdout
	} else {
		f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("stream output: %w", err)
		}
		o.f, o.out = f, f
	}
	o.w = bufio.NewWriterSize(o.out, 256<<10)
	return nil
}

// Write implements engine.Output.
func (o *Output) Write(_ context.Context, batch []*pack.Packet) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w == nil {
		if err := o.Start(context.Background()); err != nil {
			return err
		}
	}
	var be *engine.BatchError
	for i, p := range batch {
		switch {
		case o.format == "json":
			o.buf = appendJSON(o.buf[:0], p)
		case o.framing == "length":
			// A 4-byte big-endian length, then the payload: any bytes.
			o.buf = binary.BigEndian.AppendUint32(o.buf[:0], uint32(len(p.Payload)))
			o.buf = append(o.buf, p.Payload...)
		default:
			if bytes.IndexByte(p.Payload, '\n') >= 0 {
				// A line cannot hold it: never write a corrupt record.
				if be == nil {
					be = &engine.BatchError{Errs: make([]error, len(batch))}
				}
				be.Errs[i] = engine.Permanent(fmt.Errorf("stream output %s: payload of %d bytes contains a newline: one line per packet cannot hold it (use framing: length or format: json)", o.path, len(p.Payload)))
				continue
			}
			o.buf = append(append(o.buf[:0], p.Payload...), '\n')
		}
		if _, err := o.w.Write(o.buf); err != nil {
			return fmt.Errorf("stream output %s: %w", o.path, err)
		}
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("stream output %s: %w", o.path, err)
	}
	if o.sync && o.f != nil {
		if err := o.f.Sync(); err != nil {
			return fmt.Errorf("stream output %s: fsync: %w", o.path, err)
		}
	}
	if be != nil {
		return be
	}
	return nil
}

// appendJSON renders a packet as one JSON object: payload, key, ts and
// attributes. Bytes that are valid UTF-8 are JSON strings ("payload",
// "key", attribute values); others are base64 under a name ending in _b64
// ("payload_b64", "key_b64", an attribute as {"b64": "..."}), so binary
// data (Avro, Protobuf) round-trips exactly.
func appendJSON(dst []byte, p *pack.Packet) []byte {
	dst = append(dst, '{')
	dst = appendBytesField(dst, "payload", p.Payload)
	if len(p.Key) > 0 {
		dst = append(dst, ',')
		dst = appendBytesField(dst, "key", p.Key)
	}
	if p.Ts != 0 {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, p.Ts, 10)
	}
	if n := p.Attrs.Len(); n > 0 {
		dst = append(dst, `,"attrs":{`...)
		for i := 0; i < n; i++ {
			a := p.Attrs.At(i)
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, a.K)
			dst = append(dst, ':')
			switch {
			case a.Kind == pack.KindString && utf8.Valid(a.B):
				dst = appendJSONString(dst, a.B)
			case a.Kind == pack.KindString:
				dst = append(dst, `{"b64":"`...)
				dst = base64.StdEncoding.AppendEncode(dst, a.B)
				dst = append(dst, `"}`...)
			default:
				dst = a.AppendText(dst)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}', '\n')
}

// appendBytesField writes "name":"text" for valid UTF-8, else
// "name_b64":"base64".
func appendBytesField(dst []byte, name string, b []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, name...)
	if !utf8.Valid(b) {
		dst = append(dst, `_b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"')
	}
	dst = append(dst, `":`...)
	return appendJSONString(dst, b)
}

// appendJSONString appends valid UTF-8 s as a JSON string.
func appendJSONString(dst, s []byte) []byte { return jsonstr.Append(dst, s) }

// Close flushes and closes the file.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w != nil {
		o.w.Flush()
	}
	if o.f != nil {
		return o.f.Close()
	}
	return nil
}
