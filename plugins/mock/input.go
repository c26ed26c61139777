package mock

import (
	"context"
	"strconv"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Input generates packets.
type Input struct {
	name     string
	count    int64
	rate     int64
	size     int
	keys     int64
	streams  int
	template []byte
}

func newInput(c *engine.Conf) (engine.Input, error) {
	in := &Input{
		name:    c.Name,
		count:   c.Int("count"),
		rate:    c.Int("rate"),
		size:    int(c.Size("payload")),
		keys:    c.Int("keys"),
		streams: int(c.Int("streams")),
	}
	in.template = make([]byte, in.size)
	for i := range in.template {
		in.template[i] = 'x'
	}
	return in, nil
}

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	streams := make([]*engine.Stream, in.streams)
	next := make([]int64, in.streams)
	seqs := make([]*Seq, in.streams)
	names := make([][]byte, in.streams)
	for i := range streams {
		id := ""
		if in.streams > 1 {
			id = strconv.Itoa(i)
		}
		s, err := ic.Stream(id)
		if err != nil {
			return err
		}
		streams[i] = s
		if cp, ok := s.Resume(); ok {
			next[i] = cp.Offset
		}
		names[i] = []byte(strconv.Itoa(i))
		seqs[i] = NewSeq(next[i])
	}
	if in.streams == 1 {
		return in.runBatched(ctx, ic, streams[0], next[0], seqs[0], names[0])
	}
	var (
		start     = time.Now()
		startNano = start.UnixNano()
		emitted   int64
		cur       int
		done      int
	)
	for done < in.streams {
		if emitted&255 == 0 && ctx.Err() != nil {
			return nil
		}
		i := cur
		cur++
		if cur == in.streams {
			cur = 0
		}
		seq := next[i]
		if in.count > 0 && seq >= in.count {
			if seq == in.count {
				next[i]++ // count this stream finished once
				done++
			}
			continue
		}
		if in.rate > 0 && emitted%64 == 0 {
			if stop, err := in.pace(ctx, ic, start, emitted); stop {
				return err
			}
		}
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil // ctx ended
		}
		p.Payload = seqs[i].AppendPayload(p.Payload[:0], names[i], in.template)
		if in.keys > 0 {
			p.Key = append(p.Key[:0], 'k')
			p.Key = strconv.AppendInt(p.Key, seq%in.keys, 10)
		}
		p.Ts = startNano + emitted
		p.Pos.Offset = seq + 1
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, streams[i], p); err != nil {
			return nil
		}
		next[i] = seq + 1
		seqs[i].Inc()
		emitted++
	}
	return ic.Flush(ctx)
}

// pace waits until emitted packets are due at the configured rate,
// flushing first. stop reports that Run should return err (nil when ctx
// ended).
func (in *Input) pace(ctx context.Context, ic engine.InputContext, start time.Time, emitted int64) (stop bool, err error) {
	due := start.Add(time.Duration(emitted * int64(time.Second) / in.rate))
	d := time.Until(due)
	if d <= 0 {
		return false, nil
	}
	if err := ic.Flush(ctx); err != nil {
		return true, err
	}
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return true, nil
	case <-t.C:
	}
	return false, nil
}

// runBatched is Run for one stream: it takes and emits packets in bursts
// of up to 64 (InputContext.NewPackets, EmitBatch). The packets are the
// same as Run's.
func (in *Input) runBatched(ctx context.Context, ic engine.InputContext, s *engine.Stream, seq int64, sq *Seq, name []byte) error {
	const burst = 64
	var (
		buf       [burst]*pack.Packet
		key       = Seq{}
		start     = time.Now()
		startNano = start.UnixNano()
		emitted   int64
	)
	if in.keys > 0 {
		key = *NewSeq(seq % in.keys)
	}
	for in.count <= 0 || seq < in.count {
		if ctx.Err() != nil {
			return nil
		}
		want := burst
		if in.count > 0 {
			want = int(min(int64(want), in.count-seq))
		}
		if in.rate > 0 {
			if stop, err := in.pace(ctx, ic, start, emitted); stop {
				return err
			}
			want = int(min(int64(want), max(in.rate/100, 1))) // about 10 ms of packets a burst
		}
		n, err := ic.NewPackets(ctx, buf[:want])
		if err != nil {
			return nil // ctx ended
		}
		for _, p := range buf[:n] {
			p.Payload = sq.AppendPayload(p.Payload[:0], name, in.template)
			if in.keys > 0 {
				// "k" + seq%keys, counted in place like the payload.
				p.Key = append(p.Key[:0], 'k')
				p.Key = key.AppendDigits(p.Key)
				if key.Inc(); key.N() == in.keys {
					key.Reset()
				}
			}
			p.Ts = startNano + emitted
			p.Pos.Offset = seq + 1
			p.Flags |= pack.FlagBoundary
			seq++
			sq.Inc()
			emitted++
		}
		if err := ic.EmitBatch(ctx, s, buf[:n]); err != nil {
			return nil
		}
		clear(buf[:n])
	}
	return ic.Flush(ctx)
}

// AppendPayload writes "<stream>:<seq>" padded with the template's bytes
// up to the template's size.
func AppendPayload(dst, stream []byte, seq int64, template []byte) []byte {
	dst = append(dst, stream...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, seq, 10)
	if len(dst) < len(template) {
		dst = append(dst, template[len(dst):]...)
	}
	return dst
}

// Seq is a decimal sequence counter that increments its digits in place,
// so a generator formats one number per packet without dividing.
type Seq struct {
	buf   [20]byte
	start int
	n     int64
}

// NewSeq returns a counter at n (n >= 0).
func NewSeq(n int64) *Seq {
	s := &Seq{n: n}
	d := strconv.AppendInt(nil, n, 10)
	s.start = len(s.buf) - len(d)
	copy(s.buf[s.start:], d)
	return s
}

// AppendDigits appends the counter's decimal digits.
func (s *Seq) AppendDigits(dst []byte) []byte { return append(dst, s.buf[s.start:]...) }

// Reset sets the counter to zero (without allocating).
func (s *Seq) Reset() {
	s.n = 0
	s.start = len(s.buf) - 1
	s.buf[s.start] = '0'
}

// N returns the counter's value.
func (s *Seq) N() int64 { return s.n }

// Inc adds one.
func (s *Seq) Inc() {
	s.n++
	for i := len(s.buf) - 1; ; i-- {
		if i < s.start {
			s.start = i
			s.buf[i] = '1'
			return
		}
		if s.buf[i] != '9' {
			s.buf[i]++
			return
		}
		s.buf[i] = '0'
	}
}

// AppendPayload appends the payload of the counter's value (see the
// package function) without formatting the number from scratch.
func (s *Seq) AppendPayload(dst, stream, template []byte) []byte {
	dst = append(dst, stream...)
	dst = append(dst, ':')
	dst = append(dst, s.buf[s.start:]...)
	if len(dst) < len(template) {
		dst = append(dst, template[len(dst):]...)
	}
	return dst
}

// ParsePayload returns the stream and sequence of a MockInput payload.
func ParsePayload(b []byte) (stream string, seq int64, ok bool) {
	i := 0
	for i < len(b) && b[i] != ':' {
		i++
	}
	if i == len(b) {
		return "", 0, false
	}
	j := i + 1
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(b[i+1:j]), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return string(b[:i]), n, true
}
