package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// The meta range (docs/consensus.md, "The meta range").
//
// A range's descriptor lives in the range itself, in its replicated
// range-local data, and changes only through its own log (split triggers,
// merges, configuration changes): that copy is the truth, and every
// request is checked against it (RangeMismatchError). The meta range is
// the cluster's index of those truths: one entry per range in the span
// [MetaStart, MetaEnd) of the system keyspace, keyed by the range's end
// key (as CockroachDB's meta2 is), so that finding the range of key k is
// a scan from just above k that stops at the first entry. Whoever must
// find a range the node's cache cannot (a client whose guess taught it
// nothing, an operator, the simulator's checker) reads it there.
//
// Entries are written by the ranges' leaders, after the fact: every
// MetaInterval a leader hands its ranges' descriptors to the node's meta
// task, which publishes those that changed since it last did
// (OpMetaUpdate). The meta range's leader evaluates an update against the
// entries the new descriptor overlaps, atomically (evaluation at the
// leader, effects in the log): it writes the descriptor and deletes the
// entries it overlaps if it supersedes every one of them (a higher
// generation; the same range and generation read at a later applied
// index), and does nothing otherwise. So the meta range never holds two
// overlapping entries, an entry never goes back in time, a stale
// publisher (a deposed leader, a late retry) changes nothing, and once the
// ranges stop changing every range's current leader has published it:
// the index converges to the truth.
//
// Departure from issue 12's wording ("descriptor updates are transactions
// on the meta range and the ranges concerned"): without a transaction
// layer (issue 14) a split cannot commit in two Raft groups at once, so
// the range's own log decides and the meta range follows. Between a
// change and its publication the index lags: it may miss a range (a
// lookup finds nothing or an older, narrower entry) or name one that
// changed since, never one newer than the truth. Every user of it treats
// an entry as a routing hint that the range's own generation check
// confirms or refuses, exactly as the range cache is treated.
//
// The meta span is never split (a split key inside it is refused, and
// automatic splits move theirs out of it), so one range holds every
// entry and an update's overlap check sees them all.

var (
	// MetaStart and MetaEnd bound the meta range's span.
	MetaStart = append(slices.Clone(SystemKeyPrefix), "meta/"...)
	MetaEnd   = append(slices.Clone(SystemKeyPrefix), "meta0"...)
)

// The span's keys: MetaStart, then 1 and a range's end key, or 2 for the
// range that runs to the end of the keyspace (after every finite end): the
// descriptors; then 3 and a node ID (8 bytes, big endian): the node
// directory's entries (MetaNodeKey; package cluster keeps them).
const (
	metaFiniteEnd   = 1
	metaInfiniteEnd = 2
	metaNode        = 3
)

var (
	metaDescStart = append(slices.Clone(MetaStart), metaFiniteEnd)
	metaDescEnd   = append(slices.Clone(MetaStart), metaNode)
	// MetaNodesStart and MetaNodesEnd bound the node directory's entries.
	MetaNodesStart = append(slices.Clone(MetaStart), metaNode)
	MetaNodesEnd   = append(slices.Clone(MetaStart), metaNode+1)
)

// MetaNodeKey is the key of node n's entry in the meta range.
func MetaNodeKey(n kernel.NodeID) []byte {
	return binary.BigEndian.AppendUint64(slices.Clone(MetaNodesStart), uint64(n))
}

// metaKey is the key of the entry of a range ending at end (nil: the end
// of the keyspace).
func metaKey(end []byte) []byte {
	k := slices.Clone(MetaStart)
	if end == nil {
		return append(k, metaInfiniteEnd)
	}
	return append(append(k, metaFiniteEnd), end...)
}

// insideMeta reports whether key is strictly inside the meta span, where
// no range may start.
func insideMeta(key []byte) bool {
	return bytes.Compare(key, MetaStart) > 0 && bytes.Compare(key, MetaEnd) < 0
}

// clearOfMeta moves a split key that falls strictly inside the meta span
// to the span's start or end, whichever is strictly inside d (nil if
// neither is).
func clearOfMeta(d Descriptor, key []byte) []byte {
	if key == nil || !insideMeta(key) {
		return key
	}
	inside := func(k []byte) bool {
		return bytes.Compare(k, d.Start) > 0 && (d.End == nil || bytes.Compare(k, d.End) < 0)
	}
	for _, k := range [][]byte{MetaStart, MetaEnd} {
		if inside(k) {
			return slices.Clone(k)
		}
	}
	return nil
}

// MetaEntry is a range's descriptor as the meta range holds it: with its
// replicas, and the applied index of the range's replica it was read
// from (which orders two readings of one range in one generation: a
// configuration change in between).
type MetaEntry struct {
	Descriptor
	Index uint64
}

