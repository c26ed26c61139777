package admin

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dbus-project/dbus/internal/testenv"
)

// TestAPIConnLimitKeepsServingRequests checks the displacement policy at
// max_connections: requests whose handler has them are never closed to make
// room (a newcomer waits for one to finish), while a connection that has
// been sending its request for longer than evictGrace is.
func TestAPIConnLimitKeepsServingRequests(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newLimitListener(raw, 2)
	release := make(chan struct{})
	srv := &http.Server{
		Handler: trackRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/block" {
				<-release
			}
			fmt.Fprint(w, "ok")
		})),
		ConnState:   connState,
		ConnContext: connContext,
	}
	go srv.Serve(lim)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()

	// send writes a request and returns a channel with the response's
	// status line (or the read error).
	send := func(c net.Conn, path, body string) <-chan string {
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		out := make(chan string, 1)
		go func() {
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				line = "error: " + err.Error()
			}
			out <- line
		}()
		return out
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	a, b := dial(), dial()
	ra, rb := send(a, "/block", "x"), send(b, "/block", "")
	testenv.Eventually(t, 5*time.Second, func() bool {
		lim.mu.Lock()
		defer lim.mu.Unlock()
		n := 0
		for c := range lim.conns {
			if c.state.Load() == connServing {
				n++
			}
		}
		return n == 2
	}, "both requests in their handlers")

	// A newcomer waits: nothing may be displaced while both are served.
	c := dial()
	rc := send(c, "/fast", "")
	testenv.Never(t, evictGrace*4, func() bool { return lim.evict.Load() > 0 || len(rc) > 0 }, "a serving request displaced or the cap exceeded")
	close(release)
	for name, r := range map[string]<-chan string{"a": ra, "b": rb, "c": rc} {
		select {
		case line := <-r:
			if !strings.HasPrefix(line, "HTTP/1.1 200") {
				t.Fatalf("request %s: %q, want 200", name, line)
			}
		case <-time.After(testenv.Scaled(5 * time.Second)):
			t.Fatalf("request %s not answered", name)
		}
	}

	// A connection trickling its body is displaced by a newcomer once it
	// has been at it longer than evictGrace; the newcomer is answered.
	if open := lim.open.Load(); open > 2 {
		t.Fatalf("%d connections open, cap 2", open)
	}
	s1, s2 := dial(), dial()
	fmt.Fprintf(s1, "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	fmt.Fprintf(s2, "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	rn := send(dial(), "/fast", "")
	select {
	case line := <-rn:
		if !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("newcomer: %q, want 200", line)
		}
	case <-time.After(testenv.Scaled(5 * time.Second)):
		t.Fatal("newcomer not answered while slow clients held the slots")
	}
	if lim.evict.Load() == 0 {
		t.Fatal("no slow connection displaced")
	}
}
