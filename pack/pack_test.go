package pack

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

func TestPackWindowOutOfOrderAcks(t *testing.T) {
	w, err := NewWindow(64)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ps := make([]*Packet, 10)
	for i := range ps {
		ps[i] = &Packet{}
		ps[i].Pos.Offset = int64(i + 1)
		ps[i].Flags = FlagBoundary
		if err := w.Track(ctx, ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.Publish()
	// Ack 1, 2, 5, 9: watermark stays at 0 because seq 0 is not done.
	for _, i := range []int{1, 2, 5, 9} {
		w.Done(ps[i])
	}
	if _, _, _, ok := w.Checkpoint(nil); ok {
		t.Fatalf("checkpoint available before seq 0 is done")
	}
	w.Done(ps[0])
	off, _, _, ok := w.Checkpoint(nil)
	if !ok || off != 3 {
		t.Fatalf("checkpoint = %d %v, want 3 (seqs 0..2 done)", off, ok)
	}
	for _, i := range []int{3, 4, 6, 7, 8} {
		w.Done(ps[i])
	}
	off, _, _, _ = w.Checkpoint(nil)
	if off != 10 || !w.Drained() {
		t.Fatalf("checkpoint = %d drained=%v, want 10 and drained", off, w.Drained())
	}
}

func TestPackWindowMarkOnlyAtBoundaries(t *testing.T) {
	w, _ := NewWindow(16)
	ctx := context.Background()
	// A "transaction" of 3 rows (no boundary), then a Mark at its end.
	rows := make([]*Packet, 3)
	for i := range rows {
		rows[i] = &Packet{}
		rows[i].Pos.Offset = int64(100 + i)
		w.Track(ctx, rows[i])
	}
	if err := w.Mark(ctx, 200, []byte("gtid-1")); err != nil {
		t.Fatal(err)
	}
	w.Publish()
	w.Done(rows[0])
	w.Done(rows[1])
	if _, _, _, ok := w.Checkpoint(nil); ok {
		t.Fatalf("checkpoint inside a transaction")
	}
	w.Done(rows[2])
	off, tok, _, ok := w.Checkpoint(nil)
	if !ok || off != 200 || string(tok) != "gtid-1" {
		t.Fatalf("checkpoint = %d %q %v, want 200 gtid-1", off, tok, ok)
	}
}

func TestPackWindowFullBlocksUntilAck(t *testing.T) {
	w, _ := NewWindow(4)
	ctx := context.Background()
	ps := make([]*Packet, 5)
	for i := 0; i < 4; i++ {
		ps[i] = &Packet{}
		w.Track(ctx, ps[i])
	}
	w.Publish()
	ps[4] = &Packet{}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := w.Track(tctx, ps[4]); err == nil {
		t.Fatalf("Track succeeded on a full window")
	}
	done := make(chan error, 1)
	go func() { done <- w.Track(ctx, ps[4]) }()
	time.Sleep(5 * time.Millisecond)
	w.Done(ps[0])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ps[4].Seq != 4 {
		t.Fatalf("seq %d, want 4", ps[4].Seq)
	}
}

func TestPackWindowConcurrentAcks(t *testing.T) {
	w, _ := NewWindow(1024)
	ctx := context.Background()
	const n = 100000
	ch := make(chan *Packet, 1024)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ch {
				p.win.Done(p)
			}
		}()
	}
	pool := make([]Packet, 2048)
	for i := 0; i < n; i++ {
		p := &pool[i%len(pool)]
		p.Pos.Offset = int64(i + 1)
		p.Flags = FlagBoundary
		if err := w.Track(ctx, p); err != nil {
			t.Fatal(err)
		}
		w.Publish()
		ch <- p
		if i%1000 == 0 {
			w.Advance()
		}
	}
	close(ch)
	wg.Wait()
	off, _, _, _ := w.Checkpoint(nil)
	if off != n {
		t.Fatalf("checkpoint %d, want %d", off, n)
	}
}

