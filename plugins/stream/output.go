package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Output writes one line per packet.
type Output struct {
	path   string
	format string
	sync   bool

	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	out io.Writer
	buf []byte
}

func newOutput(c *engine.Conf) (engine.Output, error) {
	return &Output{path: c.String("path"), format: c.String("format"), sync: c.Bool("sync")}, nil
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
	for _, p := range batch {
		if o.format == "json" {
			o.buf = appendJSON(o.buf[:0], p)
		} else {
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
	return nil
}

// appendJSON renders a packet as one JSON object: payload (as a string),
// key, ts, and attributes.
func appendJSON(dst []byte, p *pack.Packet) []byte {
	dst = append(dst, `{"payload":`...)
	dst = appendJSONString(dst, p.Payload)
	if len(p.Key) > 0 {
		dst = append(dst, `,"key":`...)
		dst = appendJSONString(dst, p.Key)
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
			switch a.Kind {
			case pack.KindString:
				dst = appendJSONString(dst, a.B)
			default:
				dst = a.AppendText(dst)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}', '\n')
}

func appendJSONString(dst, s []byte) []byte {
	b, _ := json.Marshal(string(s))
	return append(dst, b...)
}

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