func (e MetaEntry) encode() []byte { return binary.AppendUvarint(e.Descriptor.appendTo(nil), e.Index) }

func decodeMetaEntry(b []byte) (MetaEntry, error) {
	d, rest, err := readDescriptor(b)
	if err != nil {
		return MetaEntry{}, err
	}
	idx, w := binary.Uvarint(rest)
	if w <= 0 || w != len(rest) {
		return MetaEntry{}, errMalformed
	}
	return MetaEntry{Descriptor: d, Index: idx}, nil
}

// supersedes reports whether e is newer than o: a higher generation (a
// descriptor that replaces another over a span always has one: splits
// and merges raise it above what they replace), or the same range and
// generation read at a later index.
func (e MetaEntry) supersedes(o MetaEntry) bool {
	return e.Generation > o.Generation || (e.ID == o.ID && e.Generation == o.Generation && e.Index > o.Index)
}

// sameAs reports whether e and o describe the range alike (the index
// aside): publishing e again would tell nobody anything.
func (e MetaEntry) sameAs(o MetaEntry) bool {
	return e.ID == o.ID && e.Generation == o.Generation && sameSpan(e.Descriptor, o.Descriptor) && slices.Equal(e.Replicas, o.Replicas)
}

// ErrSplitInsideMeta refuses a split whose key is strictly inside the
// meta span: one range holds every meta entry.
var ErrSplitInsideMeta = errors.New("consensus: no range may start inside the meta span")

// errMetaSplit refuses a meta update at a range that does not hold the
// whole meta span (it can only have been split inside it by a node that
// predates the meta range).
var errMetaSplit = errors.New("consensus: the meta span is not in one range")

// checkMetaUpdate runs at the leader before an update is evaluated.
func checkMetaUpdate(r *replica, req Request) error {
	e, err := decodeMetaEntry(req.Value)
	if err != nil {
		return err
	}
	if e.Empty() || !bytes.Equal(req.Key, metaKey(e.End)) {
		return fmt.Errorf("%w: a meta update for %v keyed %q", errMalformed, e.Descriptor, req.Key)
	}
	if !r.desc.Contains(MetaStart) || (r.desc.End != nil && bytes.Compare(r.desc.End, MetaEnd) < 0) {
		return fmt.Errorf("%w: range %v", errMetaSplit, r.desc)
	}
	return nil
}

// applyMetaUpdate stages the update in value (checked by checkMetaUpdate)
// and reports whether it wrote: it does when the entry supersedes every
// entry it overlaps, and deletes those.
func applyMetaUpdate(b writeState, d Descriptor, value []byte) bool {
	e, err := decodeMetaEntry(value)
	if err != nil {
		kernel.Crash("range %d: a meta update that was checked does not decode: %v", d.ID, err)
	}
	var overlapped [][]byte
	// The entries ending after e's start, up to the first that starts at
	// or after e's end.
	pos := append(metaKey(e.Start), 0)
	for pos != nil {
		kvs, resume, err := b.Scan(pos, metaDescEnd, scanPage)
		if err != nil {
			kernel.Crash("range %d: meta read: %v", d.ID, err)
		}
		for _, kv := range kvs {
			o, err := decodeMetaEntry(kv.Value)
			if err != nil {
				kernel.Crash("range %d: meta entry %q: %v", d.ID, kv.Key, err)
			}
			if e.End != nil && bytes.Compare(o.Start, e.End) >= 0 {
				resume = nil
				break
			}
			if !e.supersedes(o) {
				return false
			}
			overlapped = append(overlapped, kv.Key)
		}
		pos = resume
	}
	if !mutation.On(MutMetaKeepsOverlapped) {
		for _, k := range overlapped {
			b.Delete(k)
		}
	}
	b.Set(metaKey(e.End), value)
	return true
}

// ReadMeta returns every descriptor of the meta range in eng's replica of it,
// in key order (the simulator's checker reads a replica's copy this way).
func ReadMeta(eng *storage.Engine) ([]MetaEntry, error) {
	var out []MetaEntry
	pos := metaDescStart
	for pos != nil {
		kvs, resume, err := eng.Scan(pos, metaDescEnd, scanPage)
		if err != nil {
			return out, err
		}
		if out, err = appendMetaEntries(out, kvs); err != nil {
			return out, err
		}
		pos = resume
	}
	return out, nil
}

