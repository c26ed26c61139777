package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/bytebufferpool"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/httpbody"
	"github.com/dbus-project/dbus/internal/jsonstr"
	"github.com/dbus-project/dbus/pack"
)

// ErrPermanent is the cause of item failures that retrying cannot fix
// (mapping errors, malformed documents, other 4xx): their errors are
// engine.Permanent (the engine dead-letters them at once) and wrap
// ErrPermanent, so errors.Is(err, ErrPermanent) holds too.
var ErrPermanent = errors.New("permanent failure")

// errPermanent is what a permanent ItemError unwraps to.
var errPermanent = engine.Permanent(ErrPermanent)

// ItemError is one failed bulk item.
type ItemError struct {
	Index  string
	ID     string
	Status int
	Reason string
	perm   bool
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("elasticsearch bulk item %s/%s: status %d: %s", e.Index, e.ID, e.Status, e.Reason)
}

// Unwrap lets engine.IsPermanent and errors.Is(err, ErrPermanent)
// classify the failure.
func (e *ItemError) Unwrap() error {
	if e.perm {
		return errPermanent
	}
	return nil
}

// isRetryable is the one retry classifier of this client.
func isRetryable(status int) bool { return status == http.StatusTooManyRequests || status >= 500 }

// Output is ESOutput.
type Output struct {
	name      string
	urls      []string
	next      int
	client    *http.Client
	index     []tmplPart
	indexAttr string
	action    string
	idMode    string
	idAttrs   []string
	document  string
	tsField   string
	exclude   map[string]bool
	gzip      bool
	maxBytes  int
	user      string
	password  string
	apiKey    string
	shown     []string // urls without passwords, for messages
	tlsMode   string   // tls.mode ("" when the tls block is off)
	pipeline  string
	dryRun    atomic.Bool

	// body is the bulk request being built: taken from bytebufferpool for
	// one Write call and returned after it, so an idle output holds no
	// request-sized buffer (max_bytes, 5 MiB by default) and outputs share
	// calibrated buffers.
	body   *bytebufferpool.ByteBuffer
	zw     *gzip.Writer
	scr    []byte
	ids    []string
	idxs   []string
	sent   atomic.Uint64
	failed atomic.Uint64
}

// tmplPart is a piece of the index template.
type tmplPart struct {
	lit    string
	layout string // %{+layout}
	attr   string // %{attr}
}

