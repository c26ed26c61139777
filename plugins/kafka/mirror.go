package kafka

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dbus-project/dbus/engine"
	"github.com/dbus-project/dbus/pack"
)

// Mirror features of KafkaOutput (issue 16, what MirrorMaker 2 offers):
// target topics created to match their source (mirror_topics.go),
// consumer-group offsets translated to the target (mirror_offsets.go) and
// replication lag and latency per source partition (lag.go). They work
// when the output is fed by one KafkaInput: the engine hands it over
// (engine.SourceBinder) and the output opens a client of its own to the
// source cluster with that input's connection settings (brokers, tls,
// sasl).
//
// Goroutines: before runs on the output's Write goroutine; acked on
// franz-go's promise goroutine (the batch's last promise); the sync loop
// (mirror_offsets.go) on a goroutine the output starts in Start and stops
// in Close before its client is closed; report at scrape time. Lock
// order: mirrorState.mu only, never held across a client call.

func mirrorFields() []engine.Field {
	return []engine.Field{
		{Name: "create_topics", Type: engine.TypeBool, Default: false, Doc: "Mirror: before the first record to a target topic that does not exist, create it with its source topic's partition count and topic_configs (read from the source cluster of the KafkaInput feeding this output). A target with fewer partitions than its source is an error with partitioner attr and on_missing_partition fail."},
		{Name: "topic_configs", Type: engine.TypeStrings, Default: defaultMirrorConfigs, Doc: "create_topics: the source topic configs copied to a created target (those set on the source topic; broker defaults are not copied)."},
		{Name: "replication_factor", Type: engine.TypeInt, Default: int64(-1), HasRange: true, Min: -1, Max: 32767, Doc: "create_topics: replication factor of created topics (-1: the target broker's default)."},
		{Name: "sync_groups", Type: engine.TypeStrings, Doc: "Mirror: consumer groups of the source cluster (RE2 patterns, whole name) whose committed offsets are translated to target offsets and committed to the same group on this cluster every sync_groups_interval, never past what was mirrored, never while the group has members here, never moving it back. Needs partitioner attr."},
		{Name: "sync_groups_interval", Type: engine.TypeDuration, Default: 5 * time.Second, Doc: "sync_groups: how often offsets are translated, and the offset syncs written."},
		{Name: "offset_syncs_topic", Type: engine.TypeString, Default: "", Doc: "sync_groups: compacted topic on this cluster recording which source offset was mirrored to which target offset (read back at start); default __dbus_offset_syncs.<output name>."},
	}
}

var defaultMirrorConfigs = []string{"cleanup.policy", "retention.ms", "retention.bytes", "compression.type",
	"max.message.bytes", "message.timestamp.type", "min.compaction.lag.ms", "max.compaction.lag.ms",
	"delete.retention.ms", "segment.bytes", "segment.ms"}

// mirrorState is an Output's mirror bookkeeping (nil when no KafkaInput
// feeds the output).
type mirrorState struct {
	o            *Output
	createTopics bool
	configs      []string
	replication  int16
	groups       []*regexp.Regexp
	interval     time.Duration
	syncTopic    string

	src    *Input      // the KafkaInput feeding the output
	srcCl  *kgo.Client // own client of the source cluster, Start..Close
	srcAdm *kadm.Client
	dstCl  *kgo.Client // own admin client of the target: the producer's would create topics by describing them
	dstAdm *kadm.Client

	// Write goroutine only.
	names     *internTable
	lastSrc   string                // source topic of the previous record
	topics    map[string]topicState // target topic -> checked or created
	lastTopic string

	mu    sync.Mutex
	parts map[tp]*mirrorPart // guarded by mu; by source topic/partition

	stop chan struct{} // closed by close: ends the sync loop
	done chan struct{} // closed by the sync loop

	latSum        atomic.Uint64 // float64 bits: sum of end-to-end latencies, seconds
	latCount      atomic.Uint64
	topicsCreated atomic.Uint64
	groupCommits  atomic.Uint64 // translated partition offsets committed on the target
	syncErrors    atomic.Uint64
}

// srcPos is where a record of a batch came from (batchState.msrc).
type srcPos struct {
	topic string
	part  int32
	off   int64
	ok    bool
}

// mirrorPart is the mirror's state of one source partition.
type mirrorPart struct {
	tgtTopic string
	tgtPart  int32
	next     int64     // source offset after the last mirrored record
	lastTs   time.Time // source timestamp of that record
	latency  float64   // seconds from its timestamp to its ack
	last     offsetSync
	hasLast  bool
	hist     []offsetSync // older syncs, oldest first, at most maxSyncHistory (see addHist)
	dirty    bool         // last not written to the offset syncs topic yet
}

