package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbus-project/dbus/plugins/mock"
)

// Shape is a pipeline shape measured by the baselines and by dbus.
type Shape struct {
	Inputs  int  // number of inputs
	Filter  bool // a pass-through filter after each input
	Outputs int  // outputs each packet fans out to
	// Ring forces a ring hand-off before the output (engine.fuse_outputs:
	// false) instead of chaining the cheap sink into the input's
	// goroutine; the baselines ignore it.
	Ring bool
}

// bpkt is the baselines' packet: a reusable payload and a refcount.
type bpkt struct {
	payload []byte
	refs    atomic.Int32
	seq     int64
}

type passFilter interface{ process(p *bpkt) bool }

type pass struct{ n uint64 }

func (f *pass) process(*bpkt) bool { f.n++; return true }

// ChannelPipeline runs shape as goroutines joined by buffered channels,
// one packet per send, for d; packets come from and return to a shared
// free channel. It returns the input packets delivered (counted once,
// when their last output released them).
func ChannelPipeline(shape Shape, payload int, d time.Duration) uint64 {
	template := make([]byte, payload)
	for i := range template {
		template[i] = 'x'
	}
	const capacity = 1024
	var stop atomic.Bool
	var delivered atomic.Uint64
	free := make(chan *bpkt, 4096*shape.Inputs)
	for i := 0; i < cap(free); i++ {
		free <- &bpkt{payload: make([]byte, 0, payload+32)}
	}
	outs := make([]chan *bpkt, shape.Outputs)
	for i := range outs {
		outs[i] = make(chan *bpkt, capacity)
	}
	stream := []byte("0")
	var inWG, outWG sync.WaitGroup
	for in := 0; in < shape.Inputs; in++ {
		var mid chan *bpkt
		if shape.Filter {
			mid = make(chan *bpkt, capacity)
			inWG.Add(1)
			go func() { // filter
				defer inWG.Done()
				var f passFilter = &pass{}
				for p := range mid {
					if f.process(p) {
						for _, o := range outs {
							o <- p
						}
					}
				}
			}()
		}
		inWG.Add(1)
		go func() { // input
			defer inWG.Done()
			seq := mock.NewSeq(0)
			for !stop.Load() {
				p := <-free
				p.payload = seq.AppendPayload(p.payload[:0], stream, template)
				p.seq = seq.N()
				seq.Inc()
				p.refs.Store(int32(shape.Outputs))
				if mid != nil {
					mid <- p
					continue
				}
				for _, o := range outs {
					o <- p
				}
			}
			if mid != nil {
				close(mid)
			}
		}()
	}
	for _, o := range outs {
		outWG.Add(1)
		go func() { // output: ack on receipt
			defer outWG.Done()
			for p := range o {
				if p.refs.Add(-1) == 0 {
					delivered.Add(1)
					free <- p
				}
			}
		}()
	}
	time.Sleep(d)
	n := delivered.Load()
	stop.Store(true)
	inWG.Wait()
	for _, o := range outs {
		close(o)
	}
	outWG.Wait()
	return n
}

// Floor runs the same per-packet work as one goroutine (generate, filter,
// ack, recycle) for d and returns packets processed: the floor no
// pipeline can beat.
func Floor(shape Shape, payload int, d time.Duration) uint64 {
	template := make([]byte, payload)
	for i := range template {
		template[i] = 'x'
	}
	pkts := make([]bpkt, 4096)
	for i := range pkts {
		pkts[i].payload = make([]byte, 0, payload+32)
	}
	f := &pass{}
	var fi passFilter = f
	stream := []byte("0")
	var n uint64
	deadline := time.Now().Add(d)
	seq := mock.NewSeq(0)
	for {
		for i := 0; i < 4096; i++ {
			for in := 0; in < shape.Inputs; in++ {
				p := &pkts[i]
				p.payload = seq.AppendPayload(p.payload[:0], stream, template)
				seq.Inc()
				p.refs.Store(int32(shape.Outputs))
				if shape.Filter && !fi.process(p) {
					continue
				}
				for o := 0; o < shape.Outputs; o++ {
					p.refs.Add(-1)
				}
				n++
			}
		}
		if time.Now().After(deadline) {
			break
		}
	}
	runtime.KeepAlive(f)
	return n
}
