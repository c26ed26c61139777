package ring

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var modes = []Mode{SingleProducer, MultiProducer}

func newRing[T any](t *testing.T, capacity int, mode Mode) *Ring[T] {
	t.Helper()
	r, err := New[T](capacity, mode)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitUntil polls cond; it fails the test after 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func seq(lo, hi int) []int {
	s := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

func TestRingCapacityValidation(t *testing.T) {
	for _, c := range []int{-4, 0, 1, 3, 6, 100, 1<<24 + 1, 1 << 25} {
		_, err := New[int](c, SingleProducer)
		if err == nil {
			t.Errorf("New(%d) succeeded, want error", c)
		} else if !strings.Contains(err.Error(), strconv.Itoa(c)) {
			t.Errorf("New(%d) error %q does not name the value", c, err)
		}
	}
	for _, c := range []int{2, 4, 1024, 1 << 24} {
		for _, m := range modes {
			r, err := New[byte](c, m)
			if err != nil {
				t.Fatalf("New(%d, %v): %v", c, m, err)
			}
			if r.Cap() != c || r.Len() != 0 || r.Closed() {
				t.Errorf("New(%d, %v): Cap %d Len %d Closed %v", c, m, r.Cap(), r.Len(), r.Closed())
			}
		}
	}
	if _, err := New[int](8, Mode(7)); err == nil {
		t.Error("New with Mode(7) succeeded, want error")
	}
}

func TestRingFIFO(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			for i := range 5 {
				if n, err := r.TryPut([]int{i}); n != 1 || err != nil {
					t.Fatalf("TryPut(%d) = %d, %v", i, n, err)
				}
			}
			if r.Len() != 5 {
				t.Fatalf("Len = %d, want 5", r.Len())
			}
			dst := make([]int, 1)
			for i := range 5 {
				n, err := r.Get(context.Background(), dst)
				if n != 1 || err != nil || dst[0] != i {
					t.Fatalf("Get = %d, %v, item %d; want item %d", n, err, dst[0], i)
				}
			}
			if n, err := r.TryGet(dst); n != 0 || err != nil {
				t.Fatalf("TryGet on empty = %d, %v", n, err)
			}
		})
	}
}

func TestRingBatchWrapAround(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			next, want := 0, 0
			dst := make([]int, 8)
			// Batches of 5 and reads of 3 or 7 walk the cursors across the
			// end of the slot array in every phase.
			for round := range 50 {
				if n, err := r.TryPut(seq(next, next+5)); err != nil || n != min(5, 8-r.Len()+n) {
					t.Fatalf("round %d: TryPut = %d, %v", round, n, err)
				} else {
					next += n
				}
				k := 3 + 4*(round%2)
				n, err := r.TryGet(dst[:k])
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range dst[:n] {
					if v != want {
						t.Fatalf("round %d: got %d, want %d", round, v, want)
					}
					want++
				}
			}
			for r.Len() > 0 {
				n, _ := r.TryGet(dst)
				for _, v := range dst[:n] {
					if v != want {
						t.Fatalf("drain: got %d, want %d", v, want)
					}
					want++
				}
			}
			if want != next {
				t.Fatalf("read %d items, put %d", want, next)
			}
		})
	}
}

func TestRingPutLargerThanCapacity(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 4, m)
			items := seq(0, 103)
			errc := make(chan error, 1)
			go func() {
				n, err := r.Put(context.Background(), items)
				if err == nil && n != len(items) {
					err = errors.New("short Put: " + strconv.Itoa(n))
				}
				errc <- err
			}()
			dst := make([]int, 3)
			for want := 0; want < len(items); {
				n, err := r.Get(context.Background(), dst)
				if err != nil {
					t.Fatal(err)
				}
				if n > 3 {
					t.Fatalf("Get returned %d > len(dst)", n)
				}
				for _, v := range dst[:n] {
					if v != want {
						t.Fatalf("got %d, want %d", v, want)
					}
					want++
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRingTryPutFull(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 4, m)
			if n, err := r.TryPut(seq(0, 3)); n != 3 || err != nil {
				t.Fatalf("TryPut(3) = %d, %v", n, err)
			}
			if n, err := r.TryPut(seq(3, 6)); n != 1 || err != nil {
				t.Fatalf("TryPut into 1 free slot = %d, %v; want 1, nil", n, err)
			}
			if n, err := r.TryPut([]int{9}); n != 0 || err != nil {
				t.Fatalf("TryPut on full = %d, %v; want 0, nil", n, err)
			}
			dst := make([]int, 8)
			if n, _ := r.TryGet(dst); n != 4 || dst[3] != 3 {
				t.Fatalf("TryGet = %d %v", n, dst[:n])
			}
		})
	}
}

