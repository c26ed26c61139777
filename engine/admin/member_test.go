package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/engine/metrics"
	"gopkg.in/yaml.v3"
)

// fakeMember is a cluster member running resources r1 and r2 (each the
// fake pipeline gen -> f -> out), with r3 failed.
type fakeMember struct{ r1, r2 *fakeBackend }

func (m *fakeMember) Status() any {
	return map[string]any{"cluster": "c1", "member": "m1", "leader": "m1", "is_leader": true, "epoch": 7,
		"session": "connected", "resources": []map[string]any{
			{"id": "r1", "epoch": 3, "state": "running"}, {"id": "r2", "epoch": 5, "state": "running"},
			{"id": "r3", "epoch": 6, "state": "failed", "error": "cannot reach db3"}}}
}
func (m *fakeMember) Resources() []string { return []string{"r1", "r2"} }
func (m *fakeMember) Resource(name string) (Backend, bool) {
	switch name {
	case "r1":
		return m.r1, true
	case "r2":
		return m.r2, true
	}
	return nil, false
}
func (m *fakeMember) Config() *engine.Config { return nil }
func (m *fakeMember) Stats() metrics.ClusterStats {
	return metrics.ClusterStats{Members: 2, Leader: true, ResourcesOwned: 2, ResourcesFailed: 1, Epoch: 7, SessionState: "connected"}
}

// StartFakeMember serves a fake member's admin API (admin: section
// section) and returns its base URL (for the admin_test browser test).
func StartFakeMember(t *testing.T, section string) string {
	base, _ := startMember(t, section)
	return base
}

func startMember(t *testing.T, section string) (string, *fakeMember) {
	t.Helper()
	fm := &fakeMember{r1: &fakeBackend{gen: 1}, r2: &fakeBackend{gen: 1}}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(section), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0]
	srv, err := Start(context.Background(), Options{Member: fm, Section: n, ListenOverride: "127.0.0.1:0", Version: "v-member",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + srv.Addr(), fm
}

// TestAPIMemberViews: with Options.Member (no local pipeline) the
// top-level views mount each resource engine under <resource>/,
// /api/v1/resources/{id}/ serves that engine alone, a pause goes to the
// right engine, and /api/v1/status carries the member's state.
func TestAPIMemberViews(t *testing.T) {
	base, fm := startMember(t, "{}")
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set(RequestHeader, "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/api/v1/dag")
	for _, n := range []string{`"r1/gen"`, `"r2/out"`} {
		if code != 200 || !strings.Contains(body, n) {
			t.Fatalf("dag: %d, no %s: %s", code, n, body)
		}
	}
	if code, body = get("/api/v1/resources/r2/dag"); code != 200 || !strings.Contains(body, `"gen"`) || strings.Contains(body, "r2/") {
		t.Fatalf("resource dag: %d %s", code, body)
	}
	if code, body = get("/api/v1/resources/r9/dag"); code != 404 || !strings.Contains(body, "r1, r2") {
		t.Fatalf("unknown resource: %d %s", code, body)
	}
	var st struct{ Cluster map[string]any }
	if code, body = get("/api/v1/status"); code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Cluster["member"] != "m1" {
		t.Fatalf("status: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/inputs/r2%2Fgen/pause", nil)
	req.Header.Set(RequestHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !fm.r2.paused || fm.r1.paused {
		t.Fatalf("pause r2/gen: %d, r1 paused %v, r2 paused %v", resp.StatusCode, fm.r1.paused, fm.r2.paused)
	}
	if code, body = get("/metrics"); code != 200 || !strings.Contains(body, `dbus_plugin_packets_out_total{class="MockInput",kind="input",plugin="gen",resource="r1"} 10`) ||
		!strings.Contains(body, "dbus_cluster_resources_failed 1") {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
}
