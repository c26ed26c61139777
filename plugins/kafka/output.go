package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Profile presets, applied to the knobs the config leaves unset.
type profile struct {
	batchRecords int
	linger       time.Duration
	batchBytes   int64
}

var profiles = map[string]profile{
	// The default is the throughput preset: a 500 ms linger and 1024
	// buffered records (the earlier default) held a partition's batch
	// back while the engine had nothing more to hand over, and capped
	// the client at 1024 records in flight (issue 12).
	"":           {batchRecords: 8192, linger: 5 * time.Millisecond, batchBytes: 1 << 20},
	"throughput": {batchRecords: 8192, linger: 5 * time.Millisecond, batchBytes: 1 << 20},
	"latency":    {batchRecords: 256, linger: 0, batchBytes: 1 << 20},
}

var compressions = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func outputFields() []engine.Field {
	return append(append(commonFields(),
		engine.Field{Name: "topic", Type: engine.TypeString, Required: true, Doc: "Topic, or a template over packet attributes such as \"{db}.{table}\" or \"dc2.{kafka.topic}\"."},
		engine.Field{Name: "topic_map", Type: engine.TypeAny, Doc: "Map of rendered topic -> topic to produce to (renames applied after the template)."},
		engine.Field{Name: "partitioner", Type: engine.TypeString, Default: "murmur2", Enum: []string{"murmur2", "round_robin", "fixed", "attr"}, Doc: "murmur2: by key, the partition the Java client picks (keyless records round-robin); round_robin; fixed: the partition field; attr: the integer attribute partition_attr (mirroring)."},
		engine.Field{Name: "partition", Type: engine.TypeInt, Default: int64(0), HasRange: true, Min: 0, Max: 1 << 31, Doc: "Partition for partitioner fixed."},
		engine.Field{Name: "partition_attr", Type: engine.TypeString, Default: "kafka.partition", Doc: "Attribute holding the partition for partitioner attr."},
		engine.Field{Name: "on_missing_partition", Type: engine.TypeString, Default: "fail", Enum: []string{"fail", "hash"}, Doc: "partitioner attr, when the target topic lacks the partition (fewer partitions than the source): fail (a permanent failure: the record goes to dead_letter, or is held without one) or hash (the key's murmur2 partition instead; per-key order kept, the source partition not)."},
		engine.Field{Name: "compression", Type: engine.TypeString, Default: "none", Doc: "Batch compression: none, gzip, snappy, lz4 or zstd."},
		engine.Field{Name: "acks", Type: engine.TypeString, Default: "all", Enum: []string{"all", "leader"}, Doc: "Required acknowledgements; leader disables the idempotent producer."},
		engine.Field{Name: "idempotent", Type: engine.TypeBool, Default: true, Doc: "Idempotent producer (no duplicates from client retries, order kept)."},
		engine.Field{Name: "profile", Type: engine.TypeString, Default: "", Enum: []string{"", "throughput", "latency"}, Doc: "Preset for batch_records, linger and batch_bytes (explicit values win): default and throughput 8192/5ms/1MiB, latency 256/0/1MiB."},
		engine.Field{Name: "batch_records", Type: engine.TypeInt, HasRange: true, Min: 1, Max: 1 << 24, Doc: "Records buffered in the client before it stops lingering and sends (default 8192)."},
		engine.Field{Name: "linger", Type: engine.TypeDuration, Doc: "How long a partition's batch waits for more records (default 5ms)."},
		engine.Field{Name: "batch_bytes", Type: engine.TypeSize, HasRange: true, Min: 1024, Max: 1 << 30, Doc: "Maximum bytes of one record batch (default 1MiB; keep it under the broker's message.max.bytes)."},
		engine.Field{Name: "record_retries", Type: engine.TypeInt, Default: int64(3), HasRange: true, Min: -1, Max: 1 << 30, Doc: "Tries per record inside the client (-1: unlimited); after them the engine's retries / dead_letter apply. Named apart from the engine's own retries key."},
		engine.Field{Name: "record_retry_backoff", Type: engine.TypeDuration, Default: 350 * time.Millisecond, Doc: "Backoff between the client's tries."},
		engine.Field{Name: "delivery_timeout", Type: engine.TypeDuration, Default: time.Duration(0), Doc: "Fail records not delivered within this time after the output handed them to the client (not from the record timestamp, which a mirror copies); the engine then retries them (0: no limit)."},
		engine.Field{Name: "max_record_bytes", Type: engine.TypeSize, Default: int64(1 << 20), HasRange: true, Min: 1, Max: 1 << 30, Doc: "Records larger than this (key+value+headers) fail with a reason and take the dead-letter path."},
		engine.Field{Name: "header_prefix", Type: engine.TypeString, Default: "kafka.header.", Doc: "Attributes with this prefix become record headers (prefix stripped); empty disables."},
		engine.Field{Name: "header_attrs", Type: engine.TypeStrings, Doc: "Further attributes sent as headers under their own names."},
		engine.Field{Name: "origin_header", Type: engine.TypeString, Default: "dbus-origin", Doc: "Header naming the cluster a record was first written to (loop prevention)."},
		engine.Field{Name: "origin_id", Type: engine.TypeString, Default: "", Doc: "Origin mark added to records that carry none (usually the source cluster's id); empty adds none."},
		engine.Field{Name: "cluster_id", Type: engine.TypeString, Default: "", Doc: "This destination cluster's id: records whose origin header equals it are skipped (acked, counted), which breaks mirror loops."},
		engine.Field{Name: "dryrun_partitions", Type: engine.TypeInt, Default: int64(0), HasRange: true, Min: 0, Max: 1 << 20, Doc: "Partition count used in dry runs; 0 asks the cluster once per topic (1 when it cannot)."},
	), append(txnFields(), mirrorFields()...)...)
}

