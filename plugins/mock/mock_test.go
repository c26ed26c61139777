package mock

import (
	"strconv"
	"testing"
)

func TestEngineMockPayloadFormat(t *testing.T) {
	tmpl := make([]byte, 32)
	for i := range tmpl {
		tmpl[i] = 'x'
	}
	for _, n := range []int64{0, 7, 9, 10, 99, 100, 12345, 1<<62 + 12345} {
		got := AppendPayload(nil, []byte("3"), n, tmpl)
		want := "3:" + strconv.FormatInt(n, 10)
		for len(want) < 32 {
			want += "x"
		}
		if string(got) != want {
			t.Fatalf("AppendPayload(%d) = %q, want %q", n, got, want)
		}
		s, seq, ok := ParsePayload(got)
		if !ok || s != "3" || seq != n {
			t.Fatalf("ParsePayload(%q) = %q %d %v", got, s, seq, ok)
		}
	}
}

func TestEngineMockSeqCounter(t *testing.T) {
	for _, start := range []int64{0, 8, 98, 999, 123456789} {
		s := NewSeq(start)
		for n := start; n < start+1200; n++ {
			want := AppendPayload(nil, []byte("0"), n, make([]byte, 24))
			if got := s.AppendPayload(nil, []byte("0"), make([]byte, 24)); string(got) != string(want) {
				t.Fatalf("seq %d: %q, want %q", n, got, want)
			}
			s.Inc()
		}
	}
}

func TestEngineMockSeqReset(t *testing.T) {
	s := NewSeq(987)
	s.Reset()
	for n := int64(0); n < 120; n++ {
		if got, want := string(s.AppendDigits(nil)), strconv.FormatInt(n, 10); got != want || s.N() != n {
			t.Fatalf("after reset, step %d: %q (N %d), want %q", n, got, s.N(), want)
		}
		s.Inc()
	}
	if a := testing.AllocsPerRun(100, func() { s.Reset(); s.Inc() }); a != 0 {
		t.Fatalf("Reset allocates %.1f", a)
	}
}