// offsetSync says source offset src was mirrored to target offset dst.
type offsetSync struct{ src, dst int64 }

const (
	// maxSyncHistory bounds each partition's offset sync history.
	maxSyncHistory = 256
	// syncHistoryStep: a sync goes to the history at least every this
	// many source records (and at the end of each run of a partition's
	// records in a batch), so a failed-over consumer near the head reads
	// again at most about this many records per partition.
	syncHistoryStep = 16
)

// initMirror reads the mirror options. The state itself is created when
// a KafkaInput is bound (BindSources).
func (o *Output) initMirror(c *engine.Conf) error {
	m := &mirrorState{
		o:            o,
		createTopics: c.Bool("create_topics"),
		configs:      c.Strings("topic_configs"),
		replication:  int16(c.Int("replication_factor")),
		interval:     c.Duration("sync_groups_interval"),
		syncTopic:    c.String("offset_syncs_topic"),
		names:        newInternTable(1 << 14),
		topics:       map[string]topicState{},
		parts:        map[tp]*mirrorPart{},
	}
	for _, re := range c.Strings("sync_groups") {
		rx, err := regexp.Compile(anchor(re))
		if err != nil {
			return c.Errorf("sync_groups", "%q: %v", re, err)
		}
		m.groups = append(m.groups, rx)
	}
	if len(m.groups) > 0 {
		if o.mode != partAttr || o.part.hashMissing {
			return c.Errorf("sync_groups", "offset translation needs partitioner attr with on_missing_partition fail (each source partition mirrored to the same target partition)")
		}
		if m.interval <= 0 {
			return c.Errorf("sync_groups_interval", "must be positive")
		}
		if m.syncTopic == "" {
			m.syncTopic = "__dbus_offset_syncs." + c.Name
		}
		if err := validTopic([]byte(m.syncTopic)); err != nil {
			return c.Errorf("offset_syncs_topic", "%v", err)
		}
	}
	if c.Bool("exactly_once") && (m.createTopics || len(m.groups) > 0) {
		return c.Errorf("exactly_once", "create_topics and sync_groups are not supported with exactly_once yet")
	}
	o.mirrorConf = m
	return nil
}

// BindSources implements engine.SourceBinder: an output fed by exactly one
// KafkaInput mirrors it. create_topics and sync_groups need one.
func (o *Output) BindSources(inputs map[string]engine.Input) error {
	m := o.mirrorConf
	var src *Input
	n := 0
	for _, in := range inputs {
		if k, ok := in.(*Input); ok {
			src = k
			n++
		}
	}
	needs := m.createTopics || len(m.groups) > 0
	if n != 1 || len(inputs) != 1 {
		if needs {
			return fmt.Errorf("create_topics and sync_groups need exactly one input, a KafkaInput (the source cluster), feeding output %s", o.name)
		}
		o.mirror = nil
		return nil
	}
	m.src = src
	o.mirror = m
	return nil
}

// startMirror opens the source client and, with sync_groups, loads the
// offset syncs and starts the sync loop.
func (o *Output) startMirror(ctx context.Context) error {
	m := o.mirror
	if !m.createTopics && len(m.groups) == 0 {
		return nil // lag and latency only: nothing to reach
	}
	cl, err := kgo.NewClient(m.src.cc.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka output %s: source cluster client: %w", o.name, err)
	}
	dst, err := kgo.NewClient(o.cc.baseOpts()...)
	if err != nil {
		cl.Close()
		return fmt.Errorf("kafka output %s: admin client: %w", o.name, err)
	}
	m.srcCl, m.srcAdm, m.dstCl, m.dstAdm = cl, kadm.NewClient(cl), dst, kadm.NewClient(dst)
	if len(m.groups) == 0 {
		return nil
	}
	if err := m.loadSyncs(ctx); err != nil {
		o.closeMirror()
		return fmt.Errorf("kafka output %s: offset syncs topic %s: %w", o.name, m.syncTopic, err)
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.syncLoop()
	return nil
}

// closeMirror stops the sync loop (it writes the last offset syncs) and
// closes the source client. It runs before the output's client closes.
func (o *Output) closeMirror() {
	m := o.mirror
	if m == nil {
		return
	}
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop = nil
	}
	if m.srcCl != nil {
		m.srcCl.Close()
		m.dstCl.Close()
		m.srcCl, m.dstCl = nil, nil
	}
}

