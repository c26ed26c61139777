package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/valyala/bytebufferpool"
)

// tapRequest is a validated GET /api/v1/tap/{node} query.
type tapRequest struct {
	Max          int
	Every        int
	PayloadBytes int
	Timeout      time.Duration
	SSE          bool
}

// parseTapQuery validates a tap query strictly against the limits:
//
//	max=N            records to send (default min(100, limit))
//	every=N          sample one packet in N (default 1)
//	payload_bytes=N  payload bytes kept per record (default min(256, limit))
//	timeout=D        end the stream after D (default and limit: max_duration)
//	format=ndjson|sse
//
// A request over a limit is an error that names the limit.
func parseTapQuery(q url.Values, lim TapConfig) (tapRequest, error) {
	req := tapRequest{Max: min(100, lim.MaxPackets), Every: 1, PayloadBytes: min(256, lim.MaxPayloadBytes), Timeout: lim.MaxDuration}
	for k, vs := range q {
		if len(vs) != 1 {
			return req, fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		var err error
		switch k {
		case "max":
			req.Max, err = positive(k, v, int64(lim.MaxPackets), "admin.tap.max_packets")
		case "every":
			req.Every, err = positive(k, v, 1<<30, "")
		case "payload_bytes":
			req.PayloadBytes, err = positive(k, v, int64(lim.MaxPayloadBytes), "admin.tap.max_payload_bytes")
		case "timeout":
			req.Timeout, err = time.ParseDuration(v)
			switch {
			case err != nil:
				err = fmt.Errorf("timeout %q: want a duration like 10s", v)
			case req.Timeout <= 0:
				err = fmt.Errorf("timeout %s must be positive", v)
			case req.Timeout > lim.MaxDuration:
				err = fmt.Errorf("timeout %s over the limit %s (admin.tap.max_duration)", v, lim.MaxDuration)
			}
		case "format":
			switch v {
			case "ndjson":
			case "sse":
				req.SSE = true
			default:
				err = fmt.Errorf("format %q: want ndjson or sse", v)
			}
		default:
			err = fmt.Errorf("unknown query parameter %q (want max, every, payload_bytes, timeout, format)", k)
		}
		if err != nil {
			return req, err
		}
	}
	return req, nil
}

// errOversized marks a request over a configured limit.
type errOversized struct{ msg string }

func (e *errOversized) Error() string { return e.msg }

func positive(key, v string, limit int64, limitName string) (int, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a positive integer", key, v)
	}
	if n < 1 {
		return 0, fmt.Errorf("%s %d: must be at least 1", key, n)
	}
	if n > limit {
		return 0, &errOversized{fmt.Sprintf("%s %d over the limit %d (%s)", key, n, limit, limitName)}
	}
	return int(n), nil
}

func (s *Server) handleTap(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if !s.cfg.Tap.Enabled {
		writeError(w, http.StatusForbidden, "the tap is off: set admin.tap.enabled: true to enable it")
		return
	}
	req, err := parseTapQuery(r.URL.Query(), s.cfg.Tap)
	if err != nil {
		writeError(w, http.StatusBadRequest, "tap %s: %v", node, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		req.SSE = true
	}
	if s.nodeKind(node) == "" {
		writeError(w, http.StatusNotFound, "tap %s: no running plugin has that name", node)
		return
	}
	if n := s.taps.Add(1); int(n) > s.cfg.Tap.MaxConcurrent {
		s.taps.Add(-1)
		writeError(w, http.StatusTooManyRequests, "tap %s: %d taps already active (admin.tap.max_concurrent)", node, s.cfg.Tap.MaxConcurrent)
		return
	}
	defer s.taps.Add(-1)
	ctx, cancel := contextWithTimeout(r, req.Timeout)
	defer cancel()
	ch, err := s.b.Tap(ctx, node, engine.TapOptions{Max: req.Max, Every: req.Every, PayloadBytes: req.PayloadBytes})
	if err != nil {
		// Validated above: what is left is a tap already on this node or
		// a node that is going away.
		writeError(w, http.StatusConflict, "tap %s: %v", node, err)
		return
	}
	if req.SSE {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	// A tap streams for up to its timeout, longer than write_timeout: lift
	// the server's deadlines for this request only (the read one would end
	// its context, the write one cut the stream).
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(req.Timeout + 10*time.Second))
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	s.tapsTotal.Add(1)
	s.log.Info("tap started", "node", node, "max", req.Max, "every", req.Every, "remote", r.RemoteAddr)
	sent := 0
	reason := "max"
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf)
	for rec := range ch {
		buf.B = appendTapLine(buf.B[:0], &rec, req.SSE)
		if _, err := w.Write(buf.B); err != nil {
			break
		}
		if rc.Flush() != nil {
			break
		}
		sent++
	}
	if sent < req.Max {
		reason = "timeout"
		if r.Context().Err() != nil {
			reason = "closed"
		}
	}
	if req.SSE {
		fmt.Fprintf(w, "event: end\ndata: {\"sent\":%d,\"reason\":%q}\n\n", sent, reason)
		rc.Flush()
	}
	s.log.Info("tap ended", "node", node, "sent", sent, "reason", reason)
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
