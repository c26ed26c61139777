package engine_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
)

// TestEnginePoolBytesBoundsResidentPayload: pool_bytes bounds the payload
// memory an input keeps, not only the bytes in flight. 64 KiB packets, the
// default pool of 8192 packets, pool_bytes 32MiB and a slow sink: packets
// used to come back with their grown buffers, so after one turn of the
// pool every packet kept 64 KiB (512 MiB, 16x pool_bytes; RSS went from
// 52 MB to 539 MB). Now a returning packet whose buffer grew while the
// pool already keeps pool_bytes has it dropped: the pool's resident
// accounting stays under pool_bytes and the live heap under a small
// multiple of it.
func TestEnginePoolBytesBoundsResidentPayload(t *testing.T) {
	const poolBytes = 32 << 20
	reg := testRegistry(t, nil)
	e := newEngine(t, reg, `
inputs:
  - {name: gen, class: MockInput, payload: 64KiB, count: 30000, pool_bytes: 32MiB}
outputs:
  - {name: slow, class: MockOutput, latency: 1ms, match: gen}
`, engine.Options{})
	// The live heap as the collector marked it, less what was allocated
	// while it ran: the input keeps dropping and re-growing 64 KiB buffers
	// (about 1.5 GB/s here), and what it allocates during a collection is
	// marked live by that collection (it is garbage by the next), so that
	// churn is not memory the pool keeps. HeapInuse after runtime.GC() also
	// counted it, and read 92-147 MiB on a loaded 2-core machine.
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	liveHeap := func() int64 {
		metrics.Read(sample[1:])
		before := sample[1].Value.Uint64()
		runtime.GC()
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64()) - int64(sample[1].Value.Uint64()-before)
	}
	base := liveHeap()

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var (
		wg                     sync.WaitGroup
		maxHeap, maxRes, polls int64
		done                   = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			maxHeap = max(maxHeap, liveHeap()-base)
			for _, s := range e.Stats() {
				if s.Name == "gen" {
					maxRes = max(maxRes, s.PoolResidentBytes)
				}
			}
			polls++
		}
	}()
	err := e.Run(ctx)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, e, "slow")
	if st.Out != 30000 {
		t.Fatalf("delivered %d of 30000", st.Out)
	}
	if polls < 3 {
		t.Fatalf("only %d memory samples", polls)
	}
	t.Logf("peak live heap growth %d MiB, peak pool resident %d MiB, pool_bytes %d MiB (%d samples)",
		maxHeap>>20, maxRes>>20, poolBytes>>20, polls)
	if maxRes > poolBytes {
		t.Errorf("pool keeps %d MiB of buffers, over pool_bytes %d MiB", maxRes>>20, poolBytes>>20)
	}
	// Kept buffers (<= pool_bytes) + packets out of the pool (<= pool_bytes
	// + one batch of 256 x 64 KiB) + buffers an input grew since.
	if maxHeap > 4*poolBytes {
		t.Errorf("live heap grew by %d MiB under a slow sink, over 4 x pool_bytes (%d MiB)", maxHeap>>20, 4*poolBytes>>20)
	}
}
