package admin_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// chromium returns the path of a headless-capable Chromium, skipping the
// test when there is none (failing under CI=true, where it is installed).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no chromium in PATH (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

// dumpDOM loads url in headless Chromium, lets the page run for budget of
// virtual time, and returns the serialised DOM.
func dumpDOM(t *testing.T, bin, url string, budget time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(),
		"--virtual-time-budget="+strconv.Itoa(int(budget.Milliseconds())),
		"--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, stderr)
	}
	return string(out)
}

func cellValue(t *testing.T, dom, node, field string) int64 {
	t.Helper()
	re := regexp.MustCompile(`data-field="` + field + `" data-node="` + regexp.QuoteMeta(node) + `">(\d+)<`)
	m := re.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("page has no %s cell for %s:\n%.4000s", field, node, dom)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// TestAPIUILivePageInHeadlessChromium loads the live page in a real
// browser: it shows every node of the running config (in the SVG graph and
// the table) and its numbers move as packets flow. With a token, the page
// takes it from the URL fragment.
func TestAPIUILivePageInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	h := start(t, hopts{section: "{token: pagetoken}", pipeline: `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 5000}
filters:
  - {name: f, class: MockFilter, drop_ratio: 0.25, match: gen}
outputs:
  - {name: out, class: Rec, match: f}
`})
	url := h.base + "/ui/#token=pagetoken"
	first := dumpDOM(t, bin, url, 2500*time.Millisecond)
	for _, n := range []string{"gen", "f", "out"} {
		if !regexp.MustCompile(`<g class="node [a-z ]*" transform="[^"]*" data-name="` + n + `"`).MatchString(first) {
			t.Fatalf("the graph has no node %s:\n%.4000s", n, first)
		}
	}
	if !regexp.MustCompile(`<path class="edge match"`).MatchString(first) {
		t.Fatalf("the graph has no edges")
	}
	if !regexp.MustCompile(`id="generation">1<`).MatchString(first) || !regexp.MustCompile(`version v-test`).MatchString(first) {
		t.Fatalf("header not filled:\n%.2000s", first)
	}
	out1, drops1 := cellValue(t, first, "out", "out"), cellValue(t, first, "f", "drops")
	time.Sleep(time.Second)
	second := dumpDOM(t, bin, url, 2500*time.Millisecond)
	out2, drops2 := cellValue(t, second, "out", "out"), cellValue(t, second, "f", "drops")
	if out2 <= out1 || drops2 <= drops1 {
		t.Fatalf("the page's numbers did not move: out %d -> %d, drops %d -> %d", out1, out2, drops1, drops2)
	}
	// Without the token the page says how to authenticate.
	noTok := dumpDOM(t, bin, h.base+"/ui/", 1500*time.Millisecond)
	if !regexp.MustCompile(`401: authorization required`).MatchString(noTok) {
		t.Fatalf("page without a token shows no auth error:\n%.3000s", noTok)
	}
	t.Logf("page showed out %d -> %d, drops %d -> %d", out1, out2, drops1, drops2)
}