func TestRingCloseDrain(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			if _, err := r.TryPut(seq(0, 6)); err != nil {
				t.Fatal(err)
			}
			r.Close()
			r.Close() // idempotent
			if !r.Closed() {
				t.Fatal("Closed() = false after Close")
			}
			if n, err := r.TryPut([]int{1}); n != 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("TryPut after Close = %d, %v", n, err)
			}
			if n, err := r.Put(context.Background(), []int{1}); n != 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after Close = %d, %v", n, err)
			}
			dst := make([]int, 4)
			var got []int
			for {
				n, err := r.Get(context.Background(), dst)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil || n == 0 {
					t.Fatalf("Get = %d, %v", n, err)
				}
				got = append(got, dst[:n]...)
			}
			if len(got) != 6 {
				t.Fatalf("drained %v, want 0..5", got)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("drained %v, want 0..5", got)
				}
			}
			if n, err := r.TryGet(dst); n != 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("TryGet when closed and empty = %d, %v", n, err)
			}
			if n, err := r.GetWait(context.Background(), dst, time.Second); n != 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("GetWait when closed and empty = %d, %v", n, err)
			}
		})
	}
}

func TestRingCloseWakesBlockedGet(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			errc := make(chan error, 1)
			go func() {
				_, err := r.Get(context.Background(), make([]int, 4))
				errc <- err
			}()
			waitUntil(t, "the consumer parks", func() bool { return r.consSleep.Load() == 1 })
			r.Close()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("Get = %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not wake the blocked Get")
			}
		})
	}
}

func TestRingCloseWakesBlockedPut(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 4, m)
			type res struct {
				n   int
				err error
			}
			resc := make(chan res, 1)
			go func() {
				n, err := r.Put(context.Background(), seq(0, 10))
				resc <- res{n, err}
			}()
			waitUntil(t, "the producer parks", func() bool { return r.prodSleep.Load() == 1 })
			r.Close()
			select {
			case got := <-resc:
				if got.n != 4 || !errors.Is(got.err, ErrClosed) {
					t.Fatalf("Put = %d, %v; want 4, ErrClosed", got.n, got.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not wake the blocked Put")
			}
			// The 4 published items are still delivered.
			dst := make([]int, 8)
			if n, err := r.TryGet(dst); n != 4 || err != nil {
				t.Fatalf("TryGet = %d, %v; want 4, nil", n, err)
			}
			if _, err := r.TryGet(dst); !errors.Is(err, ErrClosed) {
				t.Fatalf("TryGet = %v, want ErrClosed", err)
			}
		})
	}
}

func TestRingContextCancelWakesParkedGet(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				n, err := r.Get(ctx, make([]int, 4))
				if n != 0 {
					err = errors.New("Get returned items")
				}
				errc <- err
			}()
			waitUntil(t, "the consumer parks", func() bool { return r.consSleep.Load() == 1 })
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("Get = %v, want context.Canceled", err)
			}
			// The ring still works after a cancelled Get.
			r.TryPut([]int{7})
			dst := make([]int, 1)
			if n, err := r.Get(context.Background(), dst); n != 1 || err != nil || dst[0] != 7 {
				t.Fatalf("Get after cancel = %d, %v, %v", n, err, dst)
			}
		})
	}
}