// Register adds KafkaInput and KafkaOutput to reg.
func Register(reg *engine.Registry) {
	reg.MustRegister(engine.Spec{
		Class: "KafkaOutput", Kind: engine.KindOutput,
		Summary: "Produces packets to Kafka: batched, asynchronous, acked only when the broker confirmed each record.",
		Fields:  outputFields(),
		NewOutput: func(c *engine.Conf) (engine.Output, error) {
			return NewOutput(c)
		},
	})
	reg.MustRegister(engine.Spec{
		Class: "KafkaInput", Kind: engine.KindInput,
		Summary: "Consumes Kafka topics (consumer group or explicit partitions); commits offsets only from the ack watermark.",
		Fields:  inputFields(),
		// In cluster mode a resource is one consume job owned by one
		// member (cluster/DESIGN.md "Kafka resources").
		Distributed: true,
		NewInput: func(c *engine.Conf) (engine.Input, error) {
			return NewInput(c)
		},
	})
}

func init() { Register(engine.Default) }

// Output is the KafkaOutput plugin. WriteAsync and Write are called from
// the engine's output goroutine; promises complete on franz-go's promise
// goroutine. See doc.go.
type Output struct {
	// deliveryTimeout fails records not delivered this long after the
	// output handed them to the client (0: no limit).
	deliveryTimeout time.Duration
	name            string
	cc              clientConf
	opts            []kgo.Opt
	topic           *topicTemplate
	topicMap        map[string]string
	mode            partitionMode
	fixedPart       int32
	partAttr        string
	maxRecord       int
	hdrPrefix       string
	hdrAttrs        []string
	originHdr       string
	originID        []byte
	clusterID       string
	dryParts        int

	cl     *kgo.Client
	dryRun atomic.Bool
	txn    *txnState // exactly_once, or nil (txn.go)
	log    *slog.Logger

	// mirror is set when one KafkaInput feeds the output (mirror.go).
	mirror, mirrorConf *mirrorState

	// Owned by the Write goroutine.
	tbuf    []byte
	intern  *internTable
	hdrKeys *internTable
	dryTP   map[string]*topicPartitioner
	dryN    map[string]int
	syncC   syncCompletion

	part partitioner

	freeMu sync.Mutex
	free   []*batchState // guarded by freeMu

	// fence is set when a record failed after the client's retries: new
	// writes fail fast until every in-flight record completed, so the
	// engine re-sends the failed packets before anything newer (per-key
	// order).
	fence    atomic.Bool
	inflight atomic.Int64

	// batches counts WriteAsync calls not yet completed; maxBatches is
	// the most seen at once, which is the engine's in_flight once the
	// pipeline has been saturated. linger is the client's linger.
	batches    atomic.Int64
	maxBatches int64 // Write goroutine only
	linger     time.Duration

	// Counters.
	produced    atomic.Uint64
	failed      atomic.Uint64
	skippedLoop atomic.Uint64
	tooLarge    atomic.Uint64
}

