package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer-group offset translation (KafkaOutput sync_groups), like
// MirrorMaker 2's checkpoints. While mirroring, each source partition's
// latest offset sync (source offset u was written at target offset d) is
// kept in memory with a history (one per second, maxSyncHistory), and
// written every sync_groups_interval to a compacted topic on the target
// (key "topic/partition", value "u targetTopic targetPartition d"),
// read back at start. Every interval, the committed offsets of the
// source groups matching sync_groups are translated and committed to the
// same group on the target:
//
//   - a committed offset C (the next record the group reads) translates
//     to d for a sync with u == C, and to d+1 for a sync with u < C; the
//     largest such value over the syncs is taken. It is never past what
//     was mirrored: records at or after u are written (again, after a
//     restart) at target offsets > d (>= d for u itself) because each
//     source partition goes to one target partition in order
//     (partitioner attr). So a consumer resuming there may see again the
//     records between u and C, and never misses one;
//   - a group without a sync at or below C is left alone (its position
//     is older than the history);
//   - a group with members on the target is left alone (its consumers
//     own it), and a target offset is never moved back.

// syncKey is the offset syncs record key of a source partition.
func syncKey(k tp) string { return k.topic + "/" + strconv.Itoa(int(k.part)) }

// loadSyncs creates the offset syncs topic if it is missing and reads
// every sync in it into the history.
func (m *mirrorState) loadSyncs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*m.o.cc.connectTimeout)
	defer cancel()
	resp, err := m.dstAdm.CreateTopic(ctx, 1, m.replication, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, m.syncTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create: %w", err)
	}
	ends, err := m.dstAdm.ListEndOffsets(ctx, m.syncTopic)
	if err != nil {
		return fmt.Errorf("end offset: %w", err)
	}
	end, ok := ends.Lookup(m.syncTopic, 0)
	if !ok || end.Err != nil || end.Offset == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(m.o.cc.baseOpts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		m.syncTopic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	n := 0
	for {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read up to offset %d: %w", end.Offset, err)
		}
		var last int64 = -1
		f.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			if m.addLoadedSync(string(r.Key), string(r.Value)) {
				n++
			}
		})
		if last+1 >= end.Offset {
			break
		}
	}
	m.o.log.Info("sync_groups: offset syncs read back", "topic", m.syncTopic, "syncs", n, "partitions", len(m.parts))
	return nil
}

func isAlreadyExists(err error) bool { return errors.Is(err, kerr.TopicAlreadyExists) }

// addLoadedSync adds one record of the offset syncs topic.
func (m *mirrorState) addLoadedSync(key, val string) bool {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return false
	}
	part, err1 := strconv.ParseInt(key[i+1:], 10, 32)
	f := strings.Fields(val)
	if err1 != nil || len(f) != 4 {
		return false
	}
	u, err1 := strconv.ParseInt(f[0], 10, 64)
	tpart, err2 := strconv.ParseInt(f[2], 10, 32)
	d, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	k := tp{key[:i], int32(part)}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.parts[k]
	if p == nil {
		p = &mirrorPart{}
		m.parts[k] = p
	}
	if p.hasLast {
		p.addHist(p.last)
	}
	p.tgtTopic, p.tgtPart = f[1], int32(tpart)
	p.last, p.hasLast = offsetSync{u, d}, true
	return true
}

// syncLoop writes the offset syncs and translates the groups every
// interval, and writes the syncs once more when stopped.
func (m *mirrorState) syncLoop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*m.o.cc.connectTimeout)
			if err := m.writeSyncs(ctx); err != nil {
				m.o.log.Warn("sync_groups: last offset syncs not written", "topic", m.syncTopic, "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.interval+2*m.o.cc.connectTimeout)
		if err := m.writeSyncs(ctx); err != nil {
			m.syncErrors.Add(1)
			m.o.log.Warn("sync_groups: writing offset syncs", "topic", m.syncTopic, "err", err)
		}
		if err := m.syncGroups(ctx); err != nil {
			m.syncErrors.Add(1)
			m.o.log.Warn("sync_groups: translating group offsets", "err", err)
		}
		cancel()
	}
}