func TestRingContextCancelWakesParkedPut(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 4, m)
			ctx, cancel := context.WithCancel(context.Background())
			type res struct {
				n   int
				err error
			}
			resc := make(chan res, 1)
			go func() {
				n, err := r.Put(ctx, seq(0, 6))
				resc <- res{n, err}
			}()
			waitUntil(t, "the producer parks", func() bool { return r.prodSleep.Load() == 1 })
			cancel()
			got := <-resc
			if got.n != 4 || !errors.Is(got.err, context.Canceled) {
				t.Fatalf("Put = %d, %v; want 4, context.Canceled", got.n, got.err)
			}
			if r.Closed() || r.Len() != 4 {
				t.Fatalf("after cancelled Put: Closed %v Len %d", r.Closed(), r.Len())
			}
		})
	}
}

func TestRingGetWaitTimeout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			dst := make([]int, 4)
			const d = 30 * time.Millisecond
			for range 2 { // the second call reuses the timer
				start := time.Now()
				n, err := r.GetWait(context.Background(), dst, d)
				if n != 0 || err != nil {
					t.Fatalf("GetWait on empty = %d, %v; want 0, nil", n, err)
				}
				if el := time.Since(start); el < d {
					t.Fatalf("GetWait returned after %v, before %v", el, d)
				}
			}
			if n, err := r.GetWait(context.Background(), dst, 0); n != 0 || err != nil {
				t.Fatalf("GetWait(0) on empty = %d, %v", n, err)
			}
			// An item arriving during the wait is returned at once.
			go func() {
				time.Sleep(10 * time.Millisecond)
				r.TryPut([]int{42})
			}()
			n, err := r.GetWait(context.Background(), dst, 10*time.Second)
			if n != 1 || err != nil || dst[0] != 42 {
				t.Fatalf("GetWait = %d, %v, %d; want 1, nil, 42", n, err, dst[0])
			}
		})
	}
}

func TestRingZeroesReadSlots(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[*int](t, 4, m)
			items := []*int{new(int), new(int), new(int)}
			r.TryPut(items)
			dst := make([]*int, 2)
			r.TryGet(dst)
			r.TryPut(items) // wraps around
			r.TryGet(make([]*int, 8))
			for i, p := range r.buf {
				if p != nil {
					t.Errorf("slot %d still holds a pointer after it was read", i)
				}
			}
		})
	}
}

// TestRingMultiProducerUnpublishedClaim plays a producer that claimed slots
// and was descheduled before publishing: a later producer's batch must not
// become visible ahead of it, and no unwritten slot may be read.
func TestRingMultiProducerUnpublishedClaim(t *testing.T) {
	r := newRing[int](t, 8, MultiProducer)
	start := r.tail.Add(3) - 3 // the stalled producer's claim of 3 slots
	if n, err := r.TryPut([]int{3, 4}); n != 2 || err != nil {
		t.Fatalf("TryPut = %d, %v", n, err)
	}
	dst := make([]int, 8)
	if n, err := r.TryGet(dst); n != 0 || err != nil {
		t.Fatalf("TryGet saw %d items past an unpublished claim (err %v)", n, err)
	}
	r.Close()
	if n, err := r.TryGet(dst); n != 0 || err != nil {
		t.Fatalf("TryGet after Close with a pending claim = %d, %v; want 0, nil", n, err)
	}
	// The stalled producer resumes: writes, then publishes its batch.
	r.write(start, []int{0, 1, 2})
	r.stamps[start&r.mask].Store(start + 3)
	n, err := r.TryGet(dst)
	if n != 5 || err != nil {
		t.Fatalf("TryGet = %d, %v; want 5, nil", n, err)
	}
	for i, v := range dst[:5] {
		if v != i {
			t.Fatalf("got %v, want 0..4", dst[:5])
		}
	}
	if _, err := r.TryGet(dst); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryGet = %v, want ErrClosed", err)
	}
}

