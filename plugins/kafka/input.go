package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

func inputFields() []engine.Field {
	return append(commonFields(),
		engine.Field{Name: "topics", Type: engine.TypeStrings, Doc: "Topics to consume (this or topics_regex is required)."},
		engine.Field{Name: "topics_regex", Type: engine.TypeStrings, Doc: "Consume every topic whose whole name matches one of these regular expressions (RE2, anchored), including topics created after start: they are found within topics_refresh. Needs a group. Internal topics (__consumer_offsets...) never match."},
		engine.Field{Name: "exclude_topics", Type: engine.TypeStrings, Doc: "With topics_regex: topics whose whole name matches one of these regular expressions are not consumed."},
		engine.Field{Name: "fetch_max_wait", Type: engine.TypeDuration, Default: 5 * time.Second, Doc: "How long the broker may hold a fetch while it has no new records (Kafka's fetch.max.wait.ms). Partitions assigned meanwhile (a new topic matching topics_regex) are fetched from the next request, so this adds to how late they start."},
		engine.Field{Name: "topics_refresh", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "How often the client re-reads the cluster's metadata (Kafka's metadata.max.age.ms): bounds how late a new topic matching topics_regex, or a new partition, is consumed."},
		engine.Field{Name: "group", Type: engine.TypeString, Default: "", Doc: "Consumer group (cooperative-sticky). Empty: consume the partitions directly, positions kept only in dbus checkpoints."},
		engine.Field{Name: "partitions", Type: engine.TypeStrings, Doc: "Without a group: the partition numbers to consume from every topic (default: all partitions)."},
		engine.Field{Name: "start", Type: engine.TypeString, Default: "oldest", Enum: []string{"oldest", "newest"}, Doc: "Where to start a partition with no committed offset and no checkpoint."},
		engine.Field{Name: "max_poll_records", Type: engine.TypeInt, Default: int64(4096), HasRange: true, Min: 1, Max: 1 << 20, Doc: "Records taken per poll."},
		engine.Field{Name: "fetch_max_bytes", Type: engine.TypeSize, Default: int64(16 << 20), HasRange: true, Min: 1024, Max: 1 << 30, Doc: "Maximum bytes per fetch response."},
		engine.Field{Name: "session_timeout", Type: engine.TypeDuration, Default: 45 * time.Second, Doc: "Group session timeout: how long a dead member keeps its partitions."},
		engine.Field{Name: "rebalance_timeout", Type: engine.TypeDuration, Default: 60 * time.Second, Doc: "Group rebalance timeout."},
		engine.Field{Name: "instance_id", Type: engine.TypeString, Default: "", Doc: "Static group membership id (KIP-345): a restarted member gets its partitions back without a rebalance."},
		engine.Field{Name: "revoke_timeout", Type: engine.TypeDuration, Default: 10 * time.Second, Doc: "On partition revocation, how long to wait for in-flight packets to be acked before committing and releasing."},
		engine.Field{Name: "header_prefix", Type: engine.TypeString, Default: "kafka.header.", Doc: "Prefix of the attributes that carry record headers."},
	)
}

// Input is the KafkaInput plugin. Run, and every InputContext call, run on
// the engine's input goroutine; the group callbacks run on franz-go's group
// goroutine and talk to Run through revokeCh. Commit runs on the engine's
// commit goroutine. Lock order: mu only (never held across a client call
// that may call back into the plugin).
type Input struct {
	name          string
	cc            clientConf
	topics        []string
	regex         []string // topics_regex, anchored (mirror_topics.go)
	group         string
	partitions    []int32
	start         kgo.Offset
	maxPoll       int
	opts          []kgo.Opt
	revokeTimeout time.Duration
	hdrPrefix     string

	cl *kgo.Client // set by Start, closed by Close

	mu         sync.Mutex
	owned      map[tp]bool        // guarded by mu: partitions we may commit
	pollCancel context.CancelFunc // guarded by mu
	running    bool               // guarded by mu: Run is active

	revokeCh chan *revokeReq

	// Run goroutine only.
	parts   map[tp]*partState
	last    *partState
	lastTP  tp
	scratch []byte
	added   bool

	lag lagTable // consumer lag per partition (metrics.go)

	// Counters.
	emitted   atomic.Uint64
	skipped   atomic.Uint64 // below the resume checkpoint
	commits   atomic.Uint64
	revokes   atomic.Uint64
	commitErr atomic.Uint64
}