func TestPackPoolBoundedByCountAndBytes(t *testing.T) {
	p, err := NewPool(PoolConfig{Count: 8, MaxBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got []*Packet
	for i := 0; i < 8; i++ {
		pk, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pk)
	}
	if p.TryGet() != nil {
		t.Fatalf("pool handed out more than its count")
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := p.Get(tctx); err == nil {
		t.Fatalf("Get on an empty pool returned")
	}
	for _, pk := range got {
		pk.Release()
	}
	// Byte bound: 2 packets of 60 bytes exceed 100.
	a, _ := p.Get(ctx)
	a.Payload = append(a.Payload, make([]byte, 60)...)
	p.AddOut(Account(a))
	b, _ := p.Get(ctx)
	b.Payload = append(b.Payload, make([]byte, 60)...)
	p.AddOut(Account(b))
	if p.OutBytes() != 120 {
		t.Fatalf("out bytes %d, want 120", p.OutBytes())
	}
	// Drain the local cache so the next Get must check the byte bound.
	var cached []*Packet
	for pk := p.TryGet(); pk != nil; pk = p.TryGet() {
		cached = append(cached, pk)
	}
	tctx2, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	for _, pk := range cached {
		pk.Release()
	}
	if _, err := p.Get(tctx2); err == nil {
		t.Fatalf("Get over the byte bound returned")
	}
	a.Release()
	if p.OutBytes() != 60 {
		t.Fatalf("out bytes %d after release, want 60", p.OutBytes())
	}
	if _, err := p.Get(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPackResetClearsEveryField(t *testing.T) {
	p, _ := NewPool(PoolConfig{Count: 2, MaxPacketBytes: 1024})
	pk, _ := p.Get(context.Background())
	pk.Payload = append(pk.Payload, "hello"...)
	pk.Key = append(pk.Key, "k"...)
	pk.Ts = 5
	pk.Attrs.SetString("a", "b")
	pk.Pos.Offset = 9
	pk.Pos.SetTokenString("tok")
	pk.Flags = FlagBoundary
	pk.Seq = 77
	big := make([]byte, 4096)
	pk.Payload = append(pk.Payload, big...) // oversized: must not be kept
	pk.Release()
	for i := 0; i < 2; i++ {
		q, _ := p.Get(context.Background())
		if len(q.Payload) != 0 || len(q.Key) != 0 || q.Ts != 0 || q.Attrs.Len() != 0 || q.Pos.Offset != 0 ||
			len(q.Pos.Token) != 0 || q.Flags != 0 || q.Seq != 0 || q.Parent() != nil || q.Refs() != 1 {
			t.Fatalf("recycled packet not reset: %+v", q)
		}
		if cap(q.Payload) > 1024 {
			t.Fatalf("oversized buffer (%d) kept in the pool", cap(q.Payload))
		}
	}
}

func TestPackFanOutAndDerivedRelease(t *testing.T) {
	p, _ := NewPool(PoolConfig{Count: 8})
	w, _ := NewWindow(8)
	ctx := context.Background()
	parent, _ := p.Get(ctx)
	parent.Flags = FlagBoundary
	parent.Pos.Offset = 1
	w.Track(ctx, parent)
	w.Publish()
	parent.Retain(1) // two branches
	c1, _ := p.Get(ctx)
	parent.Derive(c1)
	parent.Release() // branch 1 consumed the parent after deriving c1
	if parent.Release() {
		t.Fatalf("parent recycled while a derived packet is alive")
	}
	if _, _, _, ok := w.Checkpoint(nil); ok {
		t.Fatalf("parent done before its child")
	}
	if !c1.Release() {
		t.Fatalf("child not recycled on its last release")
	}
	if off, _, _, ok := w.Checkpoint(nil); !ok || off != 1 {
		t.Fatalf("parent not done after its child: %d %v", off, ok)
	}
	// Get moved all 8 into the owner's cache; the 2 recycled ones are
	// back in the free ring.
	if p.Free() != 2 {
		t.Fatalf("pool has %d free in its ring, want 2", p.Free())
	}
}

func TestPackAttrs(t *testing.T) {
	var a Attrs
	a.SetString("db", "shop")
	a.SetInt("n", 42)
	a.SetFloat("f", 1.5)
	a.SetBool("ok", true)
	if v, _ := a.Str("db"); string(v) != "shop" {
		t.Fatalf("db = %q", v)
	}
	if x, _ := a.Get("n"); x.Kind != KindInt || x.I != 42 {
		t.Fatalf("n = %+v", x)
	}
	if x, _ := a.Get("f"); string(x.AppendText(nil)) != "1.5" {
		t.Fatalf("f = %s", x.AppendText(nil))
	}
	if !a.Rename("db", "database") {
		t.Fatalf("rename failed")
	}
	if _, ok := a.Get("db"); ok {
		t.Fatalf("old name still present")
	}
	if !a.Delete("n") || a.Len() != 3 {
		t.Fatalf("delete: len %d", a.Len())
	}
	var b Attrs
	b.CopyFrom(&a)
	if v, _ := b.Str("database"); string(v) != "shop" {
		t.Fatalf("copy lost database")
	}
}

func TestPackAllocsGetReleaseZero(t *testing.T) {
	p, _ := NewPool(PoolConfig{Count: 1024, BufSize: 128})
	w, _ := NewWindow(4096)
	ctx := context.Background()
	rel := NewReleaser(256)
	batch := make([]*Packet, 0, 256)
	payload := make([]byte, 128)
	rand.New(rand.NewSource(1)).Read(payload)
	f := func() {
		for i := 0; i < 256; i++ {
			pk, err := p.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pk.Payload = append(pk.Payload[:0], payload...)
			pk.Attrs.SetInt("i", int64(i))
			pk.Pos.Offset = int64(i)
			pk.Flags |= FlagBoundary
			w.Track(ctx, pk)
			batch = append(batch, pk)
		}
		w.Publish()
		rel.ReleaseAll(batch)
		rel.Flush()
		batch = batch[:0]
		w.Advance()
	}
	// Warm every packet once (attribute buffers grow on first use).
	for i := 0; i < 8; i++ {
		f()
	}
	allocs := testing.AllocsPerRun(200, f)
	if allocs != 0 {
		t.Fatalf("pool get/track/release allocates %.1f per batch of 256, want 0", allocs)
	}
}

func TestPackWindowRangesAndSinglesMix(t *testing.T) {
	w, _ := NewWindow(64)
	ctx := context.Background()
	ps := make([]*Packet, 20)
	for i := range ps {
		ps[i] = &Packet{}
		ps[i].Pos.Offset = int64(i + 1)
		if i%5 == 4 {
			ps[i].Flags = FlagBoundary // boundaries at 5, 10, 15, 20
		}
		w.Track(ctx, ps[i])
	}
	w.Publish()
	w.DoneRange(ps[5:11]) // 5..10
	w.Done(ps[11])
	if _, _, _, ok := w.Checkpoint(nil); ok {
		t.Fatalf("checkpoint before seq 0..4 are done")
	}
	w.DoneRange(ps[0:5]) // 0..4
	off, _, _, ok := w.Checkpoint(nil)
	if !ok || off != 10 {
		t.Fatalf("checkpoint %d %v, want 10 (boundary of seq 9 is the newest in 0..11)", off, ok)
	}
	if w.Low() != 12 {
		t.Fatalf("low %d, want 12", w.Low())
	}
	w.DoneRange(ps[13:20]) // 13..19, 12 missing
	if off, _, _, _ := w.Checkpoint(nil); off != 10 {
		t.Fatalf("checkpoint moved past the missing seq 12: %d", off)
	}
	w.Done(ps[12])
	if off, _, _, _ := w.Checkpoint(nil); off != 20 || !w.Drained() {
		t.Fatalf("checkpoint %d drained=%v, want 20", off, w.Drained())
	}
}

func TestPackReleaserCoalescesRunsOutOfOrder(t *testing.T) {
	p, _ := NewPool(PoolConfig{Count: 64})
	w, _ := NewWindow(64)
	ctx := context.Background()
	var ps []*Packet
	for i := 0; i < 40; i++ {
		pk, _ := p.Get(ctx)
		pk.Pos.Offset = int64(i + 1)
		pk.Flags = FlagBoundary
		w.Track(ctx, pk)
		ps = append(ps, pk)
	}
	w.Publish()
	rel := NewReleaser(8)
	// Release in an order with runs and gaps: 10..19, 0..4, 30..39, 5..9, 20..29.
	order := []int{}
	for _, r := range [][2]int{{10, 20}, {0, 5}, {30, 40}, {5, 10}, {20, 30}} {
		for i := r[0]; i < r[1]; i++ {
			order = append(order, i)
		}
	}
	for k, i := range order {
		rel.Release(ps[i])
		if k == 24 { // after 10..19, 0..4, 30..39 minus the last: 0..4 and 10..19 done
			rel.Flush()
			if off, _, _, _ := w.Checkpoint(nil); off != 5 {
				t.Fatalf("mid-way checkpoint %d, want 5", off)
			}
		}
	}
	rel.Flush()
	if off, _, _, _ := w.Checkpoint(nil); off != 40 {
		t.Fatalf("checkpoint %d, want 40", off)
	}
}

// TestPackWindowTokensAtRelease: positions are read when packets are done:
// through a Releaser's runs and single releases, over several laps of the
// window, the checkpoint carries the newest boundary's own token, and an
// empty token never shows a stale one from an earlier lap.
func TestPackWindowTokensAtRelease(t *testing.T) {
	p, _ := NewPool(PoolConfig{Count: 16})
	w, _ := NewWindow(8)
	ctx := context.Background()
	rel := NewReleaser(4)
	next := int64(1)
	for lap := 0; lap < 6; lap++ {
		var ps []*Packet
		for i := 0; i < 6; i++ {
			pk, _ := p.Get(ctx)
			pk.Pos.Offset = next
			next++
			if i%2 == 1 {
				pk.Flags = FlagBoundary
				if lap%3 != 2 { // every third lap's boundaries have no token
					pk.Pos.Token = fmt.Appendf(pk.Pos.Token, "tok-%d", pk.Pos.Offset)
				}
			}
			if err := w.Track(ctx, pk); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, pk)
		}
		w.Publish()
		wantOff := ps[5].Pos.Offset
		wantTok := string(ps[5].Pos.Token)
		// Out of order: 2..5 through the releaser (one run), then 0 and 1
		// one by one.
		rel.ReleaseAll(ps[2:])
		rel.Flush()
		if off, _, _, ok := w.Checkpoint(nil); ok && off >= ps[0].Pos.Offset {
			t.Fatalf("lap %d: checkpoint %d before seq %d is done", lap, off, ps[0].Seq)
		}
		ps[0].Release()
		ps[1].Release()
		off, tok, _, ok := w.Checkpoint(nil)
		if !ok || off != wantOff || string(tok) != wantTok {
			t.Fatalf("lap %d: checkpoint %d %q %v, want %d %q", lap, off, tok, ok, wantOff, wantTok)
		}
	}
}

// TestPackPoolResidentBoundedByMaxBytes: packets come back with grown
// buffers; once the pool keeps MaxBytes of them, further grown buffers
// are dropped (counted), whether released one by one or through a
// Releaser. Before, every packet kept its buffer: Count x packet size.
func TestPackPoolResidentBoundedByMaxBytes(t *testing.T) {
	const count, size, maxBytes = 256, 16 << 10, 1 << 20 // 4 MiB of buffers, 1 MiB allowed
	p, err := NewPool(PoolConfig{Count: count, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReleaser(64)
	ctx := context.Background()
	pks := make([]*Packet, 0, count)
	for round := 0; round < 3; round++ {
		for i := 0; i < count; i++ {
			pk, err := p.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pk.Payload = append(pk.Payload[:0], make([]byte, size)...)
			pks = append(pks, pk)
		}
		for i, pk := range pks {
			if i%2 == 0 {
				pk.Release()
			} else {
				r.ReleaseAll(pks[i : i+1])
			}
		}
		r.Flush()
		pks = pks[:0]
		if res := p.Resident(); res > maxBytes {
			t.Fatalf("round %d: pool keeps %d bytes of buffers, MaxBytes %d", round, res, maxBytes)
		}
	}
	if p.Resident() < maxBytes/2 {
		t.Fatalf("pool keeps only %d bytes: buffers dropped below the budget", p.Resident())
	}
	if p.DroppedBuffers() == 0 {
		t.Fatal("no buffer dropped")
	}
	// Sum of what the packets hold agrees with the accounting.
	var held int64
	for i := range p.slab {
		held += int64(cap(p.slab[i].Payload) + cap(p.slab[i].Key))
	}
	if held != p.Resident() {
		t.Fatalf("packets hold %d bytes, Resident says %d", held, p.Resident())
	}
}

// TestPackWindowExactCheckpoint: ExactCheckpoint says whether packets
// were done after the checkpoint's boundary (a transaction's rows before
// its end is marked), for runs released one by one, in bulk
// (ReleaseAll's inlined fast path: found missing there, a binlog ->
// Kafka exactly_once kill loop duplicated the first rows of a source
// transaction) and for marks.
func TestPackWindowExactCheckpoint(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		p, _ := NewPool(PoolConfig{Count: 64})
		w, _ := NewWindow(64)
		ctx := context.Background()
		rel := NewReleaser(16)
		rows := func(n int, boundary bool) {
			var ps []*Packet
			for i := 0; i < n; i++ {
				pk, _ := p.Get(ctx)
				pk.Pos.Offset = 100
				if boundary {
					pk.Flags = FlagBoundary
				}
				if err := w.Track(ctx, pk); err != nil {
					t.Fatal(err)
				}
				ps = append(ps, pk)
			}
			w.Publish()
			if bulk {
				rel.ReleaseAll(ps)
			} else {
				for _, pk := range ps {
					rel.Release(pk)
				}
			}
			rel.Flush()
		}
		check := func(step string, wantOK, wantExact bool) {
			t.Helper()
			_, _, ok, exact := w.ExactCheckpoint(nil)
			if ok != wantOK || exact != wantExact {
				t.Fatalf("bulk=%v %s: ok %v exact %v, want %v %v", bulk, step, ok, exact, wantOK, wantExact)
			}
		}
		check("empty", false, true)
		rows(3, false)
		check("rows before any boundary", false, false)
		if err := w.Mark(ctx, 10, nil); err != nil {
			t.Fatal(err)
		}
		w.Publish()
		check("rows then their mark", true, true)
		rows(5, false)
		check("rows of the next transaction", true, false)
		w.Mark(ctx, 20, nil)
		w.Publish()
		check("next mark", true, true)
		rows(4, true)
		check("boundary packets", true, true)
	}
}
