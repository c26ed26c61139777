package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/internal/testenv"
	"github.com/dbus-project/dbus/pack"
	"github.com/dbus-project/dbus/plugins/mock"
)

// txnOut is a TransactionalOutput that keeps what a sink would: rows
// written since the last commit, and at each commit the positions and
// how many rows they cover.
type txnOut struct {
	mu      sync.Mutex
	bound   string
	load    map[string]engine.Checkpoint
	open    int // rows written since the last commit
	total   int // rows committed
	commits []txnCommit
	failAt  int // fail the commit with this index (1-based), 0: never
}

type txnCommit struct {
	cps  map[string]engine.Checkpoint
	rows int // rows committed so far, this commit included
}

func (o *txnOut) Transactional() bool { return true }
func (o *txnOut) BindTransaction(in string, _ engine.Input) error {
	o.bound = in
	return nil
}
func (o *txnOut) LoadCheckpoints(context.Context) (map[string]engine.Checkpoint, error) {
	return o.load, nil
}
func (o *txnOut) CommitDue() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.open >= 4
}
func (o *txnOut) CommitTransaction(_ context.Context, cps map[string]engine.Checkpoint) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failAt > 0 && len(o.commits)+1 == o.failAt {
		return errors.New("broker said no")
	}
	o.total += o.open
	o.open = 0
	o.commits = append(o.commits, txnCommit{cps: cps, rows: o.total})
	return nil
}
func (o *txnOut) Write(_ context.Context, batch []*pack.Packet) error {
	o.mu.Lock()
	o.open += len(batch)
	o.mu.Unlock()
	return nil
}

// TestEngineTransactionalOutput: an input that marks a start position
// and commits it, then emits transactions of 3 rows each closed by a
// Mark (like the binlog). The output's commits carry positions that
// cover exactly the rows committed (never a transaction's first rows
// without its end), the start position is committed before the input
// goes on, the positions the output loads win over the store, and the
// store never gets the input's positions.
func TestEngineTransactionalOutput(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{})
	store := engine.NewMemoryStore()
	store.Save(map[string]engine.Checkpoint{"in": {Offset: 1, Token: "stale"}})
	out := &txnOut{load: map[string]engine.Checkpoint{"in": {Offset: 100, Token: "t100"}}}
	const txns = 40
	resumed := make(chan engine.Checkpoint, 1)
	started := make(chan int, 1)
	reg.MustRegister(engine.Spec{Class: "Rows", Kind: engine.KindInput,
		NewInput: func(*engine.Conf) (engine.Input, error) {
			return inputFunc(func(ctx context.Context, ic engine.InputContext) error {
				st, err := ic.Stream("")
				if err != nil {
					return err
				}
				cp, _ := st.Resume()
				resumed <- cp
				if err := ic.Mark(ctx, st, pack.Pos{Offset: cp.Offset, Token: []byte("start")}); err != nil {
					return err
				}
				if err := ic.Commit(ctx); err != nil {
					return err
				}
				out.mu.Lock()
				started <- len(out.commits)
				out.mu.Unlock()
				for x := 1; x <= txns; x++ {
					for r := 0; r < 3; r++ {
						p, err := ic.NewPacket(ctx)
						if err != nil {
							return err
						}
						p.Payload = fmt.Appendf(p.Payload[:0], "row %d.%d", x, r)
						if err := ic.Emit(ctx, st, p); err != nil {
							return err
						}
						if r == 1 {
							ic.Flush(ctx) // a batch ends inside the transaction
						}
					}
					if err := ic.Mark(ctx, st, pack.Pos{Offset: cp.Offset + int64(x), Token: fmt.Appendf(nil, "t%d", x)}); err != nil {
						return err
					}
				}
				ic.Flush(ctx)
				<-ctx.Done()
				return nil
			}), nil
		}})
	reg.MustRegister(engine.Spec{Class: "Txn", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return out, nil }})
	e := newEngine(t, reg, `
engine: {checkpoint_interval: 10ms}
inputs:
  - {name: in, class: Rows}
outputs:
  - {name: out, class: Txn, match: in, batch: 2}
`, engine.Options{Store: store})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	if cp := <-resumed; cp.Offset != 100 || cp.Token != "t100" {
		t.Fatalf("input resumed from %+v, want the output's loaded position 100/t100 over the store's", cp)
	}
	if n := <-started; n < 1 {
		t.Fatal("InputContext.Commit returned before the output committed the start position")
	}
	testenv.Eventually(t, testenv.Scaled(10*time.Second), func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.total+out.open == 3*txns && out.open == 0
	}, "every row committed")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if out.bound != "in" {
		t.Fatalf("bound to %q, want in", out.bound)
	}
	for i, c := range out.commits {
		cp, ok := c.cps["in"]
		if !ok {
			t.Fatalf("commit %d has no position for in: %v", i, c.cps)
		}
		if covered := 3 * int(cp.Offset-100); covered != c.rows {
			t.Fatalf("commit %d: position %d (%s) covers %d rows, the transaction holds %d", i, cp.Offset, cp.Token, covered, c.rows)
		}
	}
	if len(out.commits) < 3 {
		t.Fatalf("%d commits, want several", len(out.commits))
	}
	if cp, _, _ := store.Load("in"); cp.Token != "stale" {
		t.Fatalf("the store got the input's position %+v: it must live only in the transactions", cp)
	}
}

// TestEngineTransactionalOutputFailureStops: a failed commit stops the
// pipeline with ErrTransactionAborted, and the store is not written.
func TestEngineTransactionalOutputFailureStops(t *testing.T) {
	reg := testRegistry(t, map[string]*mock.Recorder{})
	out := &txnOut{failAt: 2}
	reg.MustRegister(engine.Spec{Class: "Txn", Kind: engine.KindOutput,
		NewOutput: func(*engine.Conf) (engine.Output, error) { return out, nil }})
	store := engine.NewMemoryStore()
	e := newEngine(t, reg, `
inputs:
  - {name: in, class: MockInput, count: 100000}
outputs:
  - {name: out, class: Txn, match: in}
`, engine.Options{Store: store})
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, engine.ErrTransactionAborted) || !strings.Contains(err.Error(), "broker said no") {
			t.Fatalf("run: %v, want ErrTransactionAborted with the cause", err)
		}
	case <-time.After(testenv.Scaled(20 * time.Second)):
		t.Fatal("the pipeline did not stop after the failed commit")
	}
	if all := store.All(); len(all) != 0 {
		t.Fatalf("store written: %v", all)
	}
}