// writeSyncs produces the latest sync of every partition that moved.
func (m *mirrorState) writeSyncs(ctx context.Context) error {
	var recs []*kgo.Record
	m.mu.Lock()
	for k, p := range m.parts {
		if !p.dirty {
			continue
		}
		p.dirty = false
		recs = append(recs, &kgo.Record{Topic: m.syncTopic, Partition: 0, Key: []byte(syncKey(k)),
			Value: fmt.Appendf(nil, "%d %s %d %d", p.last.src, p.tgtTopic, p.tgtPart, p.last.dst)})
	}
	m.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	if err := m.o.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		// Mark them again so the next round retries.
		m.mu.Lock()
		for _, r := range recs {
			if i := strings.LastIndexByte(string(r.Key), '/'); i >= 0 {
				part, _ := strconv.ParseInt(string(r.Key[i+1:]), 10, 32)
				if p := m.parts[tp{string(r.Key[:i]), int32(part)}]; p != nil {
					p.dirty = true
				}
			}
		}
		m.mu.Unlock()
		return err
	}
	return nil
}

// translate returns the target partition and offset for source
// partition k's committed offset c (see the file comment).
func (m *mirrorState) translate(k tp, c int64) (string, int32, int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.parts[k]
	if p == nil || !p.hasLast {
		return "", 0, 0, false
	}
	best := int64(-1)
	try := func(s offsetSync) {
		switch {
		case s.src == c:
			best = max(best, s.dst)
		case s.src < c:
			best = max(best, s.dst+1)
		}
	}
	try(p.last)
	for _, s := range p.hist {
		try(s)
	}
	if best < 0 {
		return "", 0, 0, false
	}
	return p.tgtTopic, p.tgtPart, best, true
}

// syncGroups translates the committed offsets of the matching source
// groups and commits them on the target.
func (m *mirrorState) syncGroups(ctx context.Context) error {
	listed, err := m.srcAdm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list source groups: %w", err)
	}
	var groups []string
	for _, g := range listed.Groups() {
		if g == m.src.group {
			continue // the mirror's own consumer group
		}
		for _, rx := range m.groups {
			if rx.MatchString(g) {
				groups = append(groups, g)
				break
			}
		}
	}
	sort.Strings(groups)
	if len(groups) == 0 {
		return nil
	}
	described, err := m.dstAdm.DescribeGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("describe target groups: %w", err)
	}
	var errs []string
	for _, g := range groups {
		if d, ok := described[g]; ok && d.Err == nil && len(d.Members) > 0 {
			continue // consumers on the target own the group's offsets
		}
		if err := m.syncGroup(ctx, g); err != nil {
			errs = append(errs, fmt.Sprintf("group %s: %v", g, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (m *mirrorState) syncGroup(ctx context.Context, g string) error {
	srcOffs, err := m.srcAdm.FetchOffsets(ctx, g)
	if err != nil {
		return fmt.Errorf("fetch source offsets: %w", err)
	}
	want := kadm.Offsets{}
	srcOffs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 {
			return
		}
		if topic, part, at, ok := m.translate(tp{o.Topic, o.Partition}, o.At); ok {
			want.Add(kadm.Offset{Topic: topic, Partition: part, At: at, LeaderEpoch: -1})
		}
	})
	if len(want) == 0 {
		return nil
	}
	cur, err := m.dstAdm.FetchOffsets(ctx, g)
	if err != nil && !isGroupMissing(err) {
		return fmt.Errorf("fetch target offsets: %w", err)
	}
	want.KeepFunc(func(o kadm.Offset) bool {
		c, ok := cur.Lookup(o.Topic, o.Partition)
		return !ok || c.Err != nil || c.At < o.At // never move a target offset back
	})
	if len(want) == 0 {
		return nil
	}
	// Newer OffsetCommit versions name topics by id.
	td, err := m.dstAdm.ListTopics(ctx, want.TopicsSet().Topics()...)
	if err != nil {
		return fmt.Errorf("describe target topics: %w", err)
	}
	for topic, ps := range want {
		if td[topic].Err != nil {
			// A cached answer from before the topic existed: ask afresh
			// next round.
			m.dstCl.PurgeTopicsFromClient(topic)
		}
		for p, o := range ps {
			o.TopicID = td[topic].ID
			ps[p] = o
		}
	}
	resp, err := m.dstAdm.CommitOffsets(ctx, g, want)
	if err != nil {
		return fmt.Errorf("commit translated offsets: %w", err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("commit translated offsets: %w", err)
	}
	m.groupCommits.Add(uint64(len(want.Sorted())))
	return nil
}

func isGroupMissing(err error) bool {
	return err != nil && (strings.Contains(err.Error(), kerr.GroupIDNotFound.Message) || strings.Contains(err.Error(), "GROUP_ID_NOT_FOUND"))
}