type tp struct {
	topic string
	part  int32
}

func (t tp) id() string { return t.topic + "/" + strconv.Itoa(int(t.part)) }

type partState struct {
	s         *engine.Stream
	skipBelow int64 // records below this offset were already delivered
}

type revokeReq struct {
	parts map[string][]int32
	lost  bool
	done  chan struct{}
}

// streamCloser is the engine ability to give a stream up (inputRunner has
// it; it is not on the InputContext interface yet).
type streamCloser interface {
	CloseStream(ctx context.Context, s *engine.Stream) error
}

// NewInput builds a KafkaInput from its config.
func NewInput(c *engine.Conf) (*Input, error) {
	cc, err := parseClientConf(c, roleInput)
	if err != nil {
		return nil, err
	}
	in := &Input{
		name:          c.Name,
		cc:            cc,
		topics:        c.Strings("topics"),
		group:         c.String("group"),
		maxPoll:       int(c.Int("max_poll_records")),
		revokeTimeout: c.Duration("revoke_timeout"),
		hdrPrefix:     c.String("header_prefix"),
		owned:         map[tp]bool{},
		revokeCh:      make(chan *revokeReq, 16),
		parts:         map[tp]*partState{},
	}
	if err := in.parseTopicRegex(c); err != nil {
		return nil, err
	}
	if len(in.topics) == 0 && len(in.regex) == 0 {
		return nil, c.Errorf("topics", "at least one topic (or topics_regex) is required")
	}
	for _, t := range in.topics {
		if err := validTopic([]byte(t)); err != nil {
			return nil, c.Errorf("topics", "%v", err)
		}
	}
	for _, s := range c.Strings("partitions") {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			return nil, c.Errorf("partitions", "%q is not a partition number", s)
		}
		in.partitions = append(in.partitions, int32(n))
	}
	if in.group != "" && len(in.partitions) > 0 {
		return nil, c.Errorf("partitions", "explicit partitions and a consumer group exclude each other")
	}
	in.start = kgo.NewOffset().AtStart()
	if c.String("start") == "newest" {
		in.start = kgo.NewOffset().AtEnd()
	}
	opts := cc.baseOpts()
	opts = append(opts,
		kgo.FetchMaxBytes(int32(c.Size("fetch_max_bytes"))),
		kgo.ConsumeResetOffset(in.start),
		kgo.MetadataMaxAge(c.Duration("topics_refresh")),
		kgo.FetchMaxWait(c.Duration("fetch_max_wait")),
	)
	if in.group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(in.group),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.DisableAutoCommit(),
			kgo.SessionTimeout(c.Duration("session_timeout")),
			kgo.RebalanceTimeout(c.Duration("rebalance_timeout")),
			kgo.OnPartitionsAssigned(in.onAssigned),
			kgo.OnPartitionsRevoked(in.onRevoked),
			kgo.OnPartitionsLost(in.onLost),
		)
		opts = append(opts, in.consumeTopicsOpts(c)...)
		if id := c.String("instance_id"); id != "" {
			opts = append(opts, kgo.InstanceID(id))
		}
	}
	in.opts = opts
	return in, nil
}

