package jsonstr

import (
	"encoding/json"
	"testing"
)

// TestJSONStrMatchesEncodingJSON: what Append writes decodes, with
// encoding/json, to what encoding/json reads from its own encoding of the
// same string (invalid UTF-8 as U+FFFD), and Append allocates nothing.
func TestJSONStrMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there \"q\" \\ \x00 \x1f", "é ✓ 😀", "\xff\xfe bad", "line\u2028sep\u2029", "</script>"} {
		got := Append(nil, s)
		var back, want string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("%q: decodes to %q, encoding/json gives %q", s, back, want)
		}
		if b := Append(nil, []byte(s)); string(b) != string(got) {
			t.Fatalf("%q: []byte and string forms differ: %s vs %s", s, b, got)
		}
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], "tab\there \"q\" é \xff") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
