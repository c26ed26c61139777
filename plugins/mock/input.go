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

// gen generates one stream's packets.
type gen struct {
	s    *engine.Stream
	name []byte
	next int64 // next sequence
	seq  *Seq  // next, in decimal digits
	key  Seq   // next % keys, in decimal digits
}

// fill writes the packets of g's next sequences into ps, stamped ts,
// ts+1, ..., and moves g on. One call per burst: a call per packet costs
// the dry run about 5 % (measured).
func (in *Input) fill(g *gen, ps []*pack.Packet, ts int64) {
	for _, p := range ps {
		p.Payload = g.seq.AppendPayload(p.Payload[:0], g.name, in.template)
		if in.keys > 0 {
			// "k" + seq%keys, counted in place like the payload.
			p.Key = append(p.Key[:0], 'k')
			p.Key = g.key.AppendDigits(p.Key)
			if g.key.Inc(); g.key.N() == in.keys {
				g.key.Reset()
			}
		}
		p.Ts = ts
		ts++
		p.Pos.Offset = g.next + 1
		p.Flags |= pack.FlagBoundary
		g.next++
		g.seq.Inc()
	}
}

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	gens := make([]*gen, in.streams)
	for i := range gens {
		id := ""
		if in.streams > 1 {
			id = strconv.Itoa(i)
		}
		s, err := ic.Stream(id)
		if err != nil {
			return err
		}
		g := &gen{s: s, name: []byte(strconv.Itoa(i))}
		if cp, ok := s.Resume(); ok {
			g.next = cp.Offset
		}
		g.seq = NewSeq(g.next)
		if in.keys > 0 {
			g.key = *NewSeq(g.next % in.keys)
		}
		gens[i] = g
	}
	if in.streams == 1 {
		return in.runBatched(ctx, ic, gens[0])
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
		g := gens[cur]
		cur++
		if cur == in.streams {
			cur = 0
		}
		if in.count > 0 && g.next >= in.count {
			if g.next == in.count {
				g.next++ // count this stream finished once
				done++
			}
			continue
		}
		if in.rate > 0 && emitted%64 == 0 {
			if stop, err := in.pace(ctx, ic, &start, emitted); stop {
				return err
			}
		}
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil // ctx ended
		}
		one := [1]*pack.Packet{p}
		in.fill(g, one[:], startNano+emitted)
		if err := ic.Emit(ctx, g.s, p); err != nil {
			return nil
		}
		emitted++
	}
	return ic.Flush(ctx)
}

// pace waits until emitted packets are due at the configured rate,
// flushing first. stop reports that Run should return err (nil when ctx
// ended). When the generator fell behind its schedule by more than a
// little (a pause, a slow pipeline), the schedule restarts from now: the
// rate is never exceeded to catch up (after a 3 s pause at rate 5000 it
// used to emit 24 000 packets in one second).
func (in *Input) pace(ctx context.Context, ic engine.InputContext, start *time.Time, emitted int64) (stop bool, err error) {
	due := start.Add(time.Duration(emitted * int64(time.Second) / in.rate))
	d := time.Until(due)
	if d <= 0 {
		if slack := max(20*time.Millisecond, time.Duration(128*int64(time.Second)/in.rate)); d < -slack {
			*start = time.Now().Add(-time.Duration(emitted * int64(time.Second) / in.rate))
		}
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
func (in *Input) runBatched(ctx context.Context, ic engine.InputContext, g *gen) error {
	const burst = 64
	var (
		buf       [burst]*pack.Packet
		start     = time.Now()
		startNano = start.UnixNano()
		emitted   int64
	)
	for in.count <= 0 || g.next < in.count {
		if ctx.Err() != nil {
			return nil
		}
		want := burst
		if in.count > 0 {
			want = int(min(int64(want), in.count-g.next))
		}
		if in.rate > 0 {
			if stop, err := in.pace(ctx, ic, &start, emitted); stop {
				return err
			}
			want = int(min(int64(want), max(in.rate/100, 1))) // about 10 ms of packets a burst
		}
		n, err := ic.NewPackets(ctx, buf[:want])
		if err != nil {
			return nil // ctx ended
		}
		in.fill(g, buf[:n], startNano+emitted)
		emitted += int64(n)
		if err := ic.EmitBatch(ctx, g.s, buf[:n]); err != nil {
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