// Start implements engine.Starter: it creates the client (a group member
// joins now) and checks that the cluster answers within connect_timeout.
func (in *Input) Start(ctx context.Context) error {
	if in.cl != nil {
		return nil
	}
	cl, err := kgo.NewClient(in.opts...)
	if err != nil {
		return fmt.Errorf("kafka input %s: %w", in.name, err)
	}
	if err := in.cc.ping(ctx, cl); err != nil {
		cl.Close()
		return fmt.Errorf("kafka input %s: %w", in.name, err)
	}
	in.cl = cl
	return nil
}

// Close implements engine.Closer: it leaves the group (the revoke callback
// finds Run stopped and only releases) and closes the client.
func (in *Input) Close(context.Context) error {
	if in.cl != nil {
		in.cl.Close()
		in.cl = nil
	}
	return nil
}

// InputStats are the input's counters.
type InputStats struct {
	Emitted, Skipped, Commits, CommitErrors, Revokes uint64
}

// Stats returns a snapshot of the counters.
func (in *Input) Stats() InputStats {
	return InputStats{in.emitted.Load(), in.skipped.Load(), in.commits.Load(), in.commitErr.Load(), in.revokes.Load()}
}

// Run implements engine.Input.
func (in *Input) Run(ctx context.Context, ic engine.InputContext) error {
	if in.cl == nil {
		if err := in.Start(ctx); err != nil {
			return err
		}
	}
	in.mu.Lock()
	in.running = true
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.running = false
		in.mu.Unlock()
		// Answer revocations that raced with our exit.
		for {
			select {
			case req := <-in.revokeCh:
				close(req.done)
			default:
				return
			}
		}
	}()
	// Streams from a previous Run of this instance are stale after a
	// restart; reopen them.
	clear(in.parts)
	in.last = nil
	if in.group == "" && !in.added {
		if err := in.assignDirect(ctx, ic); err != nil {
			return err
		}
		in.added = true
	}
	for {
		if err := in.handleRevokes(ic); err != nil {
			return err
		}
		pollCtx, cancel := context.WithCancel(ctx)
		in.mu.Lock()
		in.pollCancel = cancel
		in.mu.Unlock()
		var fetches kgo.Fetches
		if len(in.revokeCh) == 0 {
			fetches = in.cl.PollRecords(pollCtx, in.maxPoll)
		}
		in.mu.Lock()
		in.pollCancel = nil
		in.mu.Unlock()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return nil
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if isRetryable(err) {
				ic.Log().Warn("kafka fetch error: retrying", "topic", t, "partition", p, "err", err)
				return
			}
			if fatal == nil {
				fatal = fmt.Errorf("kafka input %s: fetch %s/%d: %w%s", in.name, t, p, err, in.cc.aclHint(err, kmsg.ACLOperationRead, t))
			}
		})
		if fatal != nil {
			return fatal
		}
		var err error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if err != nil {
					return
				}
				err = in.emit(ctx, ic, r)
			}
			if n := len(fp.Records); n > 0 && err == nil {
				last := fp.Records[n-1]
				in.lag.set(tp{fp.Topic, fp.Partition}, fp.HighWatermark, last.Offset+1, last.Timestamp)
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := ic.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// emit turns r into a packet. It allocates nothing in steady state.
func (in *Input) emit(ctx context.Context, ic engine.InputContext, r *kgo.Record) error {
	ps, err := in.state(ic, r.Topic, r.Partition)
	if err != nil {
		return err
	}
	if r.Offset < ps.skipBelow {
		in.skipped.Add(1)
		return nil
	}
	p, err := ic.NewPacket(ctx)
	if err != nil {
		return err
	}
	p.Payload = append(p.Payload[:0], r.Value...)
	if r.Key != nil {
		p.Key = append(p.Key[:0], r.Key...)
	}
	p.Ts = r.Timestamp.UnixNano()
	p.Attrs.SetString("kafka.topic", r.Topic)
	p.Attrs.SetInt("kafka.partition", int64(r.Partition))
	p.Attrs.SetInt("kafka.offset", r.Offset)
	for i := range r.Headers {
		h := &r.Headers[i]
		in.scratch = append(append(in.scratch[:0], in.hdrPrefix...), h.Key...)
		p.Attrs.SetBytesKey(in.scratch, h.Value)
	}
	p.Pos.Offset = r.Offset + 1
	p.Flags |= pack.FlagBoundary
	in.emitted.Add(1)
	return ic.Emit(ctx, ps.s, p)
}

// state returns the partition's stream, opening it (and learning where
// the engine's checkpoint says to resume) on first sight.
func (in *Input) state(ic engine.InputContext, topic string, part int32) (*partState, error) {
	if in.last != nil && in.lastTP.part == part && in.lastTP.topic == topic {
		return in.last, nil
	}
	k := tp{topic, part}
	ps := in.parts[k]
	if ps == nil {
		s, err := ic.Stream(k.id())
		if err != nil {
			return nil, fmt.Errorf("kafka input %s: open stream %s: %w", in.name, k.id(), err)
		}
		ps = &partState{s: s}
		if cp, ok := s.Resume(); ok {
			// The group's committed offset may lag the engine's
			// checkpoint (crash between the two): skip what the
			// checkpoint says is delivered.
			ps.skipBelow = cp.Offset
		}
		in.parts[k] = ps
	}
	in.last, in.lastTP = ps, k
	return ps, nil
}

// assignDirect starts consuming explicit partitions from the engine's
// checkpoints, or from start.
func (in *Input) assignDirect(ctx context.Context, ic engine.InputContext) error {
	want := map[string][]int32{}
	if len(in.partitions) > 0 {
		for _, t := range in.topics {
			want[t] = in.partitions
		}
	} else {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range in.topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		mctx, cancel := context.WithTimeout(ctx, in.cc.connectTimeout)
		resp, err := req.RequestWith(mctx, in.cl)
		cancel()
		if err != nil {
			return fmt.Errorf("kafka input %s: list partitions of %v: %w", in.name, in.topics, err)
		}
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 || t.Topic == nil {
				name := "?"
				if t.Topic != nil {
					name = *t.Topic
				}
				return fmt.Errorf("kafka input %s: topic %s: %w", in.name, name, kerr.ErrorForCode(t.ErrorCode))
			}
			for _, p := range t.Partitions {
				want[*t.Topic] = append(want[*t.Topic], p.Partition)
			}
		}
	}
	offsets := map[string]map[int32]kgo.Offset{}
	in.mu.Lock()
	for t, ps := range want {
		offsets[t] = map[int32]kgo.Offset{}
		for _, p := range ps {
			k := tp{t, p}
			s, err := ic.Stream(k.id())
			if err != nil {
				in.mu.Unlock()
				return fmt.Errorf("kafka input %s: open stream %s: %w", in.name, k.id(), err)
			}
			if cp, ok := s.Resume(); ok {
				offsets[t][p] = kgo.NewOffset().At(cp.Offset)
			} else {
				offsets[t][p] = in.start
			}
			in.owned[k] = true
		}
	}
	in.mu.Unlock()
	in.cl.AddConsumePartitions(offsets)
	return nil
}

