package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

func stat(t *testing.T, e *engine.Engine, name string) engine.NodeSnapshot {
	t.Helper()
	for _, s := range e.Stats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for %s", name)
	return engine.NodeSnapshot{}
}

func TestEngineEmitDerivedAcksParentWhenChildrenDone(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	store := engine.NewMemoryStore()
	const n = 5000
	_, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
filters:
  - {name: triple, class: MockFilter, mode: emit, emit: 3, match: gen}
outputs:
  - {name: out, class: Rec, match: triple}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len() != 3*n {
		t.Fatalf("got %d derived packets, want %d", rec.Len(), 3*n)
	}
	perSeq := map[int64]int{}
	for _, p := range rec.Payloads() {
		_, seq, ok := mock.ParsePayload(p)
		if !ok {
			t.Fatalf("bad payload %q", p)
		}
		perSeq[seq]++
	}
	for i := int64(0); i < n; i++ {
		if perSeq[i] != 3 {
			t.Fatalf("seq %d has %d children, want 3", i, perSeq[i])
		}
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d: parents not acked", cp.Offset, n)
	}
}

func TestEngineDropIsCountedAndAcked(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	store := engine.NewMemoryStore()
	const n = 10000
	e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
filters:
  - {name: sample, class: MockFilter, drop_ratio: 0.25, match: gen}
outputs:
  - {name: out, class: Rec, match: sample}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, e, "sample")
	if st.Drops["mock_ratio"] != n/4 {
		t.Fatalf("drops = %v, want %d for reason mock_ratio", st.Drops, n/4)
	}
	if rec.Len() != n-n/4 {
		t.Fatalf("delivered %d, want %d", rec.Len(), n-n/4)
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d: dropped packets must be acked", cp.Offset, n)
	}
}

func TestEngineRetriesThenDelivers(t *testing.T) {
	rec := mock.NewRecorder()
	rec.FailNext(2)
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	const n = 1000
	e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
outputs:
  - {name: out, class: Rec, match: gen, retries: 3, retry_backoff: 1ms}
`, n), engine.NewMemoryStore(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, rec.Payloads(), "0", n, false)
	if got := stat(t, e, "out").Retries; got != 2 {
		t.Fatalf("retries = %d, want 2", got)
	}
}

// TestEngineDeadLetterReceivesFailedPackets: the one failure rule.
// Permanent failures go to the dead-letter output at once (no retry);
// retryable ones are retried until they succeed and never dead-lettered,
// unless dead_letter_after is set and they lasted that long.
func TestEngineDeadLetterReceivesFailedPackets(t *testing.T) {
	const n = 4000
	cases := []struct {
		name, output string
		n            int
		wantDLQ      int
		noRetries    bool
	}{
		{"permanent-at-once", "fail_ratio: 0.1, fail_permanent: true, retries: 5", n, n / 10, true},
		{"retryable-never", "fail_ratio: 0.1, retries: 0", n, 0, false},
		{"retryable-after-dead_letter_after", "fail_first: 1000000, retries: 0, dead_letter_after: 50ms", 300, 300, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dlq := mock.NewRecorder()
			reg := testRegistry(t, map[string]*mock.Recorder{"Dlq": dlq})
			store := engine.NewMemoryStore()
			e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
outputs:
  - {name: flaky, class: MockOutput, %s, retry_backoff: 1ms, retry_backoff_max: 5ms, dead_letter: dlq, match: gen}
  - {name: dlq, class: Dlq}
`, tc.n, tc.output), store, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			st := stat(t, e, "flaky")
			if st.Out+uint64(dlq.Len()) != uint64(tc.n) {
				t.Fatalf("delivered %d + dead-lettered %d != %d", st.Out, dlq.Len(), tc.n)
			}
			if dlq.Len() != tc.wantDLQ || st.DeadLettered != uint64(tc.wantDLQ) {
				t.Fatalf("dead-lettered %d (stat %d), want %d", dlq.Len(), st.DeadLettered, tc.wantDLQ)
			}
			if tc.noRetries && st.Retries != 0 {
				t.Fatalf("%d retries of permanent failures", st.Retries)
			}
			if st.Held != 0 {
				t.Fatalf("%d packets still counted as held", st.Held)
			}
			for _, a := range dlq.Attrs() {
				if !strings.Contains(a["dbus_error"], "injected") || a["dbus_failed_at"] != "flaky" {
					t.Fatalf("dead-lettered packet lacks its reason: %v", a)
				}
			}
			if cp, _, _ := store.Load("gen"); cp.Offset != int64(tc.n) {
				t.Fatalf("checkpoint %d, want %d", cp.Offset, tc.n)
			}
		})
	}
}

