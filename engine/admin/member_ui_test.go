package admin_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine/admin"
)

// TestAPIUIMemberPageInHeadlessChromium: a member's live page draws every
// resource's nodes (<resource>/<plugin>) and a header line with the
// member, leader, epoch, session and its resources (failed counted).
func TestAPIUIMemberPageInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	base := admin.StartFakeMember(t, "{token: pagetoken}")
	dom := dumpDOM(t, bin, base+"/ui/#token=pagetoken", 2500*time.Millisecond)
	for _, n := range []string{"r1/gen", "r2/out"} {
		if !regexp.MustCompile(`data-name="` + n + `"`).MatchString(dom) {
			t.Fatalf("the graph has no node %s:\n%.4000s", n, dom)
		}
	}
	if !strings.Contains(dom, "member m1 of c1 (leader) · epoch 7 · session connected · resources 2/3 running, 1 failed") {
		t.Fatalf("no member line in the header:\n%.3000s", dom)
	}
}
