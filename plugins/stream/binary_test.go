package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

var binaryPayloads = [][]byte{
	{0x00, 0x80, 0xfe, 0xff},
	[]byte("two\nlines"),
	[]byte("plain text é"),
	{},
	[]byte("\xc3\x28 invalid utf-8"),
}

func writePackets(t *testing.T, o *Output, ps [][]byte) error {
	t.Helper()
	batch := make([]*pack.Packet, len(ps))
	for i, b := range ps {
		p := &pack.Packet{Payload: append([]byte(nil), b...), Key: []byte{0xff, byte(i)}, Ts: int64(i + 1)}
		p.Attrs.SetString("kafka.header.bin", string([]byte{0x01, 0xfe}))
		p.Attrs.SetString("db", "shop")
		batch[i] = p
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	return o.Write(context.Background(), batch)
}

// TestStreamOutputBinaryRoundTrip: format json writes bytes that are not
// UTF-8 as base64 (payload_b64, key_b64, {"b64": ...}) and everything
// else as strings, so every payload, key and header reads back exactly
// (they went through a Go string: 00 80 fe ff became \u0000\ufffd...).
func TestStreamOutputBinaryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	o := &Output{path: path, format: "json"}
	if err := writePackets(t, o, binaryPayloads); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var rec struct {
			Payload    *string                    `json:"payload"`
			PayloadB64 string                     `json:"payload_b64"`
			KeyB64     string                     `json:"key_b64"`
			Attrs      map[string]json.RawMessage `json:"attrs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, sc.Bytes())
		}
		var got []byte
		if rec.Payload != nil {
			got = []byte(*rec.Payload)
		} else {
			got, _ = base64.StdEncoding.DecodeString(rec.PayloadB64)
		}
		if !bytes.Equal(got, binaryPayloads[i]) {
			t.Fatalf("payload %d read back as %x, want %x", i, got, binaryPayloads[i])
		}
		if k, _ := base64.StdEncoding.DecodeString(rec.KeyB64); !bytes.Equal(k, []byte{0xff, byte(i)}) {
			t.Fatalf("key %d read back as %x", i, k)
		}
		var h struct{ B64 string }
		json.Unmarshal(rec.Attrs["kafka.header.bin"], &h)
		if hb, _ := base64.StdEncoding.DecodeString(h.B64); !bytes.Equal(hb, []byte{0x01, 0xfe}) {
			t.Fatalf("binary header %d read back as %x (%s)", i, hb, rec.Attrs["kafka.header.bin"])
		}
		if string(rec.Attrs["db"]) != `"shop"` {
			t.Fatalf("text attribute: %s", rec.Attrs["db"])
		}
	}
	if i != len(binaryPayloads) {
		t.Fatalf("%d lines, want %d", i, len(binaryPayloads))
	}
}

// TestStreamOutputRawFraming: framing: length writes any payload (with
// newlines, binary) and reads back exactly; framing: line refuses a
// payload with a newline as a permanent failure (to the dead-letter
// output) instead of writing a corrupt record, and writes the others.
func TestStreamOutputRawFraming(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "len.bin")
	if err := writePackets(t, &Output{path: path, format: "raw", framing: "length"}, binaryPayloads); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	r := bytes.NewReader(data)
	for i := range binaryPayloads {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, binaryPayloads[i]) {
			t.Fatalf("record %d read back as %x, want %x (%v)", i, got, binaryPayloads[i], err)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left over", r.Len())
	}

	path = filepath.Join(dir, "lines.txt")
	err := writePackets(t, &Output{path: path, format: "raw", framing: "line"}, binaryPayloads)
	var be *engine.BatchError
	if !errors.As(err, &be) || be.Errs[1] == nil || !engine.IsPermanent(be.Errs[1]) {
		t.Fatalf("a payload with a newline: %v, want a permanent error for packet 1", err)
	}
	for i, e := range be.Errs {
		if (i == 1) != (e != nil) {
			t.Fatalf("packet %d: error %v", i, e)
		}
	}
	lines, _ := os.ReadFile(path)
	if n := bytes.Count(lines, []byte("\n")); n != len(binaryPayloads)-1 {
		t.Fatalf("%d lines written, want %d", n, len(binaryPayloads)-1)
	}
}
