package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Exactly-once (exactly_once: true): the output implements
// engine.TransactionalOutput. Records of a Write go into the open Kafka
// transaction (copied: the engine acks the packets when Write returns);
// CommitTransaction adds one record to the checkpoint topic (key: the
// input's name, value: the positions of its streams), commits the
// consumed offsets to the source group in the transaction when the source
// is a KafkaInput on the same cluster, and ends the transaction. A start
// fences any earlier producer with the same transactional id (its open
// transaction is aborted) and reads the positions back. All of it runs on
// the engine's output goroutine; the promise goroutine only records the
// first produce error.

const defaultCheckpointTopic = "__dbus_checkpoints"

func txnFields() []engine.Field {
	return []engine.Field{
		{Name: "exactly_once", Type: engine.TypeBool, Default: false, Doc: "Transactional produce: records and the input's position are committed in one Kafka transaction, so a read_committed consumer sees every record exactly once across crashes. The pipeline must be this output's alone (one input, no other output, no dead_letter, no stateful filter); needs acks all and idempotent. See the README's Exactly-once section."},
		{Name: "transactional_id", Type: engine.TypeString, Default: "", Doc: "exactly_once: the Kafka transactional id (default \"dbus-\" + the output's name). A process starting with the same id fences the previous one; two live pipelines must not share one."},
		{Name: "commit_records", Type: engine.TypeInt, Default: int64(50000), HasRange: true, Min: 1, Max: 1 << 30, Doc: "exactly_once: commit the transaction after this many records."},
		{Name: "commit_interval", Type: engine.TypeDuration, Default: 100 * time.Millisecond, Doc: "exactly_once: commit the open transaction after this long (read_committed consumers see records at most about this late)."},
		{Name: "transaction_timeout", Type: engine.TypeDuration, Default: 30 * time.Second, Doc: "exactly_once: a transaction not committed within this time fails (the pipeline stops: a target down longer than this stops it) and the broker aborts the open transaction of a process that died this long ago (read_committed consumers wait for it until then, or until dbusd restarts)."},
		{Name: "checkpoint_topic", Type: engine.TypeString, Default: defaultCheckpointTopic, Doc: "exactly_once: compacted topic on this cluster holding the input's position (key: input name), written in each transaction and read back at start."},
	}
}

// txnState is the exactly_once state of an Output. Everything except
// perr and the counters is owned by the engine's output goroutine.
type txnState struct {
	id       string
	cpTopic  string
	maxRecs  int
	interval time.Duration
	timeout  time.Duration // transaction_timeout

	input string // the bound input's name
	src   *Input // the bound input when it is a KafkaInput, else nil
	// sameCluster: src consumes from this output's cluster, so its
	// offsets are committed to its group inside the transaction.
	sameCluster bool

	open  bool
	began time.Time
	recs  int
	// ctx bounds the open transaction's writes and commit by
	// transaction_timeout; cancel ends it at the commit.
	ctx    context.Context
	cancel context.CancelFunc

	// Records and the bytes they refer to live until the commit: the
	// packets are acked as soon as Write returns.
	slabs [][]kgo.Record
	nrec  int
	arena [][]byte
	ai    int // current arena chunk

	perrMu  sync.Mutex
	perr    error // first produce error of the open transaction
	promise func(*kgo.Record, error)

	topicIDs map[string][16]byte // source topics' ids (TxnOffsetCommit v6+)

	commits atomic.Uint64
	aborts  atomic.Uint64
	failed  bool
}

const (
	txnSlab  = 4096
	txnChunk = 1 << 20
)

