package window

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/smtp"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/dbus-project/dbus/internal/httpbody"
)

// sinkConfig is the "sinks" block.
type sinkConfig struct {
	Log     *bool          `yaml:"log"`
	Stdout  bool           `yaml:"stdout"`
	Webhook *webhookConfig `yaml:"webhook"`
	Email   *emailConfig   `yaml:"email"`
	Queue   int            `yaml:"queue"`
}

type webhookConfig struct {
	URL     string            `yaml:"url"`
	Timeout time.Duration     `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
}

type emailConfig struct {
	SMTP       string        `yaml:"smtp"`
	From       string        `yaml:"from"`
	To         []string      `yaml:"to"`
	Username   string        `yaml:"username"`
	Password   string        `yaml:"password"`
	Subject    string        `yaml:"subject"`
	Interval   time.Duration `yaml:"interval"`
	QuietHours *quietHours   `yaml:"quiet_hours"`
}

// quietHours holds alerts below min_severity between from and to (local
// wall time of zone); they are sent when the quiet hours end.
type quietHours struct {
	From        string `yaml:"from"`
	To          string `yaml:"to"`
	Zone        string `yaml:"zone"`
	MinSeverity string `yaml:"min_severity"`
	from, to    int    // minutes of the day
	loc         *time.Location
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// quiet reports whether now is within the quiet hours.
func (q *quietHours) quiet(now time.Time) bool {
	if q == nil {
		return false
	}
	t := now.In(q.loc)
	m := t.Hour()*60 + t.Minute()
	if q.from <= q.to {
		return m >= q.from && m < q.to
	}
	return m >= q.from || m < q.to
}

// sinkSet delivers alerts to the configured sinks from its own goroutine.
type sinkSet struct {
	log     bool
	stdout  io.Writer
	webhook *webhookConfig
	client  *http.Client
	mail    *mailBatcher
	ch      chan *Alert
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
	dropped atomic.Uint64
	errs    atomic.Uint64
	logger  atomic.Pointer[slog.Logger]
}

func newSinkSet(c sinkConfig) (*sinkSet, error) {
	s := &sinkSet{log: c.Log == nil || *c.Log, done: make(chan struct{})}
	if c.Stdout {
		s.stdout = os.Stdout
	}
	if w := c.Webhook; w != nil {
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
			return nil, fmt.Errorf("webhook url %q is not an http(s) URL", w.URL)
		}
		if w.Timeout <= 0 {
			w.Timeout = 10 * time.Second
		}
		s.webhook = w
		s.client = &http.Client{Timeout: w.Timeout}
	}
	if e := c.Email; e != nil {
		if e.SMTP == "" || e.From == "" || len(e.To) == 0 {
			return nil, fmt.Errorf("email needs smtp (host:port), from and to")
		}
		if e.Interval <= 0 {
			e.Interval = time.Minute
		}
		if e.Subject == "" {
			e.Subject = "dbus alerts"
		}
		if q := e.QuietHours; q != nil {
			var err error
			if q.from, err = parseClock(q.From); err != nil {
				return nil, fmt.Errorf("quiet_hours from: %v", err)
			}
			if q.to, err = parseClock(q.To); err != nil {
				return nil, fmt.Errorf("quiet_hours to: %v", err)
			}
			if q.Zone == "" {
				q.Zone = "Local"
			}
			if q.loc, err = time.LoadLocation(q.Zone); err != nil {
				return nil, fmt.Errorf("quiet_hours zone: %v", err)
			}
			if q.MinSeverity == "" {
				q.MinSeverity = "critical"
			}
			if q.MinSeverity != "info" && q.MinSeverity != "warning" && q.MinSeverity != "critical" {
				return nil, fmt.Errorf("quiet_hours min_severity %q", q.MinSeverity)
			}
		}
		s.mail = &mailBatcher{conf: e, pending: map[string][]*Alert{}, send: smtpSend}
	}
	q := c.Queue
	if q <= 0 {
		q = 4096
	}
	s.ch = make(chan *Alert, q)
	return s, nil
}

func (s *sinkSet) async() bool { return s.stdout != nil || s.webhook != nil || s.mail != nil }

func (s *sinkSet) start() {
	if !s.async() || !s.started.CompareAndSwap(false, true) {
		return
	}
	go s.run()
}

// stop delivers what is queued (mail batches included, quiet hours or
// not) and ends the goroutine.
func (s *sinkSet) stop(ctx context.Context) error {
	if !s.started.Load() {
		return nil
	}
	s.once.Do(func() { close(s.ch) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("alert sinks: %w", ctx.Err())
	}
}

// send hands a to the sinks without blocking the pipeline: when the queue
// is full the alert is logged and counted as dropped by the sinks.
func (s *sinkSet) send(log *slog.Logger, a *Alert) {
	if log == nil {
		log = slog.Default()
	}
	s.logger.Store(log)
	if s.log {
		lvl := slog.LevelWarn
		switch a.Severity {
		case "critical":
			lvl = slog.LevelError
		case "info":
			lvl = slog.LevelInfo
		}
		log.Log(context.Background(), lvl, "alert", "rule", a.Rule, "severity", a.Severity, "group", a.Group, "metric", a.Metric,
			"value", a.Value, "threshold", a.Threshold, "previous", a.Previous, "change", a.Change, "window_end", a.WindowEnd)
	}
	if !s.async() {
		return
	}
	if !s.started.Load() {
		s.start()
	}
	select {
	case s.ch <- a:
	default:
		s.dropped.Add(1)
		log.Error("alert sinks are behind: alert not delivered to stdout/webhook/email", "rule", a.Rule, "group", a.Group)
	}
}

func (s *sinkSet) warn(msg string, args ...any) {
	s.errs.Add(1)
	if l := s.logger.Load(); l != nil {
		l.Error(msg, args...)
	}
}

func (s *sinkSet) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.mail != nil {
		t := time.NewTicker(min(s.mail.conf.Interval, time.Minute))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case a, ok := <-s.ch:
			if !ok {
				if s.mail != nil {
					for _, err := range s.mail.flush(time.Now(), true) {
						s.warn("alert email failed", "err", err)
					}
				}
				return
			}
			s.deliver(a)
		case now := <-tick:
			for _, err := range s.mail.flush(now, false) {
				s.warn("alert email failed", "err", err)
			}
		}
	}
}

// alertLine encodes a into buf as one JSON line: what json.Marshal writes,
// then '\n'. buf comes from bytebufferpool, so that an alert's body costs
// no allocation once the pool is warm (TestWindowAlarmAlertBodyAllocsZero).
func alertLine(buf *bytebufferpool.ByteBuffer, a *Alert) error {
	buf.Reset()
	return json.NewEncoder(buf).Encode(a)
}

func (s *sinkSet) deliver(a *Alert) {
	buf := bytebufferpool.Get()
	defer bytebufferpool.Put(buf) // post waits until the request body is closed
	if err := alertLine(buf, a); err != nil {
		s.warn("alert not encoded", "rule", a.Rule, "group", a.Group, "err", err)
		return
	}
	body := buf.B[:len(buf.B)-1]
	if s.stdout != nil {
		s.stdout.Write(buf.B)
	}
	if w := s.webhook; w != nil {
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			if err = s.post(w, body); err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		if err != nil {
			s.warn("alert webhook failed", "url", w.URL, "rule", a.Rule, "err", err)
		}
	}
	if s.mail != nil {
		s.mail.add(a)
	}
}

// post sends body to the webhook. It returns only when the transport is
// done with body (httpbody), so the caller may reuse body's memory.
func (s *sinkSet) post(w *webhookConfig, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, w.URL, nil)
	if err != nil {
		return err
	}
	sent := httpbody.Attach(req, body) // a redirect (307/308) sends it again
	defer sent.Wait()
	req.Header.Set("Content-Type", "application/json")
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// mailBatcher collects alerts per severity and sends one email per
// severity every interval, holding low severities during quiet hours.
type mailBatcher struct {
	conf     *emailConfig
	pending  map[string][]*Alert
	lastSent time.Time
	send     func(c *emailConfig, subject, body string) error
}

func (m *mailBatcher) add(a *Alert) { m.pending[a.Severity] = append(m.pending[a.Severity], a) }

// flush sends the batches that are due at now (all when final).
func (m *mailBatcher) flush(now time.Time, final bool) []error {
	if !final && now.Sub(m.lastSent) < m.conf.Interval {
		return nil
	}
	sevs := make([]string, 0, len(m.pending))
	for sev, as := range m.pending {
		if len(as) > 0 {
			sevs = append(sevs, sev)
		}
	}
	sort.Slice(sevs, func(i, j int) bool { return severityRank(sevs[i]) > severityRank(sevs[j]) })
	var errs []error
	sent := false
	for _, sev := range sevs {
		q := m.conf.QuietHours
		if !final && q.quiet(now) && severityRank(sev) < severityRank(q.MinSeverity) {
			continue // held until the quiet hours end
		}
		as := m.pending[sev]
		var b strings.Builder
		for _, a := range as {
			fmt.Fprintf(&b, "[%s] %s group=%q %s=%g", a.Severity, a.Rule, a.Group, a.Metric, a.Value)
			if a.Change != 0 {
				fmt.Fprintf(&b, " previous=%g change=%+.1f%%", a.Previous, 100*a.Change)
			} else {
				fmt.Fprintf(&b, " threshold=%g", a.Threshold)
			}
			fmt.Fprintf(&b, " window=[%s, %s)\n", a.WindowStart, a.WindowEnd)
		}
		subject := fmt.Sprintf("%s: %d %s", m.conf.Subject, len(as), sev)
		if err := m.send(m.conf, subject, b.String()); err != nil {
			errs = append(errs, fmt.Errorf("send %s alerts to %v via %s: %w", sev, m.conf.To, m.conf.SMTP, err))
			continue // kept for the next interval
		}
		sent = true
		m.pending[sev] = as[:0]
	}
	if sent || final {
		m.lastSent = now
	}
	return errs
}

func smtpSend(c *emailConfig, subject, body string) error {
	var auth smtp.Auth
	if c.Username != "" {
		host := c.SMTP
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		auth = smtp.PlainAuth("", c.Username, c.Password, host)
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		c.From, strings.Join(c.To, ", "), subject, time.Now().Format(time.RFC1123Z))
	msg.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return smtp.SendMail(c.SMTP, auth, c.From, c.To, msg.Bytes())
}