func TestEngineHoldsFailedPacketsWithoutDeadLetter(t *testing.T) {
	reg := testRegistry(t, nil)
	store := engine.NewMemoryStore()
	e := newEngine(t, reg, `
engine: {checkpoint_interval: 10ms, shutdown_timeout: 300ms}
inputs:
  - {name: gen, class: MockInput, count: 1000, payload: 16}
outputs:
  - {name: broken, class: MockOutput, fail_first: 1000000, retries: 1, retry_backoff: 1ms, match: gen}
`, engine.Options{Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	runErr := e.Run(ctx)
	if runErr == nil || !strings.Contains(runErr.Error(), "not acked") {
		t.Fatalf("Run = %v, want a hard-stop error naming unacked packets", runErr)
	}
	if cp, ok, _ := store.Load("gen"); ok && cp.Offset != 0 {
		t.Fatalf("checkpoint advanced to %d past held packets", cp.Offset)
	}
	st := stat(t, e, "broken")
	if st.Held == 0 || st.Out != 0 {
		t.Fatalf("held=%d out=%d: want packets held and none acked", st.Held, st.Out)
	}
	if !strings.Contains(st.LastError, "injected") {
		t.Fatalf("last error %q does not name the failure", st.LastError)
	}
}

// panicFilter panics on every packet whose sequence is a multiple of 100.
type panicFilter struct{}

func (panicFilter) Process(fc engine.FilterContext, p *pack.Packet) error {
	if _, seq, _ := mock.ParsePayload(p.Payload); seq%100 == 0 {
		panic(fmt.Sprintf("boom at %d", seq))
	}
	fc.Emit(p)
	return nil
}

func TestEngineFilterPanicRestartsAndLosesNothing(t *testing.T) {
	rec, dlq := mock.NewRecorder(), mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec, "Dlq": dlq})
	reg.MustRegister(engine.Spec{Class: "Panicky", Kind: engine.KindFilter,
		NewFilter: func(*engine.Conf) (engine.Filter, error) { return panicFilter{}, nil }})
	store := engine.NewMemoryStore()
	const n = 1000
	e, err := run(t, reg, fmt.Sprintf(`
engine: {restart_backoff: 1ms}
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
filters:
  - {name: p, class: Panicky, match: gen, dead_letter: dlq}
outputs:
  - {name: out, class: Rec, match: p}
  - {name: dlq, class: Dlq}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len()+dlq.Len() != n || dlq.Len() != n/100 {
		t.Fatalf("out=%d dlq=%d, want %d and %d", rec.Len(), dlq.Len(), n-n/100, n/100)
	}
	st := stat(t, e, "p")
	if st.Panics != n/100 || st.Restarts != n/100 {
		t.Fatalf("panics=%d restarts=%d, want %d", st.Panics, st.Restarts, n/100)
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d", cp.Offset, n)
	}
}

// panicOutput panics on its first two writes.
type panicOutput struct {
	n   *atomic.Int32
	rec *mock.Recorder
}

func (o panicOutput) Write(ctx context.Context, b []*pack.Packet) error {
	if o.n.Add(1) <= 2 {
		panic("output boom")
	}
	return o.rec.Write(ctx, b)
}

func TestEngineOutputPanicRestartsAndRetries(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, nil)
	var calls atomic.Int32
	reg.MustRegister(engine.Spec{Class: "PanicOut", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return panicOutput{&calls, rec}, nil }})
	const n = 2000
	e, err := run(t, reg, fmt.Sprintf(`
engine: {restart_backoff: 1ms}
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 16}
outputs:
  - {name: out, class: PanicOut, match: gen, retries: 5, retry_backoff: 1ms}
`, n), engine.NewMemoryStore(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, rec.Payloads(), "0", n, false)
	if st := stat(t, e, "out"); st.Panics != 2 || st.Restarts != 2 {
		t.Fatalf("panics=%d restarts=%d, want 2", st.Panics, st.Restarts)
	}
}

func TestEngineInputPanicRestartsFromCheckpoint(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	var runs atomic.Int32
	reg.MustRegister(engine.Spec{Class: "CrashyInput", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return &crashyInput{runs: &runs}, nil }})
	store := engine.NewMemoryStore()
	_, err := run(t, reg, `
engine: {restart_backoff: 1ms}
inputs:
  - {name: in, class: CrashyInput}
outputs:
  - {name: out, class: Rec, match: in}
`, store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 2 {
		t.Fatalf("input ran %d times, want 2 (one panic, one restart)", runs.Load())
	}
	checkSeqs(t, rec.Payloads(), "0", 1000, true)
	if cp, _, _ := store.Load("in"); cp.Offset != 1000 {
		t.Fatalf("checkpoint %d, want 1000", cp.Offset)
	}
}

// crashyInput emits 0..999, panicking once after 500 on its first run;
// it resumes from Stream.Resume.
type crashyInput struct{ runs *atomic.Int32 }

func (c *crashyInput) Run(ctx context.Context, ic engine.InputContext) error {
	first := c.runs.Add(1) == 1
	s, err := ic.Stream("")
	if err != nil {
		return err
	}
	start := int64(0)
	if cp, ok := s.Resume(); ok {
		start = cp.Offset
	}
	for seq := start; seq < 1000; seq++ {
		if first && seq == 500 {
			panic("input boom")
		}
		p, err := ic.NewPacket(ctx)
		if err != nil {
			return nil
		}
		p.Payload = fmt.Appendf(p.Payload[:0], "0:%d", seq)
		p.Pos.Offset = seq + 1
		p.Flags |= pack.FlagBoundary
		if err := ic.Emit(ctx, s, p); err != nil {
			return nil
		}
	}
	return ic.Flush(ctx)
}

func TestEngineShutdownLosesNothingAndResumes(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	dir := t.TempDir()
	conf := fmt.Sprintf(`
engine: {checkpoint_dir: %s, checkpoint_interval: 5ms}
inputs:
  - {name: gen, class: MockInput, payload: 32, rate: 200000}
filters:
  - {name: f, class: MockFilter, match: gen}
outputs:
  - {name: out, class: Rec, match: f}
`, filepath.Join(dir, "ckpt"))
	var last int64
	for round := 0; round < 3; round++ {
		store, err := engine.OpenFileStore(filepath.Join(dir, "ckpt"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := run(t, reg, conf, store, 150*time.Millisecond); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		reopened, err := engine.OpenFileStore(filepath.Join(dir, "ckpt"))
		if err != nil {
			t.Fatal(err)
		}
		cp, ok, _ := reopened.Load("gen")
		if !ok || cp.Offset <= last {
			t.Fatalf("round %d: checkpoint %+v did not advance past %d", round, cp, last)
		}
		last = cp.Offset
	}
	// Orderly shutdowns: every packet up to the last checkpoint delivered
	// exactly once (nothing in flight was lost or duplicated).
	checkSeqs(t, rec.Payloads(), "0", last, false)
	if int64(rec.Len()) != last {
		t.Fatalf("delivered %d, checkpoint %d: they must match after orderly shutdowns", rec.Len(), last)
	}
}

func TestEngineManyInputsOneOutput(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	store := engine.NewMemoryStore()
	const n = 20000
	_, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: in1, class: MockInput, count: %[1]d, payload: 16}
  - {name: in2, class: MockInput, count: %[1]d, payload: 16}
  - {name: in3, class: MockInput, count: %[1]d, payload: 16}
  - {name: in4, class: MockInput, count: %[1]d, payload: 16, streams: 3}
filters:
  - {name: merge, class: MockFilter, match: "in*"}
outputs:
  - {name: out, class: Rec, match: merge}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len() != 6*n {
		t.Fatalf("got %d, want %d", rec.Len(), 6*n)
	}
	for _, k := range []string{"in1", "in2", "in3", "in4/0", "in4/1", "in4/2"} {
		if cp, _, _ := store.Load(k); cp.Offset != n {
			t.Fatalf("checkpoint %s = %d, want %d", k, cp.Offset, n)
		}
	}
}

func TestEngineBackPressureBoundsPool(t *testing.T) {
	reg := testRegistry(t, nil)
	e := newEngine(t, reg, `
engine: {batch: 16, ring: 64}
inputs:
  - {name: gen, class: MockInput, payload: 16, pool: 64}
outputs:
  - {name: slow, class: MockOutput, latency: 2ms, match: gen}
`, engine.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var maxInFlight int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, s := range e.Stats() {
				if s.Name == "gen" && s.InFlight > maxInFlight {
					maxInFlight = s.InFlight
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	st := stat(t, e, "gen")
	if maxInFlight > 64 {
		t.Fatalf("in flight reached %d with a pool of 64", maxInFlight)
	}
	if st.PoolWaits == 0 {
		t.Fatalf("input never waited for its pool under a slow output")
	}
}

func TestEnginePauseResumeStopsReading(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	e := newEngine(t, reg, `
inputs:
  - {name: gen, class: MockInput, payload: 16, rate: 50000}
outputs:
  - {name: out, class: Rec, match: gen}
`, engine.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > 0 }, "nothing delivered before the pause")
	if err := e.Pause("gen"); err != nil {
		t.Fatal(err)
	}
	if err := e.Pause("out"); err == nil {
		t.Fatalf("pausing an output must fail")
	}
	if err := e.Pause("nope"); err == nil {
		t.Fatalf("pausing an unknown plugin must fail")
	}
	// Packets in flight at the pause land; then nothing more arrives.
	testenv.Eventually(t, 10*time.Second, func() bool { return stat(t, e, "gen").InFlight == 0 }, "in-flight packets never landed after the pause")
	before := rec.Len()
	testenv.Never(t, 80*time.Millisecond, func() bool { return rec.Len() != before }, "paused input still delivered packets")
	if err := e.Resume("gen"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > before }, "resumed input delivers nothing")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// asyncOut completes batches from another goroutine, out of order.
type asyncOut struct {
	mu   sync.Mutex
	seen map[string]int
	fail atomic.Int32
}

func (a *asyncOut) Write(context.Context, []*pack.Packet) error {
	return errors.New("sync path unused")
}

func (a *asyncOut) WriteAsync(_ context.Context, b []*pack.Packet, c engine.Completion) {
	a.mu.Lock()
	for _, p := range b {
		a.seen[string(p.Payload)]++
	}
	a.mu.Unlock()
	failFirst := a.fail.Add(1) == 1
	go func() {
		time.Sleep(time.Duration(len(b)%3) * time.Millisecond)
		if failFirst {
			errs := make([]error, len(b))
			errs[0] = errors.New("first packet rejected once")
			c.Done(&engine.BatchError{Errs: errs})
			return
		}
		c.Done(nil)
	}()
}

func TestEngineAsyncOutputOutOfOrderCompletions(t *testing.T) {
	reg := testRegistry(t, nil)
	ao := &asyncOut{seen: map[string]int{}}
	reg.MustRegister(engine.Spec{Class: "Async", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return ao, nil }})
	store := engine.NewMemoryStore()
	const n = 20000
	_, err := run(t, reg, fmt.Sprintf(`
engine: {batch: 100}
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 8}
outputs:
  - {name: out, class: Async, match: gen, in_flight: 4, retry_backoff: 1ms}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ao.seen) != n {
		t.Fatalf("sink saw %d distinct packets, want %d", len(ao.seen), n)
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d", cp.Offset, n)
	}
}