// NewOutput builds a KafkaOutput from its config. It validates everything
// (including a seed dial unless check_seeds is false) and does not start a
// client: Start does.
func NewOutput(c *engine.Conf) (*Output, error) {
	cc, err := parseClientConf(c, roleOutput)
	if err != nil {
		return nil, err
	}
	o := &Output{
		name:      c.Name,
		cc:        cc,
		partAttr:  c.String("partition_attr"),
		maxRecord: int(c.Size("max_record_bytes")),
		hdrPrefix: c.String("header_prefix"),
		hdrAttrs:  c.Strings("header_attrs"),
		originHdr: c.String("origin_header"),
		originID:  []byte(c.String("origin_id")),
		clusterID: c.String("cluster_id"),
		dryParts:  int(c.Int("dryrun_partitions")),
		intern:    newInternTable(1 << 16),
		hdrKeys:   newInternTable(1 << 12),
		dryTP:     map[string]*topicPartitioner{},
		dryN:      map[string]int{},
		log:       slog.Default().With("plugin", c.Name),
	}
	o.syncC.ch = make(chan error, 1)
	if o.topic, err = parseTopicTemplate(c.String("topic")); err != nil {
		return nil, c.Errorf("topic", "%v", err)
	}
	if c.Has("topic_map") {
		if err := c.Decode("topic_map", &o.topicMap); err != nil {
			return nil, err
		}
		for from, to := range o.topicMap {
			if err := validTopic([]byte(to)); err != nil {
				return nil, c.Errorf("topic_map", "%q -> %q: %v", from, to, err)
			}
		}
	}
	if o.mode, err = parsePartitionMode(c.String("partitioner")); err != nil {
		return nil, c.Errorf("partitioner", "%v", err)
	}
	o.fixedPart = int32(c.Int("partition"))
	if o.mode == partAttr && o.partAttr == "" {
		return nil, c.Errorf("partition_attr", "partitioner attr needs an attribute name")
	}
	o.part = partitioner{mode: o.mode, hashMissing: c.String("on_missing_partition") == "hash"}
	if o.originHdr == "" && (len(o.originID) > 0 || o.clusterID != "") {
		return nil, c.Errorf("origin_header", "origin_id and cluster_id need an origin_header name")
	}

	comp, ok := compressions[c.String("compression")]
	if !ok {
		return nil, c.Errorf("compression", "unknown compression %q (want none, gzip, snappy, lz4 or zstd)", c.String("compression"))
	}
	prof, ok := profiles[c.String("profile")]
	if !ok {
		return nil, c.Errorf("profile", "unknown profile %q (want throughput or latency)", c.String("profile"))
	}
	// batch_records, linger and batch_bytes have no spec default, so Has
	// tells whether the user set them.
	if c.Has("batch_records") {
		prof.batchRecords = int(c.Int("batch_records"))
	}
	if c.Has("linger") {
		prof.linger = c.Duration("linger")
	}
	if c.Has("batch_bytes") {
		prof.batchBytes = c.Size("batch_bytes")
	}
	if int64(o.maxRecord) > prof.batchBytes {
		return nil, c.Errorf("max_record_bytes", "%d is larger than batch_bytes %d: such records could never be sent", o.maxRecord, prof.batchBytes)
	}
	retries := int(c.Int("record_retries"))
	backoff := c.Duration("record_retry_backoff")
	if backoff <= 0 {
		return nil, c.Errorf("record_retry_backoff", "must be positive")
	}

	opts := cc.baseOpts()
	opts = append(opts,
		kgo.RecordPartitioner(&o.part),
		kgo.ProducerBatchCompression(comp),
		kgo.ProducerLinger(prof.linger),
		kgo.ProducerBatchMaxBytes(int32(prof.batchBytes)),
		kgo.MaxBufferedRecords(prof.batchRecords),
		kgo.RetryBackoffFn(func(int) time.Duration { return backoff }),
		kgo.AllowAutoTopicCreation(),
	)
	if retries >= 0 {
		opts = append(opts, kgo.RecordRetries(retries))
	}
	o.deliveryTimeout = c.Duration("delivery_timeout") // counted from hand-over: see write
	switch {
	case c.String("acks") == "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case !c.Bool("idempotent"):
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	o.linger = prof.linger
	if opts, err = o.initTxn(c, opts); err != nil {
		return nil, err
	}
	if err := o.initMirror(c); err != nil {
		return nil, err
	}
	o.opts = opts
	return o, nil
}

// SetDryRun implements engine.DryRunner: records are built and partitioned
// but not sent, and every packet is acked.
func (o *Output) SetDryRun(on bool) { o.dryRun.Store(on) }

// Start implements engine.Starter: it creates the client and checks that
// the cluster answers within connect_timeout.
func (o *Output) Start(ctx context.Context) error {
	if o.cl != nil {
		return nil
	}
	cl, err := kgo.NewClient(o.opts...)
	if err != nil {
		return fmt.Errorf("kafka output %s: %w", o.name, err)
	}
	if !o.dryRun.Load() || o.dryParts == 0 {
		if err := o.cc.ping(ctx, cl); err != nil {
			if !o.dryRun.Load() {
				cl.Close()
				return fmt.Errorf("kafka output %s: %w", o.name, err)
			}
			o.log.Warn("dry run: cluster unreachable, partitioning over 1 partition", "err", err)
		}
	}
	o.cl = cl
	if o.txn != nil && !o.dryRun.Load() {
		if err := o.startTxn(ctx); err != nil {
			cl.Close()
			o.cl = nil
			return err
		}
	}
	if o.mirror != nil && !o.dryRun.Load() {
		if err := o.startMirror(ctx); err != nil {
			cl.Close()
			o.cl = nil
			return err
		}
	}
	if o.mode == partAttr && o.topic.fixed != "" && !o.dryRun.Load() {
		// Say up front what happens to partitions the target lacks (a
		// mirror to a topic with fewer partitions than its source).
		what := "fail (dead_letter)"
		if o.part.hashMissing {
			what = "go to the key's partition (on_missing_partition: hash)"
		}
		o.log.Info("partitioner attr: target topic partitions", "topic", o.topic.fixed,
			"partitions", o.partitionsOf(o.topic.fixed), "records for other partitions", what)
	}
	return nil
}

// Flush implements engine.Flusher: it sends lingering records now.
func (o *Output) Flush(ctx context.Context) error {
	if o.cl == nil {
		return nil
	}
	return o.cl.Flush(ctx)
}

// Close implements engine.Closer.
func (o *Output) Close(ctx context.Context) error {
	if o.cl == nil {
		return nil
	}
	o.closeTxn(ctx)
	err := o.cl.Flush(ctx)
	o.closeMirror()
	o.cl.Close()
	o.cl = nil
	return err
}

// Stats reports the output's counters.
type OutputStats struct {
	Produced, Failed, SkippedLoop, TooLarge uint64
}

// Stats returns a snapshot of the counters.
func (o *Output) Stats() OutputStats {
	return OutputStats{o.produced.Load(), o.failed.Load(), o.skippedLoop.Load(), o.tooLarge.Load()}
}

// batchState is one WriteAsync call in flight: its records, preallocated
// and reused, and the per-packet outcome.
type batchState struct {
	o       *Output
	recs    []kgo.Record
	ctxs    []slotCtx
	errs    []error
	pending atomic.Int64
	failed  atomic.Bool
	lost    atomic.Int64 // records whose promise failed
	c       engine.Completion
	n       int
	cancel  context.CancelFunc       // ends the batch's delivery_timeout context (nil without one)
	sent    int                      // records handed to the client; set before the guard is released
	promise func(*kgo.Record, error) // bound once to b.onPromise
	msrc    []srcPos                 // mirror: where each record came from (mirror.go)
}

// slotCtx is the Record.Context of slot i: it tells the promise which
// packet a record belongs to without a map or an allocation.
type slotCtx struct {
	context.Context
	b *batchState
	i int
}

func (o *Output) getBatch(n int) *batchState {
	o.freeMu.Lock()
	var b *batchState
	if k := len(o.free); k > 0 {
		b = o.free[k-1]
		o.free[k-1] = nil
		o.free = o.free[:k-1]
	}
	o.freeMu.Unlock()
	if b == nil {
		b = &batchState{o: o}
		b.promise = b.onPromise
	}
	if cap(b.recs) < n {
		b.recs = make([]kgo.Record, n)
		b.ctxs = make([]slotCtx, n)
		b.errs = make([]error, n)
		for i := range b.ctxs {
			b.ctxs[i] = slotCtx{Context: context.Background(), b: b, i: i}
		}
	}
	b.recs, b.ctxs, b.errs = b.recs[:n], b.ctxs[:n], b.errs[:n]
	b.n = n
	return b
}

// reset clears every record so the slot keeps no reference to packet
// buffers, keeping the header slices' capacity.
func (b *batchState) reset() {
	for i := range b.recs {
		r := &b.recs[i]
		h := r.Headers[:0]
		clear(r.Headers[:cap(r.Headers)])
		*r = kgo.Record{Headers: h}
	}
	clear(b.errs)
	b.c = nil
	b.failed.Store(false)
	b.lost.Store(0)
	b.sent = 0
	b.pending.Store(0)
}

func (o *Output) putBatch(b *batchState) {
	b.reset()
	o.freeMu.Lock()
	o.free = append(o.free, b)
	o.freeMu.Unlock()
}

// Write implements engine.Output for callers that do not use WriteAsync.
func (o *Output) Write(ctx context.Context, batch []*pack.Packet) error {
	if o.txn != nil && !o.dryRun.Load() {
		return o.writeTxn(ctx, batch)
	}
	o.write(ctx, batch, &o.syncC, true)
	select {
	case err := <-o.syncC.ch:
		return err
	case <-ctx.Done():
		// The promises still fire; drain the result so the next Write
		// starts clean.
		return <-o.syncC.ch
	}
}

type syncCompletion struct{ ch chan error }

func (s *syncCompletion) Done(err error) { s.ch <- err }

// errFenced fails writes issued while an earlier record's failure has not
// been settled.
var errFenced = errors.New("earlier records failed and are being retried; held back to keep per-key order")

// WriteAsync implements engine.AsyncOutput. Record values and keys refer
// to the packets' buffers: the engine holds the packets until c.Done.
func (o *Output) WriteAsync(ctx context.Context, batch []*pack.Packet, c engine.Completion) {
	o.write(ctx, batch, c, false)
}

// write produces batch and reports to c; sync says the caller waits for
// c (Write), so lingering would only delay it.
func (o *Output) write(ctx context.Context, batch []*pack.Packet, c engine.Completion, sync bool) {
	dry := o.dryRun.Load()
	if !dry && o.cl == nil {
		c.Done(fmt.Errorf("kafka output %s: not started", o.name))
		return
	}
	b := o.getBatch(len(batch))
	b.c = c
	// delivery_timeout counts from the hand-over to the client, not from
	// the record's timestamp (franz-go's RecordDeliveryTimeout does that,
	// which fails every record a mirror copies with an old timestamp): a
	// record whose batch context has ended fails at its next retry.
	// The client may still read a finished record's Context (its
	// unknown-topic waiter), so a batch with a deadline gets fresh slot
	// contexts instead of rewriting reused ones (one allocation per batch,
	// only with delivery_timeout set).
	if o.deliveryTimeout > 0 && !dry {
		var rctx context.Context
		rctx, b.cancel = context.WithTimeout(context.Background(), o.deliveryTimeout)
		ctxs := make([]slotCtx, len(b.ctxs))
		for i := range ctxs {
			ctxs[i] = slotCtx{Context: rctx, b: b, i: i}
		}
		b.ctxs = ctxs
	}
	o.batches.Add(1)
	// Count every record as pending and in flight up front (plus a guard
	// released after the loop), and take back those not sent: no shared
	// counter is touched per record.
	n := int64(len(batch))
	b.pending.Store(n + 1)
	o.inflight.Add(n)
	sent := 0
	fenced := !dry && o.fence.Load()
	for i, p := range batch {
		r := &b.recs[i]
		skip, err := o.build(r, p)
		if err == nil && fenced {
			err = errFenced
		}
		if err != nil {
			b.errs[i] = err
			b.failed.Store(true)
			o.failed.Add(1)
			continue
		}
		if skip {
			o.skippedLoop.Add(1)
			continue
		}
		if dry {
			o.dryPartition(r)
			continue
		}
		if o.mirror != nil {
			if err := o.mirror.before(b, i, r, p); err != nil {
				b.errs[i] = fmt.Errorf("kafka output %s: %w", o.name, err)
				b.failed.Store(true)
				o.failed.Add(1)
				continue
			}
		}
		r.Context = &b.ctxs[i]
		sent++
		o.cl.Produce(ctx, r, b.promise)
	}
	b.sent = sent
	if unsent := n - int64(sent); unsent > 0 {
		o.inflight.Add(-unsent)
		b.pending.Add(-unsent) // the guard keeps it above zero
	}
	if !dry {
		o.unlingerIfSaturated(sync)
	}
	b.finishOne()
}

// canceledCtx makes Client.Flush return at once: it only stops the
// partitions' linger timers.
var canceledCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// unlingerIfSaturated sends lingering records now when the caller waits
// for them (sync) or the engine holds as many batches in flight as it
// ever did, and at least two (the engine gives an AsyncOutput at least
// two slots): the engine is then most likely out of in-flight slots and
// waiting for a completion, so lingering would only add latency and
// throttle the pipeline to in_flight*batch records per linger. Below
// that, the engine can still hand over records and linger merges its
// batches as configured.
func (o *Output) unlingerIfSaturated(sync bool) {
	if o.linger <= 0 {
		return
	}
	if !sync {
		n := o.batches.Load()
		if n < max(o.maxBatches, 2) {
			return
		}
		o.maxBatches = n
	}
	_ = o.cl.Flush(canceledCtx)
}

// build fills r from p. skip reports a record that loop prevention drops.
// One pass over the attributes finds the origin mark, the partition
// attribute and the headers.
func (o *Output) build(r *kgo.Record, p *pack.Packet) (skip bool, err error) {
	var origin []byte
	var partA *pack.Attr
	size := 0
	for i := 0; i < p.Attrs.Len(); i++ {
		a := p.Attrs.At(i)
		if o.mode == partAttr && partA == nil && string(a.K) == o.partAttr {
			partA = a
		}
		if a.Kind != pack.KindString {
			continue // headers carry bytes; typed attributes are not headers
		}
		var k []byte
		switch {
		case len(a.K) > len(o.hdrPrefix) && string(a.K[:len(o.hdrPrefix)]) == o.hdrPrefix:
			k = a.K[len(o.hdrPrefix):]
			if origin == nil && o.originHdr != "" && string(k) == o.originHdr {
				// Loop prevention and the origin mark.
				if o.clusterID != "" && string(a.B) == o.clusterID {
					return true, nil
				}
				origin = a.B
			}
			if o.hdrPrefix == "" && !o.isHeaderAttr(a.K) {
				continue // no prefix: only header_attrs are headers
			}
		case o.isHeaderAttr(a.K):
			k = a.K
		default:
			continue
		}
		key := o.hdrKeys.get(k)
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: key, Value: a.B})
		size += len(key) + len(a.B)
	}
	// Topic.
	if o.topic.fixed != "" {
		r.Topic = o.topic.fixed
	} else {
		o.tbuf, err = o.topic.render(o.tbuf[:0], p)
		if err != nil {
			return false, permanent(err)
		}
		if err := validTopic(o.tbuf); err != nil {
			return false, permanent(fmt.Errorf("%w: template %q rendered %w", errBadTopic, o.topic.src, err))
		}
		r.Topic = o.intern.get(o.tbuf)
	}
	if o.topicMap != nil {
		if to, ok := o.topicMap[r.Topic]; ok {
			r.Topic = to
		}
	}
	if len(p.Key) > 0 {
		r.Key = p.Key
	}
	r.Value = p.Payload
	if p.Ts != 0 {
		r.Timestamp = time.Unix(0, p.Ts)
	}
	switch o.mode {
	case partFixed:
		r.Partition = o.fixedPart
	case partAttr:
		if partA == nil {
			return false, permanent(fmt.Errorf("partitioner attr: %w %q", errMissingAttr, o.partAttr))
		}
		v, ok := partA.Int()
		if !ok || v < 0 || v > 1<<31-1 {
			return false, permanent(fmt.Errorf("partitioner attr: attribute %q is not a partition number", o.partAttr))
		}
		r.Partition = int32(v)
	}
	size += len(r.Key) + len(r.Value)
	if origin == nil && len(o.originID) > 0 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: o.originHdr, Value: o.originID})
		size += len(o.originHdr) + len(o.originID)
	}
	if size > o.maxRecord {
		o.tooLarge.Add(1)
		return false, permanent(fmt.Errorf("%w: %d bytes for topic %s > %d", errRecordTooLarge, size, r.Topic, o.maxRecord))
	}
	return false, nil
}