// TestRingStressMultiProducer checks that every item from several producers is
// delivered exactly once and in order per producer, with Close racing the
// tail of the run.
func TestRingStressMultiProducer(t *testing.T) {
	const producers = 5
	perProducer := 100_000
	if testing.Short() {
		perProducer = 10_000
	}
	r := newRing[uint64](t, 256, MultiProducer)
	ctx := context.Background()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			batch := make([]uint64, 0, 64)
			for s := 0; s < perProducer; {
				k := min(1+(s*7+p)%64, perProducer-s) // batch sizes 1..64
				batch = batch[:0]
				for i := range k {
					batch = append(batch, uint64(p)<<32|uint64(s+i))
				}
				var n int
				var err error
				if s%3 == 0 {
					n, err = r.TryPut(batch)
				} else {
					n, err = r.Put(ctx, batch)
				}
				if err != nil {
					t.Errorf("producer %d: Put: %v", p, err)
					return
				}
				s += n
			}
		})
	}
	go func() {
		wg.Wait()
		r.Close()
	}()
	next := make([]int, producers)
	dst := make([]uint64, 100)
	total := 0
	for i := 0; ; i++ {
		var n int
		var err error
		switch i % 3 {
		case 0:
			n, err = r.Get(ctx, dst)
		case 1:
			n, err = r.GetWait(ctx, dst, time.Millisecond)
		default:
			n, err = r.TryGet(dst[:1+i%100])
		}
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range dst[:n] {
			p, s := int(v>>32), int(v&(1<<32-1))
			if p >= producers || s != next[p] {
				t.Fatalf("got producer %d item %d, want item %d", p, s, next[p])
			}
			next[p]++
		}
		total += n
	}
	if total != producers*perProducer {
		t.Fatalf("delivered %d items, want %d", total, producers*perProducer)
	}
}

func TestRingAllocs(t *testing.T) {
	ctx := context.Background()
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[*int](t, 256, m)
			items := make([]*int, 200)
			for i := range items {
				items[i] = new(int)
			}
			dst := make([]*int, 256)
			if a := testing.AllocsPerRun(100, func() {
				r.Put(ctx, items)
				r.Get(ctx, dst)
			}); a != 0 {
				t.Errorf("Put+Get: %v allocs per run, want 0", a)
			}
			if a := testing.AllocsPerRun(100, func() {
				r.TryPut(items)
				r.TryGet(dst)
			}); a != 0 {
				t.Errorf("TryPut+TryGet: %v allocs per run, want 0", a)
			}
			r.GetWait(ctx, dst, time.Millisecond) // makes the reusable timer
			if a := testing.AllocsPerRun(5, func() {
				r.GetWait(ctx, dst, time.Millisecond) // parks on the timer
			}); a != 0 {
				t.Errorf("GetWait timing out: %v allocs per run, want 0", a)
			}
		})
	}
}

// TestRingAllocsParkWake checks that parking and waking both sides does not
// allocate: a producer pushes many more items than the ring holds, so both
// sides wait and park repeatedly.
func TestRingAllocsParkWake(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 4, m)
			ctx := context.Background()
			items := seq(0, 64)
			dst := make([]int, 4)
			start, done := make(chan struct{}), make(chan struct{})
			go func() {
				for range start {
					for i := range 50 {
						r.Put(ctx, items)
						if i%10 == 0 {
							time.Sleep(time.Millisecond) // let the consumer park
						}
					}
					done <- struct{}{}
				}
			}()
			defer close(start)
			a := testing.AllocsPerRun(3, func() {
				start <- struct{}{}
				for got := 0; got < 50*len(items); {
					n, _ := r.Get(ctx, dst)
					got += n
				}
				<-done
			})
			if a != 0 {
				t.Errorf("%v allocs per run, want 0", a)
			}
		})
	}
}

// TestRingIdleConsumerParks checks that a consumer waiting on an empty ring
// parks and then does no work at all: its wait-round counter stays put.
func TestRingIdleConsumerParks(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			r := newRing[int](t, 8, m)
			errc := make(chan error, 1)
			go func() {
				_, err := r.Get(context.Background(), make([]int, 1))
				errc <- err
			}()
			waitUntil(t, "the consumer parks", func() bool { return r.consSleep.Load() == 1 })
			rounds := r.waitRounds.Load()
			if rounds > yields+2 {
				t.Errorf("consumer took %d wait rounds before parking", rounds)
			}
			time.Sleep(50 * time.Millisecond)
			if got := r.waitRounds.Load(); got != rounds {
				t.Fatalf("parked consumer ran %d more wait rounds", got-rounds)
			}
			if r.consSleep.Load() != 1 {
				t.Fatal("consumer left its parked state with nothing published")
			}
			r.TryPut([]int{1})
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