// handleRevokes gives up revoked partitions: no more emission, wait
// (bounded) for their in-flight packets, commit, release.
func (in *Input) handleRevokes(ic engine.InputContext) error {
	for {
		var req *revokeReq
		select {
		case req = <-in.revokeCh:
		default:
			return nil
		}
		in.revokes.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), in.revokeTimeout)
		// Hand on what is batched so it can be acked.
		if err := ic.Flush(ctx); err != nil {
			cancel()
			close(req.done)
			return err
		}
		for t, parts := range req.parts {
			for _, p := range parts {
				k := tp{t, p}
				ps := in.parts[k]
				if ps == nil {
					continue
				}
				delete(in.parts, k)
				if in.last == ps {
					in.last = nil
				}
				if req.lost {
					continue
				}
				if err := in.closeStream(ctx, ic, ps.s); err != nil {
					ic.Log().Warn("kafka partition revoked before its packets were acked: the next owner re-reads them",
						"topic", t, "partition", p, "err", err)
				}
			}
		}
		cancel()
		close(req.done)
	}
}

// closeStream waits for s's in-flight packets and commits its position.
func (in *Input) closeStream(ctx context.Context, ic engine.InputContext, s *engine.Stream) error {
	if sc, ok := ic.(streamCloser); ok {
		return sc.CloseStream(ctx, s)
	}
	// Fallback without the engine ability: wait, then commit the acked
	// position ourselves.
	for s.InFlight() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d packets still in flight: %w", s.InFlight(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	if cp, ok := s.Resume(); ok {
		return in.Commit(ctx, s.ID(), pack.Pos{Offset: cp.Offset})
	}
	return nil
}