func parseTemplate(s string) ([]tmplPart, error) {
	var parts []tmplPart
	for s != "" {
		i := strings.Index(s, "%{")
		if i < 0 {
			parts = append(parts, tmplPart{lit: s})
			break
		}
		if i > 0 {
			parts = append(parts, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed %%{ in %q", s)
		}
		in := s[i+2 : i+j]
		switch {
		case in == "" || in == "+":
			return nil, fmt.Errorf("empty %%{} in %q", s)
		case in[0] == '+':
			parts = append(parts, tmplPart{layout: in[1:]})
		default:
			parts = append(parts, tmplPart{attr: in})
		}
		s = s[i+j+1:]
	}
	return parts, nil
}

func newOutput(c *engine.Conf) (engine.Output, error) {
	o := &Output{
		name:      c.Name,
		urls:      c.Strings("urls"),
		indexAttr: c.String("index_attr"),
		action:    c.String("action"),
		idMode:    c.String("id"),
		idAttrs:   c.Strings("id_attrs"),
		document:  c.String("document"),
		tsField:   c.String("timestamp_field"),
		gzip:      c.Bool("gzip"),
		maxBytes:  int(c.Size("max_bytes")),
		user:      c.String("username"),
		password:  c.String("password"),
		apiKey:    c.String("api_key"),
		pipeline:  c.String("pipeline"),
		exclude:   map[string]bool{},
	}
	if len(o.urls) == 0 {
		return nil, c.Errorf("urls", "at least one URL is required")
	}
	for i, u := range o.urls {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, c.Errorf("urls", "%q is not an http(s) URL", redactURL(u))
		}
		o.urls[i] = strings.TrimRight(u, "/")
	}
	if o.idMode != "position" && o.idMode != "none" && (!strings.HasPrefix(o.idMode, "attr:") || len(o.idMode) == 5) {
		return nil, c.Errorf("id", "%q: want position, none or attr:<name>", o.idMode)
	}
	idx, err := parseTemplate(c.String("index"))
	if err != nil {
		return nil, c.Errorf("index", "%v", err)
	}
	if len(idx) == 0 {
		return nil, c.Errorf("index", "an index name or template is required")
	}
	for _, p := range idx {
		if p.lit != "" && strings.ToLower(p.lit) != p.lit {
			return nil, c.Errorf("index", "index names must be lower case: %q", p.lit)
		}
	}
	o.index = idx
	for _, e := range c.Strings("exclude") {
		o.exclude[e] = true
	}
	if o.indexAttr != "" {
		o.exclude[o.indexAttr] = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	if err := o.configureSecurity(c, tr); err != nil {
		return nil, err
	}
	o.client = &http.Client{Timeout: c.Duration("timeout"), Transport: tr}
	if o.gzip {
		o.zw, _ = gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	}
	return o, nil
}

// SetDryRun implements engine.DryRunner: encode everything, send nothing.
func (o *Output) SetDryRun(on bool) { o.dryRun.Store(on) }

// Close implements engine.Closer.
func (o *Output) Close(context.Context) error {
	o.client.CloseIdleConnections()
	return nil
}

// Write implements engine.Output.
func (o *Output) Write(ctx context.Context, batch []*pack.Packet) error {
	o.body = bytebufferpool.Get()
	defer func() {
		bytebufferpool.Put(o.body)
		o.body = nil
	}()
	var be *engine.BatchError
	for i := 0; i < len(batch); {
		j, err := o.encode(batch, i)
		if err != nil {
			return err
		}
		errs, err := o.send(ctx, batch[i:j])
		if err != nil {
			// The whole request failed: every item of this request and
			// of the requests not sent yet is retried.
			if i == 0 && j == len(batch) {
				return err
			}
			if be == nil {
				be = &engine.BatchError{Errs: make([]error, len(batch))}
			}
			for k := i; k < len(batch); k++ {
				be.Errs[k] = err
			}
			return be
		}
		for k, e := range errs {
			if e != nil {
				if be == nil {
					be = &engine.BatchError{Errs: make([]error, len(batch))}
				}
				be.Errs[i+k] = e
			}
		}
		i = j
	}
	if be != nil {
		return be
	}
	return nil
}

// encode writes batch[i:j] as NDJSON into o.body, stopping before
// max_bytes (at least one item per request), and records each item's
// index and id for error messages.
func (o *Output) encode(batch []*pack.Packet, i int) (int, error) {
	o.body.Reset()
	o.ids, o.idxs = o.ids[:0], o.idxs[:0]
	j := i
	for ; j < len(batch); j++ {
		mark := o.body.Len()
		if err := o.encodeOne(batch[j]); err != nil {
			return j, err
		}
		if o.body.Len() > o.maxBytes && j > i {
			o.body.B = o.body.B[:mark]
			o.ids, o.idxs = o.ids[:len(o.ids)-1], o.idxs[:len(o.idxs)-1]
			break
		}
	}
	return j, nil
}

func (o *Output) encodeOne(p *pack.Packet) error {
	b := o.scr[:0]
	b = append(b, `{"`...)
	b = append(b, o.action...)
	b = append(b, `":{"_index":`...)
	is := len(b)
	if v, ok := p.Attrs.Str(o.indexAttr); ok && o.indexAttr != "" && len(v) > 0 {
		b = appendJSONString(b, v)
	} else {
		var name [128]byte
		b = appendJSONString(b, o.indexName(name[:0], p))
	}
	o.idxs = append(o.idxs, string(b[is+1:len(b)-1]))
	id := ""
	switch {
	case o.idMode == "position" && (p.Pos.Offset != 0 || len(p.Pos.Token) > 0):
		b = append(b, `,"_id":"`...)
		s := len(b)
		b = o.appendPositionID(b, p)
		id = string(b[s:])
		b = append(b, '"')
	case strings.HasPrefix(o.idMode, "attr:"):
		if a, ok := p.Attrs.Get(o.idMode[5:]); ok {
			b = append(b, `,"_id":`...)
			s := len(b)
			b = appendJSONString(b, a.AppendText(nil))
			id = string(b[s+1 : len(b)-1])
		}
	}
	o.ids = append(o.ids, id)
	b = append(b, "}}\n"...)
	switch o.document {
	case "payload":
		// NDJSON framing: a raw newline in a JSON document can only be
		// whitespace between tokens.
		for _, c := range p.Payload {
			if c == '\n' || c == '\r' {
				c = ' '
			}
			b = append(b, c)
		}
	default:
		b = o.appendAttrsDoc(b, p)
	}
	b = append(b, '\n')
	o.body.Write(b)
	o.scr = b
	return nil
}

// indexName renders the index template for p.
func (o *Output) indexName(dst []byte, p *pack.Packet) []byte {
	for _, part := range o.index {
		switch {
		case part.layout != "":
			ts := p.Ts
			if ts == 0 {
				ts = time.Now().UnixNano()
			}
			dst = time.Unix(0, ts).UTC().AppendFormat(dst, part.layout)
		case part.attr != "":
			if a, ok := p.Attrs.Get(part.attr); ok {
				dst = a.AppendText(dst)
			}
		default:
			dst = append(dst, part.lit...)
		}
	}
	return dst
}

// appendPositionID appends the document id derived from p's source
// position.
func (o *Output) appendPositionID(dst []byte, p *pack.Packet) []byte {
	h := uint64(14695981039346656037)
	mix := func(b []byte) {
		for _, c := range b {
			h ^= uint64(c)
			h *= 1099511628211
		}
		h ^= 0xff // separator
		h *= 1099511628211
	}
	for _, name := range o.idAttrs {
		if a, ok := p.Attrs.Get(name); ok {
			var tmp [32]byte
			if a.Kind == pack.KindString {
				mix(a.B)
			} else {
				mix(a.AppendText(tmp[:0]))
			}
		}
	}
	mix(p.Pos.Token)
	// Finalise (murmur3 fmix64) so the hex digits are well spread.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	const hexd = "0123456789abcdef"
	for s := 60; s >= 0; s -= 4 {
		dst = append(dst, hexd[(h>>uint(s))&0xf])
	}
	dst = append(dst, '-')
	return strconv.AppendInt(dst, p.Pos.Offset, 10)
}

// appendAttrsDoc appends a JSON object of p's attributes.
func (o *Output) appendAttrsDoc(b []byte, p *pack.Packet) []byte {
	b = append(b, '{')
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	if o.tsField != "" && p.Ts != 0 {
		sep()
		b = appendJSONString(b, []byte(o.tsField))
		b = append(b, ':', '"')
		b = time.Unix(0, p.Ts).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	for i := 0; i < p.Attrs.Len(); i++ {
		a := p.Attrs.At(i)
		if o.exclude[string(a.K)] || string(a.K) == o.tsField {
			continue
		}
		sep()
		b = appendJSONString(b, a.K)
		b = append(b, ':')
		switch a.Kind {
		case pack.KindInt:
			b = strconv.AppendInt(b, a.I, 10)
		case pack.KindFloat:
			f := math.Float64frombits(uint64(a.I))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendFloat(b, f, 'g', -1, 64)
			}
		case pack.KindBool:
			b = strconv.AppendBool(b, a.I != 0)
		case pack.KindString:
			b = appendJSONString(b, a.B)
		default:
			b = append(b, "null"...)
		}
	}
	if o.document == "both" {
		sep()
		b = append(b, `"message":`...)
		b = appendJSONString(b, p.Payload)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string (invalid UTF-8 replaced).
func appendJSONString(b, s []byte) []byte { return jsonstr.Append(b, s) }

// bulkResponse is the part of a bulk response we read.
type bulkResponse struct {
	Errors bool                         `json:"errors"`
	Items  []map[string]json.RawMessage `json:"items"`
}

type bulkItem struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// send posts o.body; it returns per-item errors, or an error for the whole
// request.
func (o *Output) send(ctx context.Context, items []*pack.Packet) ([]error, error) {
	if o.dryRun.Load() {
		return make([]error, len(items)), nil
	}
	body := o.body.Bytes()
	if o.gzip {
		zb := bytebufferpool.Get()
		defer bytebufferpool.Put(zb) // after the request: body refers to it
		o.zw.Reset(zb)
		o.zw.Write(body)
		if err := o.zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip bulk body: %w", err)
		}
		body = zb.Bytes()
	}
	url := o.shown[o.next%len(o.urls)] // for messages: no password
	u := o.urls[o.next%len(o.urls)] + "/_bulk"
	if o.pipeline != "" {
		u += "?pipeline=" + o.pipeline
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch bulk request to %s: %w", url, err)
	}
	// body is pooled memory: keep it until the transport is done with it
	// (it may still be sending when Do returns with an early answer).
	sent := httpbody.Attach(req, body)
	defer sent.Wait()
	req.Header.Set("Content-Type", "application/x-ndjson")
	if o.gzip {
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Accept-Encoding", "gzip")
	}
	switch {
	case o.apiKey != "":
		req.Header.Set("Authorization", "ApiKey "+o.apiKey)
	case o.user != "":
		req.SetBasicAuth(o.user, o.password)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		o.next++ // try another node next time
		if e := o.explainTransportError(url, err); e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("elasticsearch bulk request to %s (%d items): %w", url, len(items), err)
	}
	defer resp.Body.Close()
	rb := io.Reader(resp.Body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch bulk response from %s: %w", url, err)
		}
		defer zr.Close()
		rb = zr
	}
	data, err := io.ReadAll(io.LimitReader(rb, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch bulk response from %s: %w", url, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return nil, o.authError(url, resp.StatusCode, data)
	}
	if resp.StatusCode != http.StatusOK {
		if isRetryable(resp.StatusCode) {
			o.next++
		}
		return nil, fmt.Errorf("elasticsearch bulk request to %s refused (%d items): HTTP %d: %s", url, len(items), resp.StatusCode, truncate(data, 300))
	}
	var br bulkResponse
	if err := json.Unmarshal(data, &br); err != nil {
		return nil, fmt.Errorf("elasticsearch bulk response from %s is not JSON: %w", url, err)
	}
	if len(br.Items) != len(items) {
		return nil, fmt.Errorf("elasticsearch bulk response from %s has %d items for %d sent", url, len(br.Items), len(items))
	}
	errs := make([]error, len(items))
	nfail := 0
	if !br.Errors {
		o.sent.Add(uint64(len(items)))
		return errs, nil
	}
	for k, m := range br.Items {
		var it bulkItem
		for _, raw := range m { // one key: the action
			if err := json.Unmarshal(raw, &it); err != nil {
				return nil, fmt.Errorf("elasticsearch bulk response from %s: item %d: %w", url, k, err)
			}
		}
		switch {
		case it.Status >= 200 && it.Status < 300:
		case it.Status == http.StatusConflict && o.action == "create":
			// Already indexed (a replay): the document is there.
		default:
			nfail++
			errs[k] = &ItemError{Index: o.idxs[k], ID: o.ids[k], Status: it.Status, Reason: string(truncate(it.Error, 300)), perm: !isRetryable(it.Status)}
		}
	}
	o.sent.Add(uint64(len(items) - nfail))
	o.failed.Add(uint64(nfail))
	return errs, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return append(b[:n:n], "..."...)
	}
	return b
}