// initTxn reads the exactly_once settings and adds the transactional
// client options.
func (o *Output) initTxn(c *engine.Conf, opts []kgo.Opt) ([]kgo.Opt, error) {
	if !c.Bool("exactly_once") {
		return opts, nil
	}
	if c.String("acks") == "leader" || !c.Bool("idempotent") {
		return nil, c.Errorf("exactly_once", "needs acks: all and idempotent: true (transactions are built on the idempotent producer)")
	}
	t := &txnState{
		id:       c.String("transactional_id"),
		cpTopic:  c.String("checkpoint_topic"),
		maxRecs:  int(c.Int("commit_records")),
		interval: c.Duration("commit_interval"),
		timeout:  c.Duration("transaction_timeout"),
	}
	if t.id == "" {
		t.id = "dbus-" + c.Name
	}
	if t.interval <= 0 {
		return nil, c.Errorf("commit_interval", "must be positive")
	}
	if t.timeout < 2*t.interval+time.Second {
		return nil, c.Errorf("transaction_timeout", "%v is too short for commit_interval %v (want at least twice it plus 1s)", t.timeout, t.interval)
	}
	if err := validTopic([]byte(t.cpTopic)); err != nil {
		return nil, c.Errorf("checkpoint_topic", "%v", err)
	}
	t.promise = func(_ *kgo.Record, err error) {
		if err != nil {
			t.perrMu.Lock()
			if t.perr == nil {
				t.perr = err
			}
			t.perrMu.Unlock()
		}
	}
	o.txn = t
	return append(opts,
		kgo.TransactionalID(t.id),
		kgo.TransactionTimeout(t.timeout),
	), nil
}

// Transactional implements engine.TransactionalOutput.
func (o *Output) Transactional() bool { return o.txn != nil }

// BindTransaction implements engine.TransactionalOutput.
func (o *Output) BindTransaction(input string, in engine.Input) error {
	o.txn.input = input
	if src, ok := in.(*Input); ok {
		o.txn.src = src
		o.txn.sameCluster = src.group != "" && sameBrokers(src.cc.brokers, o.cc.brokers)
	}
	return nil
}

func sameBrokers(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// startTxn runs in Start: it fences earlier producers with the same
// transactional id (their open transaction is aborted) and makes sure
// the checkpoint topic exists (compacted, one partition).
func (o *Output) startTxn(ctx context.Context) error {
	if _, _, err := o.cl.ProducerID(ctx); err != nil {
		return fmt.Errorf("kafka output %s: exactly_once: init transactional id %q: %w", o.name, o.txn.id, err)
	}
	adm := kadm.NewClient(o.cl)
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, o.txn.cpTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka output %s: exactly_once: create checkpoint topic %s: %w", o.name, o.txn.cpTopic, err)
	}
	return nil
}

// cpDoc is the value of a checkpoint record.
type cpDoc struct {
	V           int                          `json:"v"`
	Input       string                       `json:"input"`
	Checkpoints map[string]engine.Checkpoint `json:"checkpoints"`
}

// LoadCheckpoints implements engine.TransactionalOutput: the newest
// committed record of the input's key in the checkpoint topic.
func (o *Output) LoadCheckpoints(ctx context.Context) (map[string]engine.Checkpoint, error) {
	t := o.txn
	adm := kadm.NewClient(o.cl)
	lo, err := adm.ListCommittedOffsets(ctx, t.cpTopic)
	if err != nil {
		return nil, fmt.Errorf("kafka output %s: end of %s: %w", o.name, t.cpTopic, err)
	}
	end := int64(0)
	lo.Each(func(l kadm.ListedOffset) {
		if l.Partition == 0 && l.Err == nil {
			end = l.Offset
		}
	})
	if end == 0 {
		return nil, nil
	}
	opts := append(o.cc.baseOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.cpTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, max(30*time.Second, o.cc.connectTimeout))
	defer cancel()
	var last []byte
	for next := int64(0); next < end; {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return nil, fmt.Errorf("kafka output %s: read %s up to offset %d (at %d): %w", o.name, t.cpTopic, end, next, rctx.Err())
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("kafka output %s: read %s: %w", o.name, t.cpTopic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if !r.Attrs.IsControl() && string(r.Key) == t.input {
				last = r.Value
			}
		})
	}
	if last == nil {
		return nil, nil
	}
	var doc cpDoc
	if err := json.Unmarshal(last, &doc); err != nil {
		return nil, fmt.Errorf("kafka output %s: checkpoint record of %s in %s is corrupt: %w", o.name, t.input, t.cpTopic, err)
	}
	return doc.Checkpoints, nil
}

// CommitDue implements engine.TransactionalOutput.
func (o *Output) CommitDue() bool {
	t := o.txn
	return t.open && (t.recs >= t.maxRecs || time.Since(t.began) >= t.interval)
}

func (o *Output) begin(ctx context.Context) error {
	t := o.txn
	if t.open {
		return nil
	}
	if err := o.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("kafka output %s: begin transaction: %w", o.name, err)
	}
	t.open, t.began, t.recs = true, time.Now(), 0
	t.ctx, t.cancel = context.WithTimeout(ctx, t.timeout)
	return nil
}

