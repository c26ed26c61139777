package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// cmdFilter passes packets and records the commands it is sent.
type cmdFilter struct {
	mu  sync.Mutex
	got [][]string
}

func (f *cmdFilter) Process(fc engine.FilterContext, p *pack.Packet) error {
	fc.Emit(p)
	return nil
}

func (f *cmdFilter) Command(_ context.Context, cmd string, args []string) (any, error) {
	if cmd != "snapshot" {
		return nil, errors.New(`unknown command "` + cmd + `"`)
	}
	f.mu.Lock()
	f.got = append(f.got, args)
	f.mu.Unlock()
	return map[string]any{"queued": args}, nil
}

// TestAPIPluginCommand: POST /api/v1/plugins/{name}/command/{cmd} reaches
// a plugin implementing engine.Commander with its arguments in order, and
// refuses what it must.
func TestAPIPluginCommand(t *testing.T) {
	cf := &cmdFilter{}
	h := start(t, hopts{pipeline: queryPipeline, section: "{token: tok}", register: func(reg *engine.Registry) {
		reg.MustRegister(engine.Spec{Class: "Counter", Kind: engine.KindFilter, Summary: "test",
			NewFilter: func(*engine.Conf) (engine.Filter, error) { return cf, nil }})
	}})
	h.tok = "tok"
	code, b := h.do("POST", "/api/v1/plugins/counter/command/snapshot?arg=db.a&arg=db.b", "")
	if code != 200 {
		t.Fatalf("command = %d %s", code, b)
	}
	var res struct {
		Queued []string `json:"queued"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Queued) != 2 || res.Queued[0] != "db.a" || res.Queued[1] != "db.b" {
		t.Fatalf("answer %s (%v)", b, err)
	}
	cf.mu.Lock()
	if len(cf.got) != 1 || len(cf.got[0]) != 2 {
		t.Fatalf("plugin got %v", cf.got)
	}
	cf.mu.Unlock()
	code, b = h.do("POST", "/api/v1/plugins/counter/command/frob", "")
	h.wantError(code, b, 400, `unknown command "frob"`)
	code, b = h.do("POST", "/api/v1/plugins/gen/command/snapshot?arg=x.y", "")
	h.wantError(code, b, 400, "takes no commands")
	code, b = h.do("POST", "/api/v1/plugins/nope/command/snapshot", "")
	h.wantError(code, b, 404, "no running plugin")
	code, b = h.do("POST", "/api/v1/plugins/counter/command/snapshot?table=x", "")
	h.wantError(code, b, 400, "unknown query parameter")
	code, b = h.do("GET", "/api/v1/plugins/counter/command/snapshot", "")
	h.wantError(code, b, 405, "not allowed")
	h.tok = ""
	code, b = h.do("POST", "/api/v1/plugins/counter/command/snapshot?arg=db.a", "")
	h.wantError(code, b, 401, "authorization required")
}
