package admin_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/plugins/stream"
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
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage",
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

// attackerPage tries every mutating or data-revealing endpoint of the
// admin API at admin from another origin, the ways a web page can
// without a CORS preflight (no-cors fetch, text/plain and typeless
// bodies, form posts, beacons, images), plus a CORS request with the
// custom header (whose preflight must fail). It writes what each attempt
// saw into #results and "attack-done" when all have settled.
const attackerPage = `<!doctype html>
<html><head><title>attacker</title></head><body>
<pre id="results"></pre>
<script>
var A = %q, yaml = %q;
var out = [];
function note(name, p) {
  return p.then(function (r) { out.push(name + "=" + (r && r.type ? r.type + ":" + r.status : "ok")); },
                function (e) { out.push(name + "=error:" + e.name); });
}
function form(name, path, enctype, field, value) {
  return new Promise(function (done) {
    var f = document.createElement("iframe");
    f.name = "t" + name;
    f.onload = function () { out.push(name + "=form-sent"); done(); };
    document.body.appendChild(f);
    var fm = document.createElement("form");
    fm.method = "POST"; fm.action = A + path; fm.enctype = enctype; fm.target = f.name;
    var i = document.createElement("input");
    i.type = "hidden"; i.name = field; i.value = value;
    fm.appendChild(i);
    document.body.appendChild(fm);
    fm.submit();
  });
}
var tries = [
  note("reload-nocors", fetch(A + "/api/v1/reload", {method: "POST", mode: "no-cors", body: yaml})),
  note("reload-textplain", fetch(A + "/api/v1/reload", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: yaml})),
  note("reload-blob", fetch(A + "/api/v1/reload", {method: "POST", mode: "no-cors", body: new Blob([yaml])})),
  note("reload-empty", fetch(A + "/api/v1/reload", {method: "POST", mode: "no-cors"})),
  note("pause-nocors", fetch(A + "/api/v1/inputs/gen/pause", {method: "POST", mode: "no-cors"})),
  note("tap-nocors", fetch(A + "/api/v1/tap/gen?max=1", {mode: "no-cors"})),
  note("config-nocors", fetch(A + "/api/v1/config", {mode: "no-cors"})),
  note("reload-cors-header", fetch(A + "/api/v1/reload", {method: "POST", headers: {"X-Dbus-Request": "1", "Content-Type": "application/yaml"}, body: yaml})),
  note("pause-cors-header", fetch(A + "/api/v1/inputs/gen/pause", {method: "POST", headers: {"X-Dbus-Request": "1"}})),
  note("config-cors", fetch(A + "/api/v1/config", {headers: {"X-Dbus-Request": "1"}})),
  form("form-reload-text", "/api/v1/reload", "text/plain", "inputs: [{name: x, class: MockInput}]\noutputs: [{name: o, class: Rec, match: x}]\n#", "1"),
  form("form-reload-url", "/api/v1/reload", "application/x-www-form-urlencoded", "a", yaml),
  form("form-pause", "/api/v1/inputs/gen/pause", "application/x-www-form-urlencoded", "a", "b"),
  form("form-pause-multipart", "/api/v1/inputs/gen/pause", "multipart/form-data", "a", "b"),
  new Promise(function (done) {
    out.push("beacon=" + navigator.sendBeacon(A + "/api/v1/reload", yaml));
    var img = new Image();
    img.onload = img.onerror = function () { out.push("img-tap=done"); done(); };
    img.src = A + "/api/v1/tap/gen?max=1";
  })
];
Promise.all(tries).then(function () {
  out.sort();
  document.getElementById("results").textContent = out.join("\n") + "\nattack-done";
});
</script></body></html>`