// txnRecord returns the next record slot of the open transaction.
func (t *txnState) record() *kgo.Record {
	s, i := t.nrec/txnSlab, t.nrec%txnSlab
	if s == len(t.slabs) {
		t.slabs = append(t.slabs, make([]kgo.Record, txnSlab))
	}
	t.nrec++
	r := &t.slabs[s][i]
	h := r.Headers[:0]
	clear(r.Headers[:cap(r.Headers)])
	*r = kgo.Record{Headers: h}
	return r
}

// keep copies b into the transaction's arena.
func (t *txnState) keep(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	for {
		if t.ai == len(t.arena) {
			t.arena = append(t.arena, make([]byte, 0, max(txnChunk, len(b))))
		}
		c := t.arena[t.ai]
		if cap(c)-len(c) >= len(b) {
			n := len(c)
			c = append(c, b...)
			t.arena[t.ai] = c
			return c[n:len(c):len(c)]
		}
		t.ai++
	}
}

// reset forgets the committed transaction's records and bytes.
func (t *txnState) reset() {
	for i := range t.arena {
		t.arena[i] = t.arena[i][:0]
	}
	t.ai, t.nrec, t.recs, t.open = 0, 0, 0, false
	if t.cancel != nil {
		t.cancel()
		t.ctx, t.cancel = nil, nil
	}
	t.perrMu.Lock()
	t.perr = nil
	t.perrMu.Unlock()
}

func (t *txnState) produceErr() error {
	t.perrMu.Lock()
	defer t.perrMu.Unlock()
	return t.perr
}

// writeTxn is Write with exactly_once: the batch goes into the open
// transaction and Write returns without waiting for the broker (the
// commit waits for every record). Any error fails the pipeline.
func (o *Output) writeTxn(ctx context.Context, batch []*pack.Packet) error {
	t := o.txn
	if o.cl == nil {
		return fmt.Errorf("kafka output %s: not started", o.name)
	}
	if t.failed {
		return fmt.Errorf("kafka output %s: the transaction failed earlier", o.name)
	}
	if err := t.produceErr(); err != nil {
		return fmt.Errorf("kafka output %s: produce in transaction: %w", o.name, err)
	}
	if err := o.begin(ctx); err != nil {
		return err
	}
	for _, p := range batch {
		r := t.record()
		skip, err := o.build(r, p)
		if err != nil {
			o.failed.Add(1)
			return fmt.Errorf("kafka output %s: record at %s: %w", o.name, posString(p), err)
		}
		if skip {
			t.nrec--
			o.skippedLoop.Add(1)
			continue
		}
		r.Key = t.keep(r.Key)
		r.Value = t.keep(r.Value)
		for i := range r.Headers {
			r.Headers[i].Value = t.keep(r.Headers[i].Value)
		}
		t.recs++
		o.cl.Produce(t.ctx, r, t.promise)
	}
	return nil
}

func posString(p *pack.Packet) string {
	if len(p.Pos.Token) > 0 {
		return string(p.Pos.Token)
	}
	return "offset " + strconv.FormatInt(p.Pos.Offset, 10)
}

// CommitTransaction implements engine.TransactionalOutput.
func (o *Output) CommitTransaction(ctx context.Context, cps map[string]engine.Checkpoint) error {
	t := o.txn
	err := o.commitTxn(ctx, cps)
	if err == nil {
		o.produced.Add(uint64(t.recs))
		t.commits.Add(1)
		t.reset()
		o.commitSource(ctx, cps)
		return nil
	}
	t.failed = true
	t.aborts.Add(1)
	actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if aerr := o.cl.AbortBufferedRecords(actx); aerr == nil {
		_ = o.cl.EndTransaction(actx, kgo.TryAbort)
	}
	t.open = false
	if t.cancel != nil {
		t.cancel()
		t.ctx, t.cancel = nil, nil
	}
	return err
}