func (in *Input) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	in.mu.Lock()
	for t, ps := range m {
		for _, p := range ps {
			in.owned[tp{t, p}] = true
		}
	}
	in.mu.Unlock()
}

func (in *Input) onRevoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	in.revoke(m, false)
}

func (in *Input) onLost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	in.revoke(m, true)
}

// revoke runs on the group goroutine: it asks Run to give the partitions
// up and waits (bounded) for it, then forgets them.
func (in *Input) revoke(m map[string][]int32, lost bool) {
	if len(m) == 0 {
		return
	}
	if lost {
		in.setOwned(m, false) // commits would fail anyway
	}
	in.mu.Lock()
	running := in.running
	in.mu.Unlock()
	if running {
		req := &revokeReq{parts: m, lost: lost, done: make(chan struct{})}
		select {
		case in.revokeCh <- req:
			in.mu.Lock()
			if in.pollCancel != nil {
				in.pollCancel()
			}
			in.mu.Unlock()
			t := time.NewTimer(in.revokeTimeout + time.Second)
			select {
			case <-req.done:
			case <-t.C:
			}
			t.Stop()
		default:
		}
	}
	in.setOwned(m, false)
	for topic, parts := range m {
		for _, part := range parts {
			in.lag.drop(tp{topic, part}) // another member reports it now
		}
	}
}

func (in *Input) setOwned(m map[string][]int32, on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			if on {
				in.owned[tp{t, p}] = true
			} else {
				delete(in.owned, tp{t, p})
			}
		}
	}
}

// Commit implements engine.Committer: it commits offset pos.Offset (the
// next record to read) of stream "topic/partition" to the group. Streams
// of partitions this member no longer owns are ignored (the new owner
// commits them). Without a group, positions live only in the engine's
// checkpoint store.
func (in *Input) Commit(ctx context.Context, stream string, pos pack.Pos) error {
	if in.group == "" || in.cl == nil {
		return nil
	}
	i := strings.LastIndexByte(stream, '/')
	if i < 0 {
		return fmt.Errorf("kafka input %s: stream id %q is not topic/partition", in.name, stream)
	}
	part, err := strconv.ParseInt(stream[i+1:], 10, 32)
	if err != nil {
		return fmt.Errorf("kafka input %s: stream id %q is not topic/partition", in.name, stream)
	}
	topic := stream[:i]
	in.mu.Lock()
	owned := in.owned[tp{topic, int32(part)}]
	in.mu.Unlock()
	if !owned {
		return nil
	}
	var cerr error
	in.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {int32(part): {Epoch: -1, Offset: pos.Offset}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 && cerr == nil {
						cerr = kerr.ErrorForCode(p.ErrorCode)
					}
				}
			}
		})
	if cerr != nil {
		in.commitErr.Add(1)
		return fmt.Errorf("kafka input %s: commit %s offset %d to group %s: %w", in.name, stream, pos.Offset, in.group, cerr)
	}
	in.commits.Add(1)
	return nil
}