// TestAPICrossOriginAttackInHeadlessChromium serves a page from another
// origin (127.0.0.2, or another port when that address is not usable)
// that tries every mutating endpoint of an admin API without token, and
// proves through the Supervisor that none took effect: same generation,
// input not paused, no tap started, the posted command never ran. The
// same-origin /ui/ page still loads its data.
func TestAPICrossOriginAttackInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	// max_duration 2s: a tap the page managed to open would end in time
	// for the checks below to report it.
	h := start(t, hopts{section: "{tap: {enabled: true, max_duration: 2s}}", file: true, register: stream.Register})
	gen0 := h.sup.Generation()
	evil := fmt.Sprintf(`
inputs:
  - {name: gen, class: StreamInput, source: command, command: "touch %s"}
outputs:
  - {name: out, class: Rec, match: gen}
`, marker)
	page := fmt.Sprintf(attackerPage, h.base, evil)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // another port: still another origin
		if err != nil {
			t.Fatal(err)
		}
	}
	var served atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dom := dumpDOM(t, bin, "http://"+ln.Addr().String()+"/", 8*time.Second)
	if served.Load() == 0 || !strings.Contains(dom, "attack-done") {
		t.Fatalf("the attacker page did not run to the end (served %d):\n%.3000s", served.Load(), dom)
	}
	results := dom[strings.Index(dom, `<pre id="results">`):]
	t.Logf("attacker page saw:\n%s", results[:strings.Index(results, "attack-done")])
	// The no-cors requests reached the API (opaque answers), the CORS
	// ones died at the preflight, the forms were posted.
	for _, want := range []string{"reload-nocors=opaque:0", "pause-nocors=opaque:0", "tap-nocors=opaque:0",
		"reload-cors-header=error:TypeError", "pause-cors-header=error:TypeError", "config-cors=error:TypeError",
		"form-reload-text=form-sent", "form-pause=form-sent", "beacon=true"} {
		if !strings.Contains(results, want) {
			t.Errorf("attacker page result %q missing", want)
		}
	}
	h.unchanged(gen0)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the attacker's command ran")
	}
	if st := h.srv.TapsStarted(); st != 0 {
		t.Fatalf("%d taps started", st)
	}

	// The same-origin page still works without a token: it loads the DAG.
	ui := dumpDOM(t, bin, h.base+"/ui/", 2500*time.Millisecond)
	if !regexp.MustCompile(`id="generation">1<`).MatchString(ui) || !strings.Contains(ui, `data-name="gen"`) {
		t.Fatalf("the /ui/ page did not load its data:\n%.3000s", ui)
	}
}

// TestAPIUIHistoryAndReloadsInHeadlessChromium: the live page charts each
// node's last minutes from the in-process history (the sample count and
// the values move over time) and lists reloads, a rejected one with its
// error and file:line.
func TestAPIUIHistoryAndReloadsInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	h := start(t, hopts{file: true, pipeline: `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 5000}
outputs:
  - {name: out, class: Rec, match: gen}
`})
	// A rejected reload: the page shows it with its located error.
	code, b := h.do("POST", "/api/v1/reload", "inputs:\n  - {name: gen, class: NoSuchInput}\n", "Content-Type", "application/yaml")
	if code != 400 {
		t.Fatalf("bad reload: %d %s", code, b)
	}
	samples := regexp.MustCompile(`data-node="gen"><h3>gen \((\d+) samples\)</h3>`)
	count := func(dom string) int {
		m := samples.FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("no history for gen on the page:\n%.5000s", dom)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	var first string
	testenv.Eventually(t, 30*time.Second, func() bool {
		first = dumpDOM(t, bin, h.base+"/ui/", 3000*time.Millisecond)
		return samples.MatchString(first)
	}, "the page never showed the history of gen")
	if !regexp.MustCompile(`<tr class="reload-rejected">.*rejected.*NoSuchInput`).MatchString(first) {
		t.Fatalf("the rejected reload is not listed:\n%.6000s", first)
	}
	if !regexp.MustCompile(`reload request&gt;:2|reload request>:2`).MatchString(first) {
		t.Fatalf("the rejected reload's error does not name file:line:\n%.6000s", first)
	}
	if !regexp.MustCompile(`data-chart="rate">packets/s in / out: [1-9]`).MatchString(first) {
		t.Fatalf("the rate chart of gen shows no traffic:\n%.6000s", first)
	}
	n1 := count(first)
	var second string
	testenv.Eventually(t, 30*time.Second, func() bool {
		second = dumpDOM(t, bin, h.base+"/ui/", 3000*time.Millisecond)
		return count(second) > n1
	}, "the history did not grow: %d samples", n1)
}