func (o *Output) commitTxn(ctx context.Context, cps map[string]engine.Checkpoint) error {
	t := o.txn
	if err := o.begin(ctx); err != nil {
		return err
	}
	ctx = t.ctx
	val, err := json.Marshal(cpDoc{V: 1, Input: t.input, Checkpoints: cps})
	if err != nil {
		return err
	}
	o.cl.Produce(ctx, &kgo.Record{Topic: t.cpTopic, Partition: 0, Key: []byte(t.input), Value: val}, t.promise)
	if err := o.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka output %s: flush transaction (%d records, open %v, transaction_timeout %v): %w", o.name, t.recs, time.Since(t.began).Round(time.Millisecond), t.timeout, err)
	}
	if err := t.produceErr(); err != nil {
		return fmt.Errorf("kafka output %s: produce in transaction: %w", o.name, err)
	}
	if t.sameCluster {
		if err := o.commitOffsetsInTxn(ctx, cps); err != nil {
			return err
		}
	}
	if err := o.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafka output %s: commit transaction (%d records): %w", o.name, t.recs, err)
	}
	return nil
}

// sourceOffsets turns the KafkaInput's stream positions ("input/topic/
// partition") into offsets per topic and partition.
func (t *txnState) sourceOffsets(cps map[string]engine.Checkpoint) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	prefix := t.input + "/"
	for k, cp := range cps {
		id, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseInt(id[i+1:], 10, 32)
		if err != nil {
			continue
		}
		if out[id[:i]] == nil {
			out[id[:i]] = map[int32]int64{}
		}
		out[id[:i]][int32(p)] = cp.Offset
	}
	return out
}

// commitOffsetsInTxn commits the source group's offsets inside the open
// transaction (AddOffsetsToTxn + TxnOffsetCommit): source and target are
// the same cluster.
func (o *Output) commitOffsetsInTxn(ctx context.Context, cps map[string]engine.Checkpoint) error {
	t := o.txn
	offs := t.sourceOffsets(cps)
	if len(offs) == 0 {
		return nil
	}
	id, epoch, err := o.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = t.id, id, epoch, t.src.group
	aresp, err := add.RequestWith(ctx, o.cl)
	if err == nil {
		err = kerr.ErrorForCode(aresp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("kafka output %s: add offsets of group %s to the transaction: %w", o.name, t.src.group, err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = t.id, t.src.group, id, epoch
	req.Generation, req.MemberID = -1, ""
	if t.topicIDs == nil {
		t.topicIDs = map[string][16]byte{}
	}
	for topic := range offs {
		if _, ok := t.topicIDs[topic]; ok {
			continue
		}
		td, err := kadm.NewClient(o.cl).ListTopics(ctx, topic)
		if err == nil {
			err = td.Error()
		}
		if err != nil {
			return fmt.Errorf("kafka output %s: id of source topic %s: %w", o.name, topic, err)
		}
		t.topicIDs[topic] = td[topic].ID
	}
	for topic, ps := range offs {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, t.topicIDs[topic]
		for p, off := range ps {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, off, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, o.cl)
	if err == nil {
	check:
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err = kerr.ErrorForCode(rp.ErrorCode); err != nil {
					break check
				}
			}
		}
	}
	if err != nil {
		return fmt.Errorf("kafka output %s: commit offsets of group %s in the transaction: %w", o.name, t.src.group, err)
	}
	return nil
}

// commitSource tells a KafkaInput on another cluster the committed
// offsets, for its group (lag monitoring, and a shorter skip after a
// restart). Never ahead of the transaction: it runs after the commit, and
// the input skips what the checkpoint record says was delivered.
func (o *Output) commitSource(ctx context.Context, cps map[string]engine.Checkpoint) {
	t := o.txn
	if t.src == nil || t.sameCluster || t.src.group == "" || t.src.cl == nil {
		return
	}
	offs := map[string]map[int32]kgo.EpochOffset{}
	t.src.mu.Lock()
	for topic, ps := range t.sourceOffsets(cps) {
		for p, off := range ps {
			if !t.src.owned[tp{topic, p}] {
				continue
			}
			if offs[topic] == nil {
				offs[topic] = map[int32]kgo.EpochOffset{}
			}
			offs[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	t.src.mu.Unlock()
	if len(offs) == 0 {
		return
	}
	t.src.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			o.log.Warn("exactly_once: committing the source group's offsets failed (the positions are safe in the checkpoint topic)", "group", t.src.group, "err", err)
		}
	})
}

// closeTxn aborts an open transaction at Close (an orderly stop commits
// it first).
func (o *Output) closeTxn(ctx context.Context) {
	if o.txn == nil || !o.txn.open || o.cl == nil {
		return
	}
	if err := o.cl.AbortBufferedRecords(ctx); err == nil {
		_ = o.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	o.txn.open = false
}