// before runs for each record about to be produced: it notes where the
// record came from and, with create_topics, makes sure its target topic
// exists. It allocates nothing in steady state.
func (m *mirrorState) before(b *batchState, i int, r *kgo.Record, p *pack.Packet) error {
	if len(b.msrc) < len(b.recs) {
		b.msrc = make([]srcPos, cap(b.recs))
	}
	s := &b.msrc[i]
	*s = srcPos{}
	// One pass over the attributes (KafkaInput sets these three).
	var topic []byte
	var okp, oko bool
	for j := 0; j < p.Attrs.Len(); j++ {
		a := p.Attrs.At(j)
		switch string(a.K) {
		case "kafka.topic":
			if a.Kind == pack.KindString {
				topic = a.B
			}
		case "kafka.partition":
			var v int64
			v, okp = a.Int()
			s.part = int32(v)
		case "kafka.offset":
			s.off, oko = a.Int()
		}
	}
	if topic != nil && okp && oko {
		if string(topic) != m.lastSrc { // runs of one topic: no map lookup
			m.lastSrc = m.names.get(topic)
		}
		s.topic, s.ok = m.lastSrc, true
	}
	if !m.createTopics || r.Topic == m.lastTopic {
		return nil
	}
	if !s.ok {
		return permanent(fmt.Errorf("create_topics: record has no kafka.topic/kafka.partition/kafka.offset attributes to find its source topic"))
	}
	if err := m.ensureTopic(r.Topic, s.topic); err != nil {
		return err
	}
	m.lastTopic = r.Topic
	return nil
}

// acked runs on the promise goroutine when batch b completed, before its
// records are reset: it advances each source partition's mirrored offset,
// its latest offset sync and the latency figures.
func (m *mirrorState) acked(b *batchState) {
	if len(b.msrc) < b.n {
		return
	}
	now := time.Now()
	var sum float64
	var count uint64
	m.mu.Lock()
	var cur *mirrorPart
	var curK tp
	for i := 0; i < b.n; i++ {
		r, s := &b.recs[i], &b.msrc[i]
		if !s.ok || r.Topic == "" || b.errs[i] != nil {
			continue
		}
		k := tp{s.topic, s.part}
		if cur == nil || k != curK {
			if cur != nil && cur.hasLast {
				cur.addHist(cur.last) // one history entry per run of a partition's records
			}
			cur, curK = m.parts[k], k
			if cur == nil {
				cur = &mirrorPart{}
				m.parts[k] = cur
			}
		}
		if s.off+1 > cur.next {
			cur.next, cur.lastTs = s.off+1, r.Timestamp
		}
		// Engine batches complete out of order (one waits for another
		// partition's ack): the latest sync is the one with the highest
		// target offset, not the last one seen.
		if !cur.hasLast || r.Offset > cur.last.dst || r.Topic != cur.tgtTopic || r.Partition != cur.tgtPart {
			if n := len(cur.hist); cur.hasLast && (n == 0 || s.off-cur.hist[n-1].src > syncHistoryStep || s.off < cur.hist[n-1].src) {
				cur.addHist(cur.last)
			}
			cur.tgtTopic, cur.tgtPart = r.Topic, r.Partition
			cur.last, cur.hasLast, cur.dirty = offsetSync{s.off, r.Offset}, true, true
		} else if s.off%syncHistoryStep == 0 {
			cur.addHist(offsetSync{s.off, r.Offset}) // an older pair: still a true one
		}
		if !r.Timestamp.IsZero() {
			lat := max(now.Sub(r.Timestamp).Seconds(), 0)
			cur.latency = lat
			sum += lat
			count++
		}
	}
	if cur != nil && cur.hasLast {
		cur.addHist(cur.last)
	}
	m.mu.Unlock()
	if count > 0 {
		for {
			old := m.latSum.Load()
			if m.latSum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+sum)) {
				break
			}
		}
		m.latCount.Add(count)
	}
}

// addHist appends s to the history. A full history keeps every other
// entry of its older half, so recent syncs stay dense and older ones
// thin out exponentially (as MirrorMaker 2's offset sync store does): a
// group near the head translates precisely, an old one still roughly.
func (p *mirrorPart) addHist(s offsetSync) {
	if n := len(p.hist); n > 0 && p.hist[n-1] == s {
		return
	}
	if len(p.hist) >= maxSyncHistory {
		half := len(p.hist) / 2
		j := 0
		for i := 0; i < half; i += 2 {
			p.hist[j] = p.hist[i]
			j++
		}
		j += copy(p.hist[j:], p.hist[half:])
		p.hist = p.hist[:j]
	}
	p.hist = append(p.hist, s)
}