func (o *Output) isHeaderAttr(k []byte) bool {
	for _, h := range o.hdrAttrs {
		if h == string(k) {
			return true
		}
	}
	return false
}

// dryPartition runs the partitioner as the client would, with the
// partition count of the topic.
func (o *Output) dryPartition(r *kgo.Record) {
	tp := o.dryTP[r.Topic]
	if tp == nil {
		tp = o.part.ForTopic(r.Topic).(*topicPartitioner)
		o.dryTP[r.Topic] = tp
		o.dryN[r.Topic] = o.partitionsOf(r.Topic)
	}
	r.Partition = int32(tp.Partition(r, o.dryN[r.Topic]))
}

func (o *Output) partitionsOf(topic string) int {
	if o.dryParts > 0 || o.cl == nil {
		return max(o.dryParts, 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.cc.connectTimeout)
	defer cancel()
	req := newMetadataRequest(topic)
	resp, err := req.RequestWith(ctx, o.cl)
	if err != nil || len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return 1
	}
	return len(resp.Topics[0].Partitions)
}

// onPromise runs on franz-go's promise goroutine once per record.
func (b *batchState) onPromise(r *kgo.Record, err error) {
	if err != nil {
		sc := r.Context.(*slotCtx)
		o := b.o
		if !isRetryable(err) {
			err = permanent(err)
		}
		b.errs[sc.i] = fmt.Errorf("kafka output %s: produce to %s[%d]: %w%s", o.name, r.Topic, r.Partition, err, o.cc.aclHint(err, kmsg.ACLOperationWrite, r.Topic))
		b.failed.Store(true)
		b.lost.Add(1)
		o.failed.Add(1)
		o.fence.Store(true)
	}
	b.finishOne()
}

// finishOne drops one pending count; the last reports the outcome.
func (b *batchState) finishOne() {
	if b.pending.Add(-1) != 0 {
		return
	}
	o := b.o
	c := b.c
	var err error
	if b.failed.Load() {
		// The engine may read the error after Done: give it its own slice.
		errs := append([]error(nil), b.errs[:b.n]...)
		err = &engine.BatchError{Errs: errs}
	}
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
	if o.mirror != nil {
		o.mirror.acked(b)
	}
	o.produced.Add(uint64(int64(b.sent) - b.lost.Load()))
	if o.inflight.Add(-int64(b.sent)) == 0 && o.fence.Load() {
		o.fence.Store(false)
	}
	o.putBatch(b)
	o.batches.Add(-1)
	c.Done(err)
}

// describe is used in logs.
func (o *Output) String() string {
	return fmt.Sprintf("KafkaOutput %s -> %s (%s)", o.name, strings.Join(o.cc.brokers, ","), o.topic.src)
}

func newMetadataRequest(topic string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	return req
}