// appendMetaEntries decodes the descriptors kvs hold onto out.
func appendMetaEntries(out []MetaEntry, kvs []storage.KeyValue) ([]MetaEntry, error) {
	for _, kv := range kvs {
		e, err := decodeMetaEntry(kv.Value)
		if err != nil {
			return out, fmt.Errorf("meta entry %q: %w", kv.Key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// PublishDescriptor writes e to the meta range unless it holds a newer
// entry over any of e's keys; it reports whether it wrote.
func (c *Client) PublishDescriptor(ctx context.Context, e MetaEntry) (bool, error) {
	r, err := c.Do(ctx, Request{Op: OpMetaUpdate, Key: metaKey(e.End), Value: e.encode()})
	return r.OK, err
}

// LookupMeta returns the meta range's entry for the range holding key
// (found false: none, a range not yet published).
func (c *Client) LookupMeta(ctx context.Context, key []byte) (MetaEntry, bool, error) {
	kvs, _, err := c.Scan(ctx, append(metaKey(key), 0), metaDescEnd, 1)
	if err != nil || len(kvs) == 0 {
		return MetaEntry{}, false, err
	}
	e, err := decodeMetaEntry(kvs[0].Value)
	if err != nil {
		return MetaEntry{}, false, err
	}
	return e, e.Contains(key), nil
}

// MetaRanges returns every descriptor of the meta range, in key order (a
// linearizable read of each page).
func (c *Client) MetaRanges(ctx context.Context) ([]MetaEntry, error) {
	var out []MetaEntry
	pos := metaDescStart
	for pos != nil && bytes.Compare(pos, metaDescEnd) < 0 {
		kvs, resume, err := c.Scan(ctx, pos, metaDescEnd, MaxScanLimit)
		if err != nil {
			return out, err
		}
		if out, err = appendMetaEntries(out, kvs); err != nil {
			return out, err
		}
		pos = resume
	}
	return out, nil
}

// learnFromMeta teaches the router the meta range's entry for key: what a
// client does when a refusal taught it nothing (the node it asked holds
// no replica of the key's range, and knows no better one). A lookup of a
// meta key itself never recurses.
func (c *Client) learnFromMeta(ctx context.Context, key []byte) {
	if c.inMeta || (bytes.Compare(key, MetaStart) >= 0 && bytes.Compare(key, MetaEnd) < 0) {
		return
	}
	c.inMeta = true
	defer func() { c.inMeta = false }()
	lctx, cancel := c.rt.WithTimeout(ctx, 2*AttemptTimeout)
	defer cancel()
	if e, found, err := c.LookupMeta(lctx, key); err == nil && found {
		c.router.LearnRanges([]Descriptor{e.Descriptor})
	}
}

// metaRefresh is how often the meta task publishes a range it published
// already, unchanged: a repair that should never be needed.
const metaRefresh = 30 * time.Second

// metaPublished is what the meta task last published of one range.
type metaPublished struct {
	entry MetaEntry
	at    time.Duration
}

// noteMeta runs on the driver every MetaInterval: it hands the meta task
// the descriptors of the ranges led here.
func (s *Store) noteMeta() {
	var led []MetaEntry
	for _, id := range s.ids {
		r := s.replicas[id]
		if r.leading && !r.desc.Empty() && !r.frozen && !r.freezing {
			led = append(led, MetaEntry{Descriptor: s.describe(r), Index: r.log.Applied()})
		}
	}
	s.metaJobs.Store(&led)
	s.metaKick.Send(struct{}{})
}

// publishMeta runs on the meta task: it publishes the descriptors the
// driver hands it that changed since it last published them.
func (s *Store) publishMeta(ctx context.Context) {
	cl := NewClient(s.opts.Router, "meta")
	published := map[storage.RangeID]metaPublished{}
	for {
		if _, err := s.metaKick.Recv(ctx); err != nil {
			return
		}
		p := s.metaJobs.Load()
		if p == nil {
			continue
		}
		led := map[storage.RangeID]bool{}
		for _, e := range *p {
			led[e.ID] = true
			last, ok := published[e.ID]
			if ok && last.entry.sameAs(e) && (s.rt.Monotonic()-last.at) < metaRefresh {
				continue
			}
			pctx, cancel := s.rt.WithTimeout(ctx, 2*time.Second)
			_, err := cl.PublishDescriptor(pctx, e)
			cancel()
			if err != nil {
				s.rt.Logger().Debug("publishing a descriptor to the meta range failed; retrying later", "range", e.Descriptor, "err", err)
				continue
			}
			published[e.ID] = metaPublished{entry: e, at: s.rt.Monotonic()}
		}
		// A range no longer led here is published by its new leader; if
		// it comes back, publish it again.
		for id := range published {
			if !led[id] {
				delete(published, id)
			}
		}
	}
}