// permOut rejects packets whose seq is odd permanently, once.
type permOut struct{ rec *mock.Recorder }

func (o permOut) Write(ctx context.Context, b []*pack.Packet) error {
	errs := make([]error, len(b))
	failed := false
	var ok []*pack.Packet
	for i, p := range b {
		if _, seq, _ := mock.ParsePayload(p.Payload); seq%2 == 1 {
			errs[i] = engine.Permanent(errors.New("mapping rejected"))
			failed = true
			continue
		}
		ok = append(ok, p)
	}
	o.rec.Write(ctx, ok)
	if failed {
		return &engine.BatchError{Errs: errs}
	}
	return nil
}

func TestEnginePermanentErrorsSkipRetries(t *testing.T) {
	rec, dlq := mock.NewRecorder(), mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Dlq": dlq})
	reg.MustRegister(engine.Spec{Class: "Perm", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return permOut{rec}, nil }})
	const n = 1000
	e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 8}
outputs:
  - {name: out, class: Perm, match: gen, retries: 5, retry_backoff: 1s, dead_letter: dlq}
  - {name: dlq, class: Dlq}
`, n), engine.NewMemoryStore(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Len() != n/2 || dlq.Len() != n/2 {
		t.Fatalf("delivered %d, dead-lettered %d, want %d each", rec.Len(), dlq.Len(), n/2)
	}
	if r := stat(t, e, "out").Retries; r != 0 {
		t.Fatalf("permanent errors were retried %d times", r)
	}
}

func TestEngineHeldPacketWatchdogNamesStuckOutput(t *testing.T) {
	reg := testRegistry(t, nil)
	var logs strings.Builder
	var mu sync.Mutex
	e := newEngine(t, reg, `
