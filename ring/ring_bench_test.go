package ring

import (
	"context"
	"sync"
	"testing"
)

// The benchmarks move b.N items, so ns/op is ns per item. Each also reports
// items/s. Per-item work is the same everywhere: the producer writes the
// item's sequence number into a slot, the consumer reads it back and sums.
// BenchmarkFloor is the single-goroutine floor, BenchmarkChan* the naive
// baselines (STYLE.md 11).

const benchCap = 1024

func reportItems(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

func checkSum(b *testing.B, sum uint64, n int) {
	if want := uint64(n) * uint64(n-1) / 2; sum != want {
		b.Fatalf("sum = %d, want %d", sum, want)
	}
}

func benchSPSC(b *testing.B, batch int) {
	r, err := New[uint64](benchCap, SingleProducer)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	go func() {
		items := make([]uint64, batch)
		for s := 0; s < b.N; {
			k := min(batch, b.N-s)
			for i := range k {
				items[i] = uint64(s + i)
			}
			if _, err := r.Put(ctx, items[:k]); err != nil {
				panic(err)
			}
			s += k
		}
	}()
	dst := make([]uint64, batch)
	var sum uint64
	for got := 0; got < b.N; {
		n, err := r.Get(ctx, dst)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range dst[:n] {
			sum += v
		}
		got += n
	}
	b.StopTimer()
	checkSum(b, sum, b.N)
	reportItems(b)
}

func BenchmarkSPSCBatch1(b *testing.B)   { benchSPSC(b, 1) }
func BenchmarkSPSCBatch64(b *testing.B)  { benchSPSC(b, 64) }
func BenchmarkSPSCBatch256(b *testing.B) { benchSPSC(b, 256) }

func benchMPSC(b *testing.B, producers, batch int) {
	r, err := New[uint64](benchCap, MultiProducer)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range producers {
		lo, hi := b.N*p/producers, b.N*(p+1)/producers
		wg.Go(func() {
			items := make([]uint64, batch)
			for s := lo; s < hi; {
				k := min(batch, hi-s)
				for i := range k {
					items[i] = uint64(s + i)
				}
				if _, err := r.Put(ctx, items[:k]); err != nil {
					panic(err)
				}
				s += k
			}
		})
	}
	dst := make([]uint64, 256)
	var sum uint64
	for got := 0; got < b.N; {
		n, err := r.Get(ctx, dst)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range dst[:n] {
			sum += v
		}
		got += n
	}
	b.StopTimer()
	wg.Wait()
	checkSum(b, sum, b.N)
	reportItems(b)
}

func BenchmarkMPSC4Batch1(b *testing.B)  { benchMPSC(b, 4, 1) }
func BenchmarkMPSC4Batch64(b *testing.B) { benchMPSC(b, 4, 64) }

// BenchmarkChanItem is the naive baseline: a buffered channel, one item per send.
func BenchmarkChanItem(b *testing.B) {
	ch := make(chan uint64, benchCap)
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	go func() {
		for i := range b.N {
			ch <- uint64(i)
		}
	}()
	var sum uint64
	for range b.N {
		sum += <-ch
	}
	b.StopTimer()
	checkSum(b, sum, b.N)
	reportItems(b)
}

// BenchmarkChanBatch256 passes batches of 256 as slices over a channel; the
// slices circulate back through a second channel so that it does not allocate.
func BenchmarkChanBatch256(b *testing.B) {
	const batch = 256
	const bufs = benchCap / batch
	full := make(chan []uint64, bufs)
	free := make(chan []uint64, bufs)
	for range bufs {
		free <- make([]uint64, batch)
	}
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	go func() {
		for s := 0; s < b.N; {
			k := min(batch, b.N-s)
			items := (<-free)[:k]
			for i := range k {
				items[i] = uint64(s + i)
			}
			full <- items
			s += k
		}
	}()
	var sum uint64
	for got := 0; got < b.N; {
		items := <-full
		for _, v := range items {
			sum += v
		}
		got += len(items)
		free <- items[:cap(items)]
	}
	b.StopTimer()
	checkSum(b, sum, b.N)
	reportItems(b)
}

// BenchmarkFloor256 is the single-goroutine floor: the same per-item work,
// write a batch of 256 into a slice and read it back, with no hand-off.
func BenchmarkFloor256(b *testing.B) {
	const batch = 256
	items := make([]uint64, batch)
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	var sum uint64
	for s := 0; s < b.N; {
		k := min(batch, b.N-s)
		for i := range k {
			items[i] = uint64(s + i)
		}
		for _, v := range items[:k] {
			sum += v
		}
		s += k
	}
	b.StopTimer()
	checkSum(b, sum, b.N)
	reportItems(b)
}

// benchPipeline3 is three goroutines joined by two rings (source,
// pass-through stage, sink): more goroutines than cores on a 2-core machine,
// the case where a spinning waiter steals the core its peer needs.
func benchPipeline3(b *testing.B, batch int) {
	r1, err := New[uint64](benchCap, SingleProducer)
	if err != nil {
		b.Fatal(err)
	}
	r2, err := New[uint64](benchCap, SingleProducer)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(8)
	b.ResetTimer()
	go func() {
		items := make([]uint64, batch)
		for s := 0; s < b.N; {
			k := min(batch, b.N-s)
			for i := range k {
				items[i] = uint64(s + i)
			}
			if _, err := r1.Put(ctx, items[:k]); err != nil {
				panic(err)
			}
			s += k
		}
		r1.Close()
	}()
	go func() {
		buf := make([]uint64, batch)
		for {
			n, err := r1.Get(ctx, buf)
			if err != nil {
				r2.Close()
				return
			}
			if _, err := r2.Put(ctx, buf[:n]); err != nil {
				panic(err)
			}
		}
	}()
	dst := make([]uint64, batch)
	var sum uint64
	got := 0
	for {
		n, err := r2.Get(ctx, dst)
		if err != nil {
			break
		}
		for _, v := range dst[:n] {
			sum += v
		}
		got += n
	}
	b.StopTimer()
	checkSum(b, sum, got)
	if got != b.N {
		b.Fatalf("got %d items, want %d", got, b.N)
	}
	reportItems(b)
}

func BenchmarkPipeline3Batch1(b *testing.B)   { benchPipeline3(b, 1) }
func BenchmarkPipeline3Batch256(b *testing.B) { benchPipeline3(b, 256) }
