package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/valyala/bytebufferpool"
)

func tapRecords() []engine.TapRecord {
	return []engine.TapRecord{
		{Node: "in", Seq: 1, Payload: "", Size: 0},
		{Node: "in", Seq: 1 << 63, Ts: -5, Key: "k", Payload: `{"id":1}`, Size: 8},
		{Node: "f", Seq: 7, Ts: 1700000000000000000, Payload: "a\"b\\c\n\t\x01 <tag> & \u2028 é \xff\xfe end", Size: 99,
			Attrs: map[string]string{"table": "orders", "db": "shop", "op": "insert", "z\x00": "\xc3"}},
	}
}

// TestAPITapLineMatchesEncodingJSON: the hand-built tap line decodes to
// the same record encoding/json writes (and, for plain strings, is byte
// for byte the same), in both framings.
func TestAPITapLineMatchesEncodingJSON(t *testing.T) {
	for i, r := range tapRecords() {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		line := appendTapLine(nil, &r, false)
		if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("record %d: not one NDJSON line: %q", i, line)
		}
		var got, exp map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("record %d: %q is not JSON: %v", i, line, err)
		}
		json.Unmarshal(want, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, line, want)
		}
		if i < 2 && string(line) != string(want)+"\n" {
			t.Fatalf("record %d: bytes differ:\n got %s\nwant %s", i, line, want)
		}
		sse := appendTapLine(nil, &r, true)
		if string(sse) != "event: packet\ndata: "+strings.TrimSuffix(string(line), "\n")+"\n\n" {
			t.Fatalf("record %d: SSE framing %q", i, sse)
		}
	}
}

// TestAPITapLineAllocsZero: a tap stream encodes each record into one
// pooled buffer without allocating (the code before, json.Marshal +
// Fprintf for SSE, allocated 3 per record without attrs, 12 with four).
func TestAPITapLineAllocsZero(t *testing.T) {
	recs := tapRecords()
	for _, sse := range []bool{false, true} {
		buf := bytebufferpool.Get()
		for i := range recs {
			r := &recs[i]
			if n := testing.AllocsPerRun(200, func() {
				buf.B = appendTapLine(buf.B[:0], r, sse)
				io.Discard.Write(buf.B)
			}); n != 0 {
				t.Errorf("record %d (sse %v): %v allocs per record, want 0", i, sse, n)
			}
		}
		bytebufferpool.Put(buf)
	}
	old := testing.AllocsPerRun(200, func() {
		b, _ := json.Marshal(recs[2])
		fmt.Fprintf(io.Discard, "event: packet\ndata: %s\n\n", b)
	})
	t.Logf("json.Marshal + Fprintf (the code before): %v allocs per record with attrs", old)
}

func BenchmarkAPITapLine(b *testing.B) {
	r := tapRecords()[2]
	b.Run("pooled", func(b *testing.B) {
		b.ReportAllocs()
		buf := bytebufferpool.Get()
		defer bytebufferpool.Put(buf)
		for b.Loop() {
			buf.B = appendTapLine(buf.B[:0], &r, true)
		}
	})
	b.Run("baseline-json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, _ := json.Marshal(r)
			fmt.Fprintf(io.Discard, "event: packet\ndata: %s\n\n", m)
		}
	})
}