engine: {held_warn: 50ms}
inputs:
  - {name: gen, class: MockInput, count: 10, payload: 8}
outputs:
  - {name: stuck, class: MockOutput, latency: 2s, match: gen}
  - {name: fine, class: MockOutput, match: gen}
`, engine.Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	// The stuck output holds its batch for 2s; the watchdog names it
	// once held_warn (50ms) has passed.
	testenv.Eventually(t, 1500*time.Millisecond, func() bool { return len(e.Stuck()) > 0 }, "the watchdog named no stuck output")
	if s := e.Stuck(); len(s) != 1 || s[0] != "stuck" {
		t.Fatalf("stuck outputs %v, want [stuck]", s)
	}
	if h := stat(t, e, "stuck").HeldSeconds; h < 0.05 {
		t.Fatalf("held_seconds %.3f, want > 0.05", h)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "output=stuck") || strings.Contains(logs.String(), "output=fine") {
		t.Fatalf("watchdog log should name only the stuck output:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// deafInput blocks in a call that ignores its context.
type deafInput struct{ block chan struct{} }

func (d deafInput) Run(ctx context.Context, ic engine.InputContext) error {
	<-d.block
	return nil
}

func TestEngineShutdownDoesNotHangOnDeafPlugin(t *testing.T) {
	reg := testRegistry(t, nil)
	block := make(chan struct{})
	defer close(block)
	reg.MustRegister(engine.Spec{Class: "Deaf", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return deafInput{block}, nil }})
	e := newEngine(t, reg, `
