package txn

import (
	"bytes"
	"errors"
	"slices"
	"sync"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Machine is the transactional keyspace's state machine
// (consensus.StateMachine, one per node): MVCC reads and writes, intents,
// and transaction records, evaluated at each range's leaseholder
// (docs/txn.md). It keeps, per range it leads, a timestamp cache, and the
// node's hybrid logical clock.
type Machine struct {
	clock *hlc.Clock
	opts  Options

	mu     sync.Mutex
	caches map[storage.RangeID]*rangeCache
	// seeds are the caches this node's leaders of split ranges left for
	// the right-hand ranges, each good only in the right-hand range's
	// first term (consensus.SplitNote).
	seeds map[storage.RangeID]splitSeed
	// takeovers are the summaries this node's new leaders took over from
	// the leaders that handed their ranges over (consensus.HandOverer),
	// each good for one term and span.
	takeovers map[storage.RangeID]takeover
}

// takeover is a range's previous leader's summary: every read it (and
// every leader before it) served lies at or below low.
type takeover struct {
	term       uint64
	start, end []byte
	low        hlc.Timestamp
}

// splitSeed is a split's right-hand range's cache as its left-hand
// leader left it, and the one term it may start in.
type splitSeed struct {
	firstTerm uint64
	c         *tsCache
}

var (
	_ consensus.StateMachine = (*Machine)(nil)
	_ consensus.SplitKeyer   = (*Machine)(nil)
	_ consensus.QueryNoter   = (*Machine)(nil)
	_ consensus.SplitNoter   = (*Machine)(nil)
	_ consensus.HandOverer   = (*Machine)(nil)
)

// rangeCache is a range's timestamp cache under one leader: a new term or
// a merge starts it afresh. A split keeps it, and hands a copy to the
// right-hand range if the same node leads that first (NoteSplit): the
// leader noted every read of the span served in its term, and the
// low-water mark it started with covers the reads before. Without that,
// every split cost the first writes of both halves a commit-wait of up
// to the maximum offset (sqlbank seed 175: new tables' ranges, whose
// CREATE never finished under it).
type rangeCache struct {
	term, generation uint64
	start, end       []byte // the span whose reads it holds (end nil: the keyspace's end)
	c                *tsCache
}

// maxCachedRanges bounds the caches a node keeps; past it they all start
// afresh (a fresh cache only answers higher, never lower).
const maxCachedRanges = 4096

// NewMachine returns the machine of a node whose clock is clock.
func NewMachine(clock *hlc.Clock, opts Options) *Machine {
	opts.EnsureDefaults()
	return &Machine{clock: clock, opts: opts, caches: map[storage.RangeID]*rangeCache{}}
}

// Keyspace is the machine's keyspace for consensus.Options.
func (m *Machine) Keyspace() consensus.Keyspace {
	return consensus.Keyspace{Name: "txn", Start: KeyspaceStart, End: KeyspaceEnd, Machine: m, QueriesSeeWrites: true}
}

// cache is data's range's timestamp cache as of meta. A new one's
// low-water mark is the clock's now plus the maximum offset: a
// leaseholder serves no read above its own clock's now (futureRead), and
// that clock is at most the maximum offset ahead of ours, so every read
// an earlier leaseholder served lies below the mark. Within one term, a
// new descriptor that covers no more than the old (a split, a change of
// replicas) keeps the cache; one that covers more (a merge: reads of the
// absorbed range were noted by its own leader) starts afresh.
func (m *Machine) cache(data consensus.RangeData, meta consensus.CommandMeta) *tsCache {
	id := data.Range()
	start, end := data.Bounds()
	rc := m.caches[id]
	if rc != nil && rc.term == meta.Term && rc.generation != meta.Generation &&
		spanWithin(start, end, rc.start, rc.end) {
		rc.generation, rc.start, rc.end = meta.Generation, slices.Clone(start), slices.Clone(end)
	}
	if rc == nil || rc.term != meta.Term || rc.generation != meta.Generation {
		if len(m.caches) >= maxCachedRanges {
			clear(m.caches)
			clear(m.seeds)
			clear(m.takeovers)
		}
		low := m.clock.Now().Add(m.clock.MaxOffset())
		if tk, ok := m.takeovers[id]; ok {
			delete(m.takeovers, id)
			if tk.term == meta.Term && spanWithin(start, end, tk.start, tk.end) && tk.low.Less(low) {
				low = tk.low // both bound every earlier read: the lower is the better
			}
		}
		c := newTSCache(low, m.opts.CacheSpans)
		if seed, ok := m.seeds[id]; ok {
			delete(m.seeds, id)
			if rc == nil && seed.firstTerm == meta.Term {
				c = seed.c // no one led the range before this node
			}
		}
		rc = &rangeCache{term: meta.Term, generation: meta.Generation, start: slices.Clone(start), end: slices.Clone(end), c: c}
		m.caches[id] = rc
	}
	return rc.c
}

// NoteSplit leaves the right-hand range of a split that this node's
// leader of the left-hand range applied a copy of the left's cache
// (consensus.SplitNoter), if that cache holds every read of the left's
// span since its term began: kept in that term, for the descriptor the
// split split.
func (m *Machine) NoteSplit(n consensus.SplitNote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := m.caches[n.Left]
	if rc == nil || rc.term != n.LeftTerm || rc.generation != n.LeftGeneration {
		return
	}
	if m.seeds == nil {
		m.seeds = map[storage.RangeID]splitSeed{}
	}
	m.seeds[n.Right] = splitSeed{firstTerm: n.FirstTerm, c: rc.c.clone()}
}

// HandOver summarizes range d's cache for its next leader
// (consensus.HandOverer): one timestamp at or above every read noted in
// term, which is at or above every read any earlier leader served (the
// cache's low-water mark). Nil when the cache is not of this term and
// descriptor (nothing served here in the term, or a merge since): the
// next leader's own start, its clock plus the maximum offset, is as good.
func (m *Machine) HandOver(d consensus.Descriptor, term uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := m.caches[d.ID]
	if rc == nil || rc.term != term || (rc.generation != d.Generation && !spanWithin(d.Start, d.End, rc.start, rc.end)) {
		return nil
	}
	high := rc.c.max()
	if mutation.On(MutHandoverSummaryLow) {
		high = rc.c.low
	}
	return high.AppendEncoded(nil)
}

// TakeOver keeps the summary n's range's previous leader handed over, for
// the cache this node starts in n.Term (consensus.HandOverer).
func (m *Machine) TakeOver(n consensus.TakeOverNote) {
	low, err := hlc.Decode(n.Summary)
	if err != nil {
		return // not ours to read: the worst is assumed, as without it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.takeovers == nil {
		m.takeovers = map[storage.RangeID]takeover{}
	}
	m.takeovers[n.Range] = takeover{term: n.Term, start: slices.Clone(n.Start), end: slices.Clone(n.End), low: low}
}

// Absorb extends the cache of n's left-hand range, if it is this
// leader's of the range as it was before the merge, over the right-hand
// range's span at the right-hand range's summary (consensus.HandOverer):
// the merged range keeps what it knew instead of starting afresh at the
// clock plus the maximum offset.
func (m *Machine) Absorb(n consensus.AbsorbNote) {
	high, err := hlc.Decode(n.Summary)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rc := m.caches[n.Range]
	left := consensus.Descriptor{Start: n.Merged.Start, End: n.RightStart}
	if rc == nil || rc.term != n.Term || (rc.generation != n.LeftGeneration && !spanWithin(left.Start, left.End, rc.start, rc.end)) {
		return // the next command starts the merged range's cache afresh
	}
	if !mutation.On(MutMergeSummaryDropped) {
		// The cache holds user keys; the span's bounds are stored keys
		// (Command.spanIn).
		var end []byte
		if n.RightEnd != nil {
			end = storage.MVCCKeyAt(n.RightEnd)
		}
		rc.c.add(storage.MVCCKeyAt(n.RightStart), end, high, [16]byte{})
	}
	rc.generation, rc.start, rc.end = n.Merged.Generation, slices.Clone(n.Merged.Start), slices.Clone(n.Merged.End)
}

// spanWithin reports whether [start, end) lies within [outerStart,
// outerEnd) (ends nil: the keyspace's end).
func spanWithin(start, end, outerStart, outerEnd []byte) bool {
	return bytes.Compare(start, outerStart) >= 0 && !endLess(outerEnd, end)
}

// futureRead reports whether c is a read above the clock's now (having
// taken in the sender's clock), which the leaseholder neither serves nor
// notes: the reader waits until the clock passes it. A read's timestamp
// may lie beyond every clock (moved up to a write that a cache's
// low-water mark pushed into the future); served early, it would lie
// above the next leaseholder's mark, and that one could place a write
// beneath it (found by the txnkv scenario, with a node's clock 220 ms
// ahead: a compare-and-set read a key as empty after a put had written
// it below).
func (m *Machine) futureRead(c *command) bool {
	return c.op.reads() && m.clock.Now().Less(c.read) && !mutation.On(MutFutureReadsServed)
}

// NoteQuery records a read in the timestamp cache as it arrives at the
// leaseholder (consensus.QueryNoter), before it waits for the writes in
// flight: a write evaluated from now on moves above it. A read that then
// fails leaves a cache entry for nothing, which only pushes writes.
func (m *Machine) NoteQuery(data consensus.RangeData, b []byte, meta consensus.CommandMeta) {
	c, err := decodeCommand(b)
	if err != nil || !c.op.query() || mutation.On(MutReadsNotNoted) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clock.Update(c.now) != nil || m.futureRead(c) {
		return // refused when it runs
	}
	cache := m.cache(data, meta)
	switch c.op {
	case opGet:
		cache.add(c.key, pointEnd(c.key), c.read, c.reader())
	case opScan, opRefresh, opChanges:
		if c.op == opChanges && mutation.On(MutChangesNotNoted) {
			return
		}
		if start, end, _ := c.spanIn(data.Bounds()); bytes.Compare(start, end) < 0 {
			cache.add(start, end, c.read, c.reader())
		}
	}
}

// spanIn is the part of c's span [key, end) inside a range bounded by
// the stored keys [lo, hi) (a keyspace's part of it: hi is never nil),
// in user keys; cut says the range ends before the span does.
func (c *command) spanIn(lo, hi []byte) (start, end []byte, cut bool) {
	start, end = c.key, c.end
	if first := storage.MVCCKeyAt(lo); bytes.Compare(start, first) < 0 {
		start = first
	}
	if last := storage.MVCCKeyAt(hi); bytes.Compare(end, last) > 0 {
		end, cut = last, true
	}
	return start, end, cut
}

// Apply runs a write at the leaseholder.
func (m *Machine) Apply(data consensus.RangeData, b []byte, meta consensus.CommandMeta) ([]byte, error) {
	return m.run(data, b, meta, true)
}

// Query runs a read at the leaseholder.
func (m *Machine) Query(data consensus.RangeData, b []byte, meta consensus.CommandMeta) ([]byte, error) {
	return m.run(data, b, meta, false)
}

func (m *Machine) run(data consensus.RangeData, b []byte, meta consensus.CommandMeta, write bool) ([]byte, error) {
	c, err := decodeCommand(b)
	if err != nil || c.op.query() == write || (c.txn == nil && needsTxn(c.op)) {
		return (&result{code: codeMalformed}).encode(), nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clock.Fenced() != nil {
		// This node's clock is too far from its peers' (or not checked
		// yet): it picks no timestamp and notes no read, and hands its
		// leaderships over.
		return (&result{code: codeFenced}).encode(), nil
	}
	if err := m.clock.Update(c.now); err != nil {
		return (&result{code: codeClockOffset, now: m.clock.Now()}).encode(), nil
	}
	d := &mvccData{data: data}
	d.start, d.end = data.Bounds()
	res, err := m.execute(d, c, m.cache(data, meta))
	if err == nil {
		err = d.err
	}
	if err != nil {
		return nil, err // outside the range (the client routes again), or corrupt data
	}
	res.now = m.clock.Now()
	if c.op == opAwait && res.code == codeIntent && c.wait > 0 {
		// The waiter waits at the key's leaseholder, a writer in the
		// key's queue ranked by age (wound–wait's order), and is
		// answered when the key is written (its intent resolved,
		// removed or replaced, or a version committed) or its wait is
		// up (consensus/park.go).
		return nil, &consensus.WaitForWrite{Key: storage.MVCCIntentKey(c.key), For: c.wait, Reply: res.encode(),
			Queue: c.queue, Rank: uint64(max(c.start.WallNanos, 0))}
	}
	return res.encode(), nil
}

func needsTxn(o op) bool {
	return o != opGet && o != opScan && o != opChanges && o != opPut && o != opGC && o != opAwait
}

func (m *Machine) execute(d *mvccData, c *command, cache *tsCache) (*result, error) {
	if m.futureRead(c) {
		return &result{code: codeFutureRead}, nil
	}
	if floor := m.readFloor(); c.op.reads() && (c.read.Less(floor) || ((c.op == opRefresh || c.op == opChanges) && c.from.Less(floor))) {
		// Garbage collection may have removed versions such a read
		// would see (or, for a refresh or the changes since from, would
		// have to find: a deletion collected is a change missed).
		return &result{code: codeBelowGC, ts: floor}, nil
	}
	switch c.op {
	case opGet:
		if gone, err := ownIntentGone(d, c); gone || err != nil {
			return &result{code: codeAborted, status: statusAborted}, err
		}
		v, found, err := storage.MVCCGet(d, c.key, c.readOptions())
		if res, err := conflict(err); res != nil || err != nil {
			return res, err
		}
		cache.add(c.key, pointEnd(c.key), c.read, c.reader())
		return &result{value: v, found: found}, nil
	case opScan, opRefresh, opChanges:
		return m.scan(d, c, cache)
	case opPut:
		return m.put(d, c, cache)
	case opResolve:
		return m.resolve(d, c)
	case opResolveSpan:
		return m.resolveSpan(d, c)
	case opOnePhase:
		return m.onePhase(d, c, cache)
	case opGC:
		return m.gc(d, c)
	case opLock:
		return m.lock(d, c, cache)
	case opHeld:
		_, _, in, err := storage.MVCCLatest(d, c.key)
		return &result{found: in != nil && in.Txn.ID == c.txn.ID}, err
	case opAwait:
		_, _, in, err := storage.MVCCLatest(d, c.key)
		if err != nil || in == nil || (c.txn != nil && in.Txn.ID == c.txn.ID) || isFinalized(c, in.Txn.ID) {
			return &result{}, err
		}
		return &result{code: codeIntent, intent: *in, intentKey: c.key}, nil
	}
	return m.recordOp(d, c)
}

// onePhase commits a transaction whose writes all lie in this range in
// one command (docs/txn.md, step 5's fast path): no intents, no record.
// Its timestamp is the lowest above its write timestamp, every read of
// its keys the cache knows, and their newest versions; another
// transaction's intent on a key is a conflict (pushed by the
// coordinator, which asks again). If that timestamp is above the reads'
// and the transaction read anything, it must first refresh its reads to
// it (codeNeedsRefresh), and ask again.
func (m *Machine) onePhase(d *mvccData, c *command, cache *tsCache) (*result, error) {
	ts := c.txn.Timestamp
	for _, k := range c.keys {
		newest, ok, in, err := latestSettled(d, c, k)
		if err != nil {
			return nil, err
		}
		if in != nil {
			return &result{code: codeIntent, intent: *in, intentKey: k}, nil
		}
		if ok && !newest.Less(ts) {
			ts = newest.Next()
		}
		ts = cache.floor(k, ts, c.txn.ID)
	}
	if c.reads && c.read.Less(ts) && !mutation.On(MutOnePhaseSkipsRefresh) {
		return &result{code: codeNeedsRefresh, ts: ts}, nil
	}
	for i, k := range c.keys {
		value, deleted, ok := untagged(c.writes[i])
		if !ok {
			return &result{code: codeMalformed}, nil
		}
		if err := storage.MVCCPut(d, k, ts, value, deleted); err != nil {
			return nil, err // checked above: the range's data is not what it read
		}
	}
	return &result{ts: ts}, nil
}

// ownIntentGone reports whether c reads a key its transaction wrote as an
// intent (c.mine) that no longer holds it: another transaction aborted
// this one and removed the intent, and the value beneath it is not what
// this transaction would read (it would see its own write vanish).
func ownIntentGone(d *mvccData, c *command) (bool, error) {
	if !c.mine || c.txn == nil {
		return false, nil
	}
	_, _, in, err := storage.MVCCLatest(d, c.key)
	return err == nil && (in == nil || in.Txn.ID != c.txn.ID), err
}

// latestSettled is storage.MVCCLatest for a write of key by c: an intent
// of a transaction c knows finalized (command.finalized) is resolved
// first, in the same batch, as its resolution will settle it anyway, so
// the write goes on without a push.
func latestSettled(d *mvccData, c *command, key []byte) (hlc.Timestamp, bool, *storage.Intent, error) {
	newest, ok, in, err := storage.MVCCLatest(d, key)
	if err != nil || in == nil || (c.txn != nil && in.Txn.ID == c.txn.ID) {
		return newest, ok, in, err
	}
	for _, f := range c.finalized {
		if f.Txn.ID == in.Txn.ID {
			if _, err := storage.MVCCResolveIntent(d, key, f.Txn, f.Commit, f.TS); err != nil {
				return newest, ok, in, err
			}
			return storage.MVCCLatest(d, key)
		}
	}
	return newest, ok, in, nil
}

// isFinalized says whether c knows transaction id decided
// (command.finalized): its intents are as good as resolved.
func isFinalized(c *command, id [16]byte) bool {
	return slices.ContainsFunc(c.finalized, func(f storage.FinalizedTxn) bool { return f.Txn.ID == id })
}

// reader is the transaction c runs in, as the timestamp cache names it
// (zero: none).
func (c *command) reader() [16]byte {
	if c.txn == nil {
		return [16]byte{}
	}
	return c.txn.ID
}

func (c *command) readOptions() storage.MVCCReadOptions {
	return storage.MVCCReadOptions{Timestamp: c.read, Uncertainty: c.uncertainty, Txn: c.txn, Finalized: c.finalized}
}

// conflict turns MVCC's typed conflicts into replies; other errors pass.
func conflict(err error) (*result, error) {
	var intent *storage.IntentError
	var uncertain *storage.UncertainError
	switch {
	case errors.As(err, &intent):
		return &result{code: codeIntent, intent: intent.Intent, intentKey: intent.Key}, nil
	case errors.As(err, &uncertain):
		return &result{code: codeUncertain, ts: uncertain.ValueTS}, nil
	}
	return nil, err
}

// scan reads [key, end) within the range (opScan; opChanges: what changed
// there in (from, read]), or checks that nothing but c.txn wrote there in
// (from, read] (opRefresh), and records the read in the cache.
func (m *Machine) scan(d *mvccData, c *command, cache *tsCache) (*result, error) {
	start, end, cut := c.spanIn(d.start, d.end)
	res := &result{}
	if bytes.Compare(start, end) >= 0 {
		res.resume, res.more = end, cut
		return res, nil
	}
	opts := c.readOptions()
	if c.op == opChanges {
		opts.Changes, opts.Since = true, c.from
	}
	if c.op == opScan || c.op == opChanges {
		kvs, resume, err := storage.MVCCScan(d, start, end, opts, max(c.limit, 1))
		if res, err := conflict(err); res != nil || err != nil {
			return res, err
		}
		res.kvs = kvs
		if resume != nil {
			end, res.resume, res.more = resume, resume, true
		}
		// The keys c.txn wrote in the span it read must still hold its
		// intents (ownIntentGone says why).
		for _, k := range c.keys {
			if bytes.Compare(k, start) < 0 || bytes.Compare(k, end) >= 0 {
				continue
			}
			own := *c
			own.key, own.mine = k, true
			if gone, err := ownIntentGone(d, &own); gone || err != nil {
				return &result{code: codeAborted, status: statusAborted}, err
			}
		}
	} else if err := storage.MVCCRefresh(d, start, end, c.from, c.read, c.txn); err != nil {
		res, err := conflict(err)
		if res != nil {
			res.code = codeRefreshFailed
		}
		return res, err
	}
	if !res.more && cut {
		res.resume, res.more = end, true
	}
	if c.op != opChanges || !mutation.On(MutChangesNotNoted) {
		cache.add(start, end, c.read, c.reader())
	}
	return res, nil
}

// put writes c.keys (one range's, in a batch): c.txn's intents, or
// outside a transaction one committed version, at the lowest timestamp
// they may share: the transaction's write timestamp (or the clock's
// now), above every read of the keys the cache knows and every committed
// version of them. Another transaction's intent on any key is a conflict
// (pushed by the coordinator, which sends the batch again): none of the
// keys is written (a finalized transaction's intents may have been
// resolved in passing: latestSettled).
func (m *Machine) put(d *mvccData, c *command, cache *tsCache) (*result, error) {
	if len(c.keys) == 0 || (c.txn == nil && len(c.keys) != 1) {
		return &result{code: codeMalformed}, nil
	}
	ts := m.clock.Now()
	if c.txn != nil {
		ts = c.txn.Timestamp
	}
	for _, k := range c.keys {
		newest, ok, in, err := latestSettled(d, c, k)
		if err != nil {
			return nil, err
		}
		if in != nil && (c.txn == nil || in.Txn.ID != c.txn.ID) {
			return &result{code: codeIntent, intent: *in, intentKey: k}, nil
		}
		if ok && !newest.Less(ts) {
			ts = newest.Next()
		}
		ts = cache.floor(k, ts, c.reader())
	}
	for i, k := range c.keys {
		value, deleted, ok := untagged(c.writes[i])
		if !ok {
			return &result{code: codeMalformed}, nil
		}
		var err error
		if c.txn != nil {
			meta := *c.txn
			meta.Timestamp = ts
			err = storage.MVCCPutIntent(d, k, storage.Intent{Txn: meta, Value: value, Deleted: deleted})
		} else {
			err = storage.MVCCPut(d, k, ts, value, deleted)
		}
		if err != nil {
			return nil, err // checked above: the range's data is not what it read
		}
	}
	if res, err := m.begin(d, c); res != nil || err != nil {
		return res, err
	}
	return &result{ts: ts}, nil
}

// resolve settles c.txn's intents on c.keys (opResolve), in order, until
// the command has written Options.BatchBytes: the rest are for the next
// command (result.resume).
func (m *Machine) resolve(d *mvccData, c *command) (*result, error) {
	for _, k := range c.keys {
		if d.written >= m.opts.BatchBytes {
			return &result{more: true, resume: k}, nil
		}
		if !d.holds(k) {
			return nil, d.outside(k)
		}
		if _, err := storage.MVCCResolveIntent(d, k, *c.txn, c.commit, c.read); err != nil {
			return nil, err
		}
	}
	return &result{}, nil
}

// resolveSpan settles every intent of c.txn in [c.key, c.end) within the
// range (opResolveSpan), paged by Options.BatchBytes as resolve is.
func (m *Machine) resolveSpan(d *mvccData, c *command) (*result, error) {
	start, end, cut := c.spanIn(d.start, d.end)
	for bytes.Compare(start, end) < 0 {
		runs, resume, err := storage.MVCCRuns(d, start, end, gcPage)
		if err != nil {
			return nil, err
		}
		for _, run := range runs {
			if d.written >= m.opts.BatchBytes {
				return &result{more: true, resume: run.Key}, nil
			}
			if _, err := storage.MVCCResolveIntent(d, run.Key, *c.txn, c.commit, c.read); err != nil {
				return nil, err
			}
		}
		if resume == nil {
			break
		}
		start = resume
	}
	if cut {
		return &result{more: true, resume: end}, nil
	}
	return &result{}, nil
}

// begin writes c.txn's record, pending, when c is its first write (c.begin):
// a reply if the transaction was aborted before it began.
func (m *Machine) begin(d *mvccData, c *command) (*result, error) {
	if !c.begin {
		return nil, nil
	}
	key := recordKey(c.txn.Anchor, c.txn.ID)
	rec, err := d.record(key)
	if err != nil {
		return nil, err
	}
	switch {
	case rec == nil:
		d.Set(key, (&record{status: statusPending, start: c.start, heartbeat: m.clock.Now(), node: c.node}).encode())
	case rec.status != statusPending:
		// Aborted before it began (a pusher found no record): the
		// intent just staged goes with the reply's effects, and is
		// resolved as aborted like any other.
		return &result{code: codeAborted, status: rec.status}, nil
	}
	return nil, nil
}

// lock is a locking read (opLock): c.txn's intent on c.key, holding the
// key's newest value, at the lowest timestamp above the transaction's
// write timestamp, that value's version and every read of the key the
// cache knows. The reply carries the value and that timestamp: the
// transaction's reads move up to it (a refresh at the coordinator), so
// the value is what it reads, and the intent keeps every other writer
// out until the transaction ends. Another transaction's intent is a
// conflict, pushed by the coordinator.
func (m *Machine) lock(d *mvccData, c *command, cache *tsCache) (*result, error) {
	ts := c.txn.Timestamp
	newest, ok, in, err := latestSettled(d, c, c.key)
	if err != nil {
		return nil, err
	}
	if in != nil && in.Txn.ID != c.txn.ID {
		return &result{code: codeIntent, intent: *in, intentKey: c.key}, nil
	}
	if in == nil && c.mine {
		return &result{code: codeAborted, status: statusAborted}, nil // see ownIntentGone
	}
	if ok && !newest.Less(ts) {
		ts = newest.Next()
	}
	ts = cache.floor(c.key, ts, c.txn.ID)
	meta := *c.txn
	meta.Timestamp = ts
	read := storage.MVCCReadOptions{Timestamp: ts, Uncertainty: ts, Txn: &meta}
	if mutation.On(MutLockReadsStale) {
		read.Timestamp, read.Uncertainty = c.read, c.read
	}
	v, found, err := storage.MVCCGet(d, c.key, read)
	if res, err := conflict(err); res != nil || err != nil {
		return res, err
	}
	if err := storage.MVCCPutIntent(d, c.key, storage.Intent{Txn: meta, Value: v, Deleted: !found}); err != nil {
		return nil, err // checked above: the range's data is not what it read
	}
	// A locking read is a read: noted in the timestamp cache like any
	// other, so that no write lands beneath it once the lock is gone
	// while the transaction still relies on what it read (ROLLBACK TO
	// SAVEPOINT removes the locks taken since; sqllist seed 32 found a
	// write slipped under such a read, a G2 cycle).
	if !mutation.On(MutLockReadUnnoted) {
		cache.add(c.key, pointEnd(c.key), ts, c.txn.ID)
	}
	if res, err := m.begin(d, c); res != nil || err != nil {
		return res, err
	}
	return &result{value: v, found: found, ts: ts}, nil
}

// recordOp runs opEnd, opPush, opStatus, opHeartbeat and opForget on the record
// of c.txn, kept with c.key (its anchor).
func (m *Machine) recordOp(d *mvccData, c *command) (*result, error) {
	key := recordKey(c.key, c.txn.ID)
	rec, err := d.record(key)
	if err != nil {
		return nil, err
	}
	now := m.clock.Now()
	set := func(r *record) { d.Set(key, r.encode()) }
	abort := func() *result {
		if rec == nil {
			rec = &record{}
		}
		rec.status = statusAborted
		set(rec)
		return &result{status: statusAborted}
	}
	switch c.op {
	case opForget:
		if rec != nil && rec.status != statusPending {
			d.Delete(key)
		}
		return &result{}, nil
	case opHeartbeat:
		if rec == nil || rec.status == statusAborted {
			return &result{code: codeAborted, status: statusAborted}, nil
		}
		if rec.status == statusPending {
			rec.heartbeat = now
			set(rec)
		}
		return &result{status: rec.status}, nil
	case opEnd:
		switch {
		case rec == nil && c.commit:
			// Never begun here, or aborted and forgotten: it cannot
			// commit now. Mark it so that a late begin fails too.
			abort()
			return &result{code: codeAborted, status: statusAborted}, nil
		case rec == nil || rec.status == statusPending:
			if rec == nil {
				rec = &record{}
			}
			rec.keys, rec.spans = c.keys, c.spans
			if !c.commit {
				return abort(), nil
			}
			rec.status, rec.ts = statusCommitted, c.read
			set(rec)
			// The intents in this range resolve with the decision, in the
			// same command (as CockroachDB's EndTxn resolves its local
			// intents), up to Options.BatchBytes: the coordinator resolves
			// only the others.
			res := &result{status: statusCommitted, ts: rec.ts}
			for i, k := range c.keys {
				if d.holds(k) && d.written < m.opts.BatchBytes {
					if !mutation.On(MutLocalResolveUnwritten) {
						if _, err := storage.MVCCResolveIntent(d, k, *c.txn, true, rec.ts); err != nil {
							return nil, err
						}
					}
					res.resolved = append(res.resolved, uint64(i))
				}
			}
			return res, nil
		case rec.status == statusAborted && c.commit:
			return &result{code: codeAborted, status: statusAborted}, nil
		}
		return &result{status: rec.status, ts: rec.ts}, nil // settled already: its outcome
	case opStatus:
		if m.pushWaits(rec, c, now) {
			return &result{code: codePending, status: statusPending}, nil
		}
		if rec != nil && rec.status != statusPending && !mutation.On(MutRecoveryAbortsCommitted) {
			return &result{status: rec.status, ts: rec.ts}, nil // settled: its outcome
		}
		return &result{status: statusPending}, nil // a push would settle it now
	case opPush:
		switch {
		case rec == nil:
			// Its record is gone (finalized and forgotten) or was
			// never written: an intent left without one is an aborted
			// write's.
			return abort(), nil
		case rec.status == statusCommitted && mutation.On(MutRecoveryAbortsCommitted):
			return abort(), nil
		case rec.status != statusPending:
			return &result{status: rec.status, ts: rec.ts}, nil
		case m.pushWaits(rec, c, now):
			return &result{code: codePending, status: statusPending}, nil
		}
		// Its coordinator is gone (the heartbeat expired), or wound–wait:
		// the older pusher wounds the younger holder.
		return abort(), nil
	}
	return &result{code: codeMalformed}, nil
}

// pushWaits says whether a push by c of the transaction whose record is
// rec must wait: it is pending, its coordinator alive, and the pusher
// (if any) is not older than it.
func (m *Machine) pushWaits(rec *record, c *command, now hlc.Timestamp) bool {
	return rec != nil && rec.status == statusPending && m.coordinatorAlive(rec, now) &&
		(c.pusher == [16]byte{} || !older(c.start, c.pusher, rec.start, c.txn.ID))
}

// coordinatorAlive says whether pending record rec's coordinator may
// still decide: its heartbeat has not expired, and its node has not
// been silent here for Options.CoordinatorSilence with no heartbeat
// in that time either (a beat that arrived proves it alive, whatever
// the pings say).
func (m *Machine) coordinatorAlive(rec *record, now hlc.Timestamp) bool {
	if rec.heartbeat.Add(m.opts.HeartbeatExpiry).Less(now) {
		return false
	}
	silence := m.opts.CoordinatorSilence
	if silence <= 0 || rec.node == 0 || m.opts.NodeSilence == nil || !rec.heartbeat.Add(silence).Less(now) {
		return true
	}
	quiet, known := m.opts.NodeSilence(rec.node)
	return !known || quiet < silence
}

// gcThreshold is the timestamp below which garbage collection removes
// what no read at or above it can see.
func (m *Machine) gcThreshold() hlc.Timestamp { return m.clock.Now().Add(-m.opts.GCTTL) }

// readFloor is the lowest timestamp a read may have here: above every
// threshold a collection may have used, on this leaseholder or on an
// earlier one whose clock was ahead of ours by up to the maximum offset.
func (m *Machine) readFloor() hlc.Timestamp { return m.gcThreshold().Add(m.clock.MaxOffset()) }

// gc collects the garbage of c's span in this range (opGC): the versions
// of each key that no read at or above the threshold sees, and the
// settled records whose last sign of life is below it, once their
// intents here are resolved. A record whose intents lie in other ranges
// too (or are more than one command resolves, or kept as spans) stays,
// listing only those, and is reported (result.kvs: its anchor,
// and its ID followed by the record) for the collector to resolve them
// and forget it. Intents written below the threshold are reported too
// (result.abandoned): a transaction that old has almost surely lost its
// coordinator before its decision (its record, pending, is then
// settled by no one until someone meets each intent), and the collector
// pushes it, as CockroachDB's GC queue pushes old intents' transactions.
func (m *Machine) gc(d *mvccData, c *command) (*result, error) {
	threshold := m.gcThreshold()
	start, end, cut := c.spanIn(d.start, d.end)
	res := &result{}
	if bytes.Compare(start, end) < 0 {
		runs, resume, err := storage.MVCCRuns(d, start, end, max(c.limit, 1))
		if err != nil {
			return nil, err
		}
		for _, run := range runs {
			if _, err := storage.MVCCGC(d, run.Key, threshold); err != nil {
				return nil, err
			}
			if run.Intent != nil && run.Intent.Txn.Timestamp.Less(threshold) {
				res.abandoned = append(res.abandoned, storage.IntentError{Key: run.Key, Intent: storage.Intent{Txn: run.Intent.Txn}})
			}
			for _, rec := range run.Records {
				if err := m.collectRecord(d, run.Key, rec, threshold, res); err != nil {
					return nil, err
				}
			}
		}
		if resume != nil {
			res.resume, res.more = resume, true
			return res, nil
		}
	}
	if cut {
		res.resume, res.more = end, true
	}
	return res, nil
}

// collectRecord collects one run-local record of anchor (see gc).
func (m *Machine) collectRecord(d *mvccData, anchor []byte, rec storage.KeyValue, threshold hlc.Timestamp, res *result) error {
	id, ok := recordID(rec.Key)
	if !ok {
		return nil
	}
	r, err := decodeRecord(rec.Value)
	if err != nil {
		return err
	}
	if r.status == statusPending || !r.heartbeat.Less(threshold) {
		return nil
	}
	meta := storage.TxnMeta{ID: id, Anchor: anchor}
	var elsewhere [][]byte
	for _, k := range r.keys {
		if !d.holds(k) || d.written >= m.opts.BatchBytes {
			elsewhere = append(elsewhere, k) // for the collector
			continue
		}
		if _, err := storage.MVCCResolveIntent(d, k, meta, r.status == statusCommitted, r.ts); err != nil {
			return err
		}
	}
	key := recordKey(anchor, id)
	if len(elsewhere) == 0 && len(r.spans) == 0 {
		d.Delete(key)
		return nil
	}
	r.keys = elsewhere
	d.Set(key, r.encode())
	res.kvs = append(res.kvs, storage.KeyValue{Key: anchor, Value: append(id[:], r.encode()...)})
	return nil
}

// older reports whether transaction a (started at sa) is older than b:
// an earlier start, or the same start and a lower ID.
func older(sa hlc.Timestamp, a [16]byte, sb hlc.Timestamp, b [16]byte) bool {
	if c := sa.Compare(sb); c != 0 {
		return c < 0
	}
	return bytes.Compare(a[:], b[:]) < 0
}

// SplitKey splits the keyspace only between runs, and between rows
// (Options.RowPrefix): at the start of the run that halving belongs to,
// or of its row; if the range starts inside that row (or at it), just
// after the row (consensus.SplitKeyer).
func (m *Machine) SplitKey(start, end, halving []byte) []byte {
	key, ok := storage.MVCCUserKey(halving)
	if !ok {
		return nil
	}
	k := storage.MVCCSplitKeyOf(key)
	if row := m.rowOf(key); row != nil {
		if k = storage.MVCCSplitKeyOf(row); bytes.Compare(k, start) <= 0 {
			k = storage.MVCCSplitKeyOf(prefixEnd(row))
		}
	}
	if bytes.Compare(k, start) <= 0 || bytes.Compare(k, end) >= 0 {
		return nil
	}
	return k
}

// rowOf is the stored prefix of key's row (Options.RowPrefix), or nil if
// it stands alone.
func (m *Machine) rowOf(key []byte) []byte {
	if m.opts.RowPrefix == nil || !bytes.HasPrefix(key, KeyspaceStart) {
		return nil
	}
	p := m.opts.RowPrefix(key[len(KeyspaceStart):])
	if len(p) == 0 || !bytes.HasPrefix(key[len(KeyspaceStart):], p) {
		return nil // nothing to keep together, or not a prefix of the key: ignored
	}
	return spaceKey(p)
}

// prefixEnd is the first key after every key that starts with p (p
// holds a byte below 0xFF: a stored row prefix starts with
// KeyspaceStart's).
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// mvccData is a range's data as storage's MVCC functions read and write
// it: their scans run to the range's end at most, and a write's error (a
// key outside the range) is kept for the end of the command.
type mvccData struct {
	data       consensus.RangeData
	start, end []byte
	err        error
	// written counts the bytes the command has written (keys and
	// values), for the commands that stop at Options.BatchBytes.
	written int
}

func (d *mvccData) Get(key []byte) ([]byte, error) {
	v, found, err := d.data.Get(key)
	if err == nil && !found {
		err = storage.ErrNotFound
	}
	return v, err
}

func (d *mvccData) Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	if bytes.Compare(start, d.start) < 0 {
		start = d.start
	}
	if end == nil || (d.end != nil && bytes.Compare(end, d.end) > 0) {
		end = d.end
	}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil, nil
	}
	kvs, err := d.data.Scan(start, end, limit+1)
	if err != nil || len(kvs) <= limit {
		return kvs, nil, err
	}
	return kvs[:limit], kvs[limit].Key, nil
}

func (d *mvccData) Set(key, value []byte) {
	d.written += len(key) + len(value)
	if err := d.data.Set(key, value); err != nil && d.err == nil {
		d.err = err
	}
}

func (d *mvccData) Delete(key []byte) {
	d.written += len(key)
	if err := d.data.Delete(key); err != nil && d.err == nil {
		d.err = err
	}
}

// holds reports whether user key k's run lies in the range.
func (d *mvccData) holds(k []byte) bool {
	return bytes.Compare(k, storage.MVCCKeyAt(d.start)) >= 0 && bytes.Compare(k, storage.MVCCKeyAt(d.end)) < 0
}

// outside is the range's refusal of user key k, which it does not hold
// (the command is refused as crossing ranges: its sender learns the
// split). A read of k itself would not say it: reads are clipped to the
// range.
func (d *mvccData) outside(k []byte) error {
	_, _, err := d.data.Get(storage.MVCCRouteKey(k))
	if err == nil {
		panic("txn: a key outside the range read as inside it")
	}
	return err
}

// record reads the record at key (nil: none).
func (d *mvccData) record(key []byte) (*record, error) {
	v, err := d.Get(key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(v)
}
