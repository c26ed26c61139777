package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type pos struct {
	Offset int64  `json:"offset"`
	Token  string `json:"token,omitempty"`
}

func TestEngineStateFileRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoints.json")
	got, err := Load[pos](path)
	if err != nil || len(got) != 0 {
		t.Fatalf("missing file: %v %v", got, err)
	}
	want := map[string]pos{"in/a": {Offset: 7, Token: "t"}, "in/b": {Offset: 1 << 40}}
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err = Load[pos](path)
	if err != nil || len(got) != 2 || got["in/a"] != want["in/a"] || got["in/b"] != want["in/b"] {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	os.WriteFile(path, []byte(`{"version":1,"checkpoints":{`), 0o644)
	if _, err := Load[pos](path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt file: %v", err)
	}
	if err := Save(filepath.Join(dir, "nodir", "x.json"), want); err == nil || !strings.Contains(err.Error(), "nodir") {
		t.Fatalf("save into a missing directory: %v", err)
	}
}