engine: {shutdown_timeout: 100ms}
inputs:
  - {name: deaf, class: Deaf}
outputs:
  - {name: out, class: MockOutput, match: deaf}
`, engine.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	runErr := e.Run(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Run took %s with a deaf input", took)
	}
	if runErr == nil || !strings.Contains(runErr.Error(), "input deaf") {
		t.Fatalf("Run = %v, want an error naming the stuck input", runErr)
	}
}

func TestEngineInlineOutputDeliversAndDeadLetters(t *testing.T) {
	dlq := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Dlq": dlq})
	store := engine.NewMemoryStore()
	const n = 30000
	e, err := run(t, reg, fmt.Sprintf(`
inputs:
  - {name: gen, class: MockInput, count: %d, payload: 32}
filters:
  - {name: f, class: MockFilter, match: gen, drop_ratio: 0.1}
outputs:
  - {name: sink, class: MockOutput, fail_ratio: 0.01, fail_permanent: true, retries: 0, retry_backoff: 1ms, dead_letter: dlq, match: f}
  - {name: dlq, class: Dlq}
`, n), store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, e, "sink")
	if st.QueueCap != 0 {
		t.Fatalf("sink has a ring (cap %d): it should run inline in the input's goroutine", st.QueueCap)
	}
	kept := uint64(n - n/10)
	if st.Out+uint64(dlq.Len()) != kept || dlq.Len() == 0 {
		t.Fatalf("delivered %d + dead-lettered %d, want %d in all", st.Out, dlq.Len(), kept)
	}
	if cp, _, _ := store.Load("gen"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d", cp.Offset, n)
	}
}

func TestEngineFuseOutputsCanBeTurnedOff(t *testing.T) {
	reg := testRegistry(t, nil)
	e, err := run(t, reg, `
engine: {fuse_outputs: false}
inputs:
  - {name: gen, class: MockInput, count: 1000}
outputs:
  - {name: sink, class: MockOutput, match: gen}
