package enginetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// SeqClass is the class of the suite's generator input: it emits packets
// whose payload is SeqPayload(n) for n = 0..count-1 (after the resumed
// checkpoint), key "k<n mod 7>", position offset n+1 (a boundary), then
// returns. Config: {class: ConformanceSeq, count: N, pad: BYTES}.
const SeqClass = "ConformanceSeq"

// SeqPayload is the payload of sequence n: a small JSON document (so
// outputs that need JSON accept it) padded to at least pad bytes.
func SeqPayload(dst []byte, n int64, pad int) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, `,"pad":"`...)
	for i := len(dst); i < pad-2; i++ {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// ParseSeq returns the sequence of a payload made by SeqPayload, found
// anywhere in b (outputs may wrap it).
func ParseSeq(b []byte) (int64, bool) {
	const tag = `{"seq":`
	for i := 0; i+len(tag) <= len(b); i++ {
		if string(b[i:i+len(tag)]) != tag {
			continue
		}
		j := i + len(tag)
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		n, err := strconv.ParseInt(string(b[j:k]), 10, 64)
		return n, err == nil
	}
	return 0, false
}

type seqInput struct {
	count int64
	pad   int
}

func (in *seqInput) Run(ctx context.Context, ic engine.InputContext) error {
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	var from int64
	if cp, ok := s.Resume(); ok {
		from = cp.Offset
	}
	for n := from; n < in.count; n++ {
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = SeqPayload(p.Payload[:0], n, in.pad)
		p.Key = append(append(p.Key[:0], 'k'), byte('0'+n%7))
		p.Pos.Offset = n + 1
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
	}
	return ic.Flush(ctx)
}

// registerSeq adds the generator to reg once.
func registerSeq(reg *engine.Registry) error {
	if _, ok := reg.Lookup(SeqClass); ok {
		return nil
	}
	return reg.Register(engine.Spec{Class: SeqClass, Kind: engine.KindInput,
		Summary: "Conformance suite generator: JSON payloads with a sequence number.",
		Fields: []engine.Field{
			{Name: "count", Type: engine.TypeInt, Required: true, Doc: "Packets to emit in all (resumed runs continue from the checkpoint)."},
			{Name: "pad", Type: engine.TypeInt, Default: int64(48), Doc: "Minimum payload size."},
		},
		NewInput: func(c *engine.Conf) (engine.Input, error) {
			return &seqInput{count: c.Int("count"), pad: int(c.Int("pad"))}, nil
		}})
}

// Collector is an output that keeps a copy of every payload it acks. Safe
// for concurrent use.
type Collector struct {
	mu       sync.Mutex
	payloads [][]byte
}

// Write implements engine.Output.
func (c *Collector) Write(_ context.Context, batch []*pack.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range batch {
		c.payloads = append(c.payloads, append([]byte(nil), p.Payload...))
	}
	return nil
}

// Payloads returns copies of what was written, in order.
func (c *Collector) Payloads() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.payloads...)
}

var collectorSeq atomic.Int64

// registerCollector registers a new Collector under a fresh class name.
func registerCollector(reg *engine.Registry) (*Collector, string, error) {
	c := &Collector{}
	class := fmt.Sprintf("ConformanceCollector%d", collectorSeq.Add(1))
	err := reg.Register(engine.Spec{Class: class, Kind: engine.KindOutput, Summary: "Conformance suite sink.",
		NewOutput: func(*engine.Conf) (engine.Output, error) { return c, nil }})
	return c, class, err
}
