package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAPIDbcQuery(t *testing.T) {
	// A fake admin API checks the request dbc sends.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/plugins/dau/query" || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		q := r.URL.Query()
		if len(q) != 2 || q.Get("period") != "day" || q.Get("key") != "web|a=b" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error": "bad params ` + r.URL.RawQuery + `"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"counts": [{"key": "web|a=b", "count": 42}]}`))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := run([]string{"-addr", srv.URL, "-token", "tok", "query", "dau", "period=day", "key=web|a=b"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"count": 42`) || !strings.HasSuffix(out.String(), "\n") {
		t.Fatalf("query = %d\n%s%s", code, out.String(), errb.String())
	}

	// Against a real dbusd: a plugin without queryable state is a 400.
	n := startNode(t)
	code, _, errs := n.dbc(t, "", "query", "f", "k=v")
	if code != 1 || !strings.Contains(errs, "no queryable state") || !strings.Contains(errs, "HTTP 400") {
		t.Fatalf("query f = %d %s", code, errs)
	}
	code, _, errs = n.dbc(t, "", "query", "nope")
	if code != 1 || !strings.Contains(errs, "HTTP 404") {
		t.Fatalf("query nope = %d %s", code, errs)
	}
	for _, args := range [][]string{{"query"}, {"query", "k=v"}, {"query", "dau", "novalue"}, {"query", "dau", "=v"}, {"query", "dau", "a=1", "a=2"}} {
		errb.Reset()
		if code := run(append([]string{"-addr", n.addr}, args...), nil, io.Discard, &errb); code != 2 {
			t.Fatalf("dbc %v = %d, want 2 (usage): %s", args, code, errb.String())
		}
	}
}
