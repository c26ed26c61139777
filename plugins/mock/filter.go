package mock

import (
	"fmt"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

type mode uint8

const (
	modePass mode = iota
	modeModify
	modeEmit
	modeDrop
	modeFail
)

var modes = map[string]mode{"pass": modePass, "modify": modeModify, "emit": modeEmit, "drop": modeDrop, "fail": modeFail}

// Filter passes, modifies, drops a ratio of, or multiplies packets.
type Filter struct {
	mode      mode
	dropEvery uint64 // drop one packet in every dropEvery (0: none)
	emit      int
	n         uint64
	suffix    []byte
}

func newFilter(c *engine.Conf) (engine.Filter, error) {
	f := &Filter{mode: modes[c.String("mode")], emit: int(c.Int("emit")), suffix: []byte(c.String("suffix"))}
	if r := c.Float("drop_ratio"); r > 0 {
		f.dropEvery = uint64(1/r + 0.5)
		if f.dropEvery == 0 {
			f.dropEvery = 1
		}
	}
	if f.mode == modeEmit && f.emit < 1 {
		return nil, c.Errorf("emit", "mode emit needs emit >= 1, got %d", f.emit)
	}
	return f, nil
}

// Process implements engine.Filter.
func (f *Filter) Process(fc engine.FilterContext, p *pack.Packet) error {
	f.n++
	if f.dropEvery > 0 && f.n%f.dropEvery == 0 {
		fc.Drop(p, "mock_ratio")
		return nil
	}
	switch f.mode {
	case modePass:
		fc.Emit(p)
	case modeModify:
		q, err := fc.Writable(p)
		if err != nil {
			return err
		}
		q.Payload = append(q.Payload, f.suffix...)
		fc.Emit(q)
	case modeEmit:
		for i := 0; i < f.emit; i++ {
			c, err := fc.Derive(p)
			if err != nil {
				return err
			}
			c.Payload = append(c.Payload[:0], p.Payload...)
			c.Payload = append(c.Payload, '#')
			c.Payload = append(c.Payload, byte('0'+i%10))
			c.Key = append(c.Key[:0], p.Key...)
			fc.Emit(c)
		}
		fc.Consume(p)
	case modeDrop:
		fc.Drop(p, "mock_drop")
	case modeFail:
		return fmt.Errorf("mock filter failure")
	}
	return nil
}