`, engine.NewMemoryStore(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st := stat(t, e, "sink"); st.QueueCap == 0 || st.Out != 1000 {
		t.Fatalf("queue cap %d out %d: want a ring and every packet", st.QueueCap, st.Out)
	}
}

func TestEngineOutputHistograms(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	e, err := run(t, reg, `
engine: {batch: 100}
inputs:
  - {name: gen, class: MockInput, count: 1000, payload: 8}
outputs:
  - {name: out, class: Rec, match: gen}
`, engine.NewMemoryStore(), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st := stat(t, e, "out")
	if st.BatchSize == nil || st.WriteSeconds == nil || st.AckSeconds == nil {
		t.Fatalf("output histograms missing: %+v", st)
	}
	if st.BatchSize.Count != st.Batches || st.BatchSize.Sum != 1000 {
		t.Fatalf("batch size histogram count %d sum %v, want %d writes of 1000 packets", st.BatchSize.Count, st.BatchSize.Sum, st.Batches)
	}
	if st.AckSeconds.Count == 0 || st.AckSeconds.Count > st.Batches {
		t.Fatalf("ack latency samples %d for %d batches", st.AckSeconds.Count, st.Batches)
	}
}

// burstInput emits n packets with NewPackets/EmitBatch in bursts of
// irregular sizes; with fail set, its last EmitBatch runs on a canceled
// context against a full window.
type burstInput struct{ n int }

func (b burstInput) Run(ctx context.Context, ic engine.InputContext) error {
	st, err := ic.Stream("")
	if err != nil {
		return err
	}
	buf := make([]*pack.Packet, 128)
	seq := 0
	for size := 1; seq < b.n; size = size%97 + 7 {
		n, err := ic.NewPackets(ctx, buf[:min(size, b.n-seq)])
		if err != nil {
			return err
		}
		if n < 1 || n > size {
			return fmt.Errorf("NewPackets gave %d packets for %d", n, size)
		}
		for _, p := range buf[:n] {
			p.Payload = fmt.Appendf(p.Payload[:0], "0:%d", seq)
			seq++
			p.Pos.Offset = int64(seq)
			p.Flags |= pack.FlagBoundary
		}
		if err := ic.EmitBatch(ctx, st, buf[:n]); err != nil {
			return err
		}
	}
	return ic.Flush(ctx)
}

// TestEngineInputBatchAPI: packets taken with NewPackets and emitted with
// EmitBatch in bursts of every size, through a pool smaller than a burst
// and a window that fills, arrive once each and in order, and the
// checkpoint reaches the last one.
func TestEngineInputBatchAPI(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	const n = 20000
	reg.MustRegister(engine.Spec{Class: "Burst", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) { return burstInput{n: n}, nil }})
	store := engine.NewMemoryStore()
	_, err := run(t, reg, `
engine: {batch: 16}
inputs:
  - {name: in, class: Burst, pool: 64, window: 32}
outputs:
  - {name: out, class: Rec, match: in}
`, store, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ps := rec.Payloads()
	if len(ps) != n {
		t.Fatalf("got %d packets, want %d", len(ps), n)
	}
	for i, p := range ps {
		if _, seq, ok := mock.ParsePayload(p); !ok || seq != int64(i) {
			t.Fatalf("packet %d is %q", i, p)
		}
	}
	if cp, _, _ := store.Load("in"); cp.Offset != n {
		t.Fatalf("checkpoint %d, want %d", cp.Offset, n)
	}
}

// inputFunc is an Input from a function.
type inputFunc func(ctx context.Context, ic engine.InputContext) error

func (f inputFunc) Run(ctx context.Context, ic engine.InputContext) error { return f(ctx, ic) }

// neverOutput never completes a write until its context ends.
type neverOutput struct{}

func (neverOutput) Write(ctx context.Context, _ []*pack.Packet) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestEngineEmitBatchFullWindowEndsWithContext: an EmitBatch waiting for
// window space (nothing is acked) returns an error when the engine stops,
// instead of hanging.
func TestEngineEmitBatchFullWindowEndsWithContext(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{})
	got := make(chan error, 1)
	reg.MustRegister(engine.Spec{Class: "Stuck", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) {
			return inputFunc(func(ctx context.Context, ic engine.InputContext) error {
				st, err := ic.Stream("")
				if err != nil {
					return err
				}
				// The output never acks: 8 packets fill the window, the
				// 9th EmitBatch waits until the engine stops.
				buf := make([]*pack.Packet, 8)
				for round := 0; round < 2; round++ {
					n, err := ic.NewPackets(ctx, buf)
					if err != nil {
						got <- err
						return nil
					}
					if err := ic.EmitBatch(ctx, st, buf[:n]); err != nil {
						got <- err
						return nil
					}
					if err := ic.Flush(ctx); err != nil {
						got <- err
						return nil
					}
				}
				got <- nil
				return nil
			}), nil
		}})
	reg.MustRegister(engine.Spec{Class: "Never", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return neverOutput{}, nil }})
	e := newEngine(t, reg, `
