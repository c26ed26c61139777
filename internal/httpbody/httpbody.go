// Package httpbody sends an HTTP request body from memory the caller
// reuses (a pooled buffer) and says when the transport is done with it.
//
// http.Client.Do may return while the transport still reads the request
// body (a server that answers before it read the whole body; the body is
// closed later, on the transport's goroutine), so putting the buffer back
// into a pool as soon as Do returns can let the next user overwrite bytes
// still being sent. Attach gives the request bodies that count themselves
// closed; Wait returns once every one of them is, which the transport
// guarantees even on errors ("the request Body ... will be closed by the
// underlying Transport, even on errors").
package httpbody

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// Tracker counts the open bodies of one request (the first, and any a
// redirect asked for through GetBody).
type Tracker struct {
	wg sync.WaitGroup
}

// Attach sets req's body (and GetBody, for redirects that resend it) to
// body, which must stay unchanged until Wait returns. Call Wait after
// Do, whatever Do returned; a request that is never sent must not be
// attached.
func Attach(req *http.Request, body []byte) *Tracker {
	t := &Tracker{}
	req.Body = t.open(body)
	req.GetBody = func() (io.ReadCloser, error) { return t.open(body), nil }
	req.ContentLength = int64(len(body))
	return t
}

// Wait returns once the transport closed every body it was given.
func (t *Tracker) Wait() { t.wg.Wait() }

func (t *Tracker) open(body []byte) io.ReadCloser {
	t.wg.Add(1)
	return &trackedBody{Reader: bytes.NewReader(body), wg: &t.wg}
}

type trackedBody struct {
	*bytes.Reader
	once sync.Once
	wg   *sync.WaitGroup
}

func (b *trackedBody) Close() error {
	b.once.Do(b.wg.Done)
	return nil
}
