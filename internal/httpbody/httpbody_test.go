package httpbody

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHTTPBodyWaitOutlivesAnEarlyAnswer: a server that answers before it
// read the body lets Do return while the transport may still hold the
// body; Wait returns only after the transport closed it, and the server
// received intact bytes when it reads them.
func TestHTTPBodyWaitOutlivesAnEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/early" {
			w.WriteHeader(http.StatusRequestEntityTooLarge) // body unread
			return
		}
		b, _ := io.ReadAll(r.Body)
		if string(b) != "hello" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/read", "/early"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		body := []byte("hello")
		tr := Attach(req, body)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		done := make(chan struct{})
		go func() { tr.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Wait did not return: the transport never closed the body", path)
		}
		if path == "/read" && resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
}

// TestHTTPBodyWaitAfterDialError: Do fails before anything is sent; the
// body is still closed and Wait returns.
func TestHTTPBodyWaitAfterDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", nil)
	tr := Attach(req, []byte("x"))
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("Do to a closed port succeeded")
	}
	done := make(chan struct{})
	go func() { tr.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after a failed Do")
	}
}

// TestHTTPBodyRedirectResends: a 307 makes the client resend the body
// through GetBody; both bodies are counted and closed.
func TestHTTPBodyRedirectResends(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusTemporaryRedirect)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/a", nil)
	tr := Attach(req, []byte("again"))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.Wait()
	if got != "again" {
		t.Fatalf("redirected request body %q, want %q", got, "again")
	}
}
