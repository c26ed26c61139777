package admin_test

import (
	"errors"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// countFilter passes packets and answers queries with how many it saw.
type countFilter struct{ seen atomic.Int64 }

func (f *countFilter) Process(fc engine.FilterContext, p *pack.Packet) error {
	f.seen.Add(1)
	fc.Emit(p)
	return nil
}

func (f *countFilter) Query(params map[string]string) (any, error) {
	if _, ok := params["bad"]; ok {
		return nil, errors.New(`unknown parameter "bad"`)
	}
	return map[string]any{"seen": f.seen.Load(), "params": params}, nil
}

const queryPipeline = `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 20000}
filters:
  - {name: counter, class: Counter, match: gen}
outputs:
  - {name: out, class: Rec, match: counter}
`

func TestAPIQuery(t *testing.T) {
	h := start(t, hopts{pipeline: queryPipeline, section: "{token: tok}", register: func(reg *engine.Registry) {
		reg.MustRegister(engine.Spec{Class: "Counter", Kind: engine.KindFilter, Summary: "test",
			NewFilter: func(*engine.Conf) (engine.Filter, error) { return &countFilter{}, nil }})
	}})
	h.tok = "tok"
	waitFor(t, "packets through counter", func() bool { return h.node("counter").In > 0 })

	var res struct {
		Seen   int64             `json:"seen"`
		Params map[string]string `json:"params"`
	}
	h.getJSON("/api/v1/plugins/counter/query?user=u%201&window=30m", &res)
	if res.Seen <= 0 || len(res.Params) != 2 || res.Params["user"] != "u 1" || res.Params["window"] != "30m" {
		t.Fatalf("query answer %+v", res)
	}
	res.Params = nil
	h.getJSON("/api/v1/plugins/counter/query", &res)
	if len(res.Params) != 0 {
		t.Fatalf("no params: %+v", res)
	}

	code, b := h.do("GET", "/api/v1/plugins/nope/query", "")
	h.wantError(code, b, 404, `no running plugin has that name`)
	code, b = h.do("GET", "/api/v1/plugins/gen/query", "")
	h.wantError(code, b, 400, "no queryable state")
	code, b = h.do("GET", "/api/v1/plugins/out/query?"+url.Values{"k": {"v"}}.Encode(), "")
	h.wantError(code, b, 400, "no queryable state")
	code, b = h.do("GET", "/api/v1/plugins/counter/query?bad=1", "")
	h.wantError(code, b, 400, `unknown parameter "bad"`)
	code, b = h.do("GET", "/api/v1/plugins/counter/query?a=1&a=2", "")
	h.wantError(code, b, 400, `given 2 times`)
	code, b = h.do("GET", "/api/v1/plugins/counter/query?a=%zz", "")
	h.wantError(code, b, 400, `bad query string`)
	code, b = h.do("POST", "/api/v1/plugins/counter/query", "")
	h.wantError(code, b, 405, "not allowed")
	// The class route next to it still works.
	code, _ = h.do("GET", "/api/v1/plugins/Counter", "")
	if code != 200 {
		t.Fatalf("GET plugins/Counter = %d", code)
	}
	h.tok = ""
	code, b = h.do("GET", "/api/v1/plugins/counter/query", "")
	h.wantError(code, b, 401, "authorization required")
}
