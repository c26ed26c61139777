package es

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/dbus-project/dbus/pack"
)

// BenchmarkESOutputWrite: one Write of a 1000-document batch (gzip, 200
// byte payload documents) to a server that acks every item. Measures the
// request building and compression path (bulk body and gzip buffers).
func BenchmarkESOutputWrite(b *testing.B) {
	var resp []byte
	resp = append(resp, `{"took":1,"errors":false,"items":[`...)
	for i := range 1000 {
		if i > 0 {
			resp = append(resp, ',')
		}
		resp = append(resp, `{"index":{"status":201}}`...)
	}
	resp = append(resp, "]}"...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(resp)
	}))
	defer srv.Close()
	o := newTestOutput(b, map[string]any{"urls": []string{srv.URL}, "index": "bench", "document": "payload"})
	batch := make([]*pack.Packet, 1000)
	for i := range batch {
		p := &pack.Packet{Ts: 1}
		p.Payload = append(p.Payload, `{"n":`...)
		p.Payload = strconv.AppendInt(p.Payload, int64(i), 10)
		p.Payload = append(p.Payload, `,"msg":"GET /index.html HTTP/1.1 200 user agent Mozilla/5.0 (X11; Linux x86_64) referer https://example.com/some/path?q=1 and some more text to reach two hundred bytes"}`...)
		p.Pos.Offset = int64(i + 1)
		batch[i] = p
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(batch[0].Payload) * len(batch)))
	for b.Loop() {
		if err := o.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