engine: {batch: 4, shutdown_timeout: 200ms}
inputs:
  - {name: in, class: Stuck, pool: 32, window: 8}
outputs:
  - {name: out, class: Never, match: in}
`, engine.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return stat(t, e, "in").InFlight == 8 }, "the input never filled its window")
	cancel()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("the second EmitBatch succeeded on a full window")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EmitBatch did not return after the engine stopped")
	}
	<-done
}

// TestEngineStopEndsInputThatNeverBlocks: an input whose pool never runs
// dry and whose source never blocks (it ignores ctx between packets, as a
// line reader on a large file does) still ends at its next NewPacket once
// the engine stops, instead of reading its source to the end.
func TestEngineStopEndsInputThatNeverBlocks(t *testing.T) {
	rec := mock.NewRecorder()
	reg := testRegistry(t, map[string]*mock.Recorder{"Rec": rec})
	const limit = 1 << 30
	var emitted atomic.Int64
	reg.MustRegister(engine.Spec{Class: "Busy", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) {
			return inputFunc(func(_ context.Context, ic engine.InputContext) error {
				st, err := ic.Stream("")
				if err != nil {
					return err
				}
				for i := int64(1); i <= limit; i++ {
					p, err := ic.NewPacket(context.Background())
					if err != nil {
						return nil
					}
					p.Pos.Offset = i
					p.Flags |= pack.FlagBoundary
					if err := ic.Emit(context.Background(), st, p); err != nil {
						return nil
					}
					emitted.Add(1)
				}
				return nil
			}), nil
		}})
	e := newEngine(t, reg, `
inputs:
  - {name: in, class: Busy}
outputs:
  - {name: out, class: Rec, match: in}
`, engine.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.Len() > 1000 }, "nothing delivered")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testenv.Scaled(10 * time.Second)):
		t.Fatalf("the engine did not stop: the input kept reading (%d emitted)", emitted.Load())
	}
	if n := emitted.Load(); n >= limit {
		t.Fatalf("the input read its whole source (%d) after the stop", n)
	}
	if int64(rec.Len()) != emitted.Load() {
		t.Fatalf("delivered %d of %d emitted packets", rec.Len(), emitted.Load())
	}
}

// TestEngineInputCommitIsSynchronous: a position an input Marks and then
// Commits is in the store when Commit returns, before any packet flowed
// and long before the commit interval.
func TestEngineInputCommitIsSynchronous(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{})
	store := engine.NewMemoryStore()
	committed := make(chan engine.Checkpoint, 1)
	reg.MustRegister(engine.Spec{Class: "Starter", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) {
			return inputFunc(func(ctx context.Context, ic engine.InputContext) error {
				st, err := ic.Stream("")
				if err != nil {
					return err
				}
				if err := ic.Mark(ctx, st, pack.Pos{Offset: 42, Token: []byte("start")}); err != nil {
					return err
				}
				if err := ic.Commit(ctx); err != nil {
					return err
				}
				cp, _, _ := store.Load("in")
				committed <- cp
				<-ctx.Done()
				return nil
			}), nil
		}})
	reg.MustRegister(engine.Spec{Class: "Never", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return neverOutput{}, nil }})
	e := newEngine(t, reg, `
engine: {checkpoint_interval: 1h}
inputs:
  - {name: in, class: Starter}
outputs:
  - {name: out, class: Never, match: in}
`, engine.Options{Store: store})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case cp := <-committed:
		if cp.Offset != 42 || string(cp.Token) != "start" {
			t.Fatalf("checkpoint after Commit: %+v, want offset 42 token start", cp)
		}
	case <-time.After(testenv.Scaled(10 * time.Second)):
		t.Fatal("Commit did not return")
	}
	cancel()
	<-done
}
