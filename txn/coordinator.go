package txn

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// coordinator is a transaction's state and every decision its
// coordinator makes (docs/txn.md, "The coordinator"): a pure state
// machine. An operation (get, scan, lock, commit, rollback, rollbackTo)
// starts it and returns a step, what its driver must do next: send a
// command, push an intent it met, wait until a commit timestamp has
// passed, ask a buggify site, start the heartbeat, settle a resolution.
// The driver (Tx, tx.go) does it and hands the outcome back (replied,
// pushed, waited, buggified, resumed, resolved), which returns the next
// step, until one says done. The coordinator never sends, sleeps, reads a
// clock or draws a random number: its transcripts
// (testdata/coordinator) feed it replies and read its steps.
//
// What it reads of the world besides the outcomes: where the router
// places keys (place: batches of one range's keys, the one-range commit,
// a record's condensed spans), and wounded, the one input that arrives
// from another task (the heartbeat's), read at every check.
type coordinator struct {
	id          [16]byte
	start       hlc.Timestamp // its age, for wound–wait (Txn keeps the first attempt's)
	read        hlc.Timestamp
	write       hlc.Timestamp
	uncertainty hlc.Timestamp
	node        kernel.NodeID   // the coordinator's node, named in its record
	anchor      []byte          // stored key of the first write (nil: none yet)
	writes      map[string]bool // stored keys written as intents (or maybe)
	// intents are the values the transaction's intents hold, as far as
	// it knows (a locking read's: the value it read), for rollbackTo.
	intents map[string]buffered
	// buffer holds the writes not sent yet: a transaction whose writes
	// all land in one range commits them in one command at the end (the
	// one-phase commit); otherwise they become intents at commit, or
	// before a scan.
	buffer map[string]buffered
	reads  []span
	// done: committed or rolled back (an error in rollbackTo too);
	// ended: and its heartbeat is to stop.
	done, ended, committed bool
	// vanished is set where a buggify site makes the coordinator leave
	// the transaction as a dead one would: rollback then does nothing.
	vanished bool
	// readOnly refuses writes and locks (Tx.SetReadOnly).
	readOnly bool
	// wounded is set by the heartbeat task when the record says aborted.
	wounded atomic.Bool

	place placement

	// The operation under way.
	goal  goal
	phase phase
	key   []byte   // get, lock: the stored key
	cmd   *command // the command in flight, sent again after a push
	// value and found: what a get or a lock read.
	value []byte
	found bool
	// scan: the span left [from, to), at most limit pairs, changes since
	// since (nil: a scan); kvs, the pairs read.
	from, to []byte
	limit    int
	since    *hlc.Timestamp
	kvs      []storage.KeyValue
	// flushing are the buffered keys left to write as intents, sorted;
	// batches, the batches of one range's keys being written, the first
	// in flight (a batch a split put in two ranges becomes two).
	flushing []string
	batches  [][][]byte
	batchTS  hlc.Timestamp // the highest timestamp the batch's parts were written at
	// held is the reply of a write being completed (after its heartbeat
	// starts, or its lock's refresh).
	held *result
	// rounds counts a one-phase commit's sends.
	rounds int
	// refresh: moving the reads to refreshTo, span refreshing, from
	// refreshStart; then the operation goes on at afterRefresh.
	refreshTo    hlc.Timestamp
	refreshing   int
	refreshStart []byte
	afterRefresh phase
	// commit: the intent keys, as the record keeps them (points or
	// spans), the decision's reply; rollbackTo: the intents to remove.
	keys          [][]byte
	points, spans [][]byte
	decided       *result
	gone          [][]byte
}

// span is a read span, stored keys [start, end).
type span struct{ start, end []byte }

// goal is the operation a coordinator runs.
type goal uint8

const (
	goalNone goal = iota
	goalGet
	goalScan
	goalLock
	goalCommit
	goalRollback
	goalRollbackTo
	goalFlush
)

// phase is where the operation under way stands: what the outcome it
// waits for is for.
type phase uint8

const (
	phaseIdle         phase = iota
	phaseGet                // a point read sent
	phaseScan               // a scan's page sent
	phaseWrite              // a batch of intents, or a lock, sent
	phaseHeartbeat          // the first write done: the heartbeat starting
	phaseRefresh            // a refresh's span (page) sent
	phaseOnePhase           // a one-phase commit sent
	phaseOnePhaseWait       // committed in one phase: waiting out its timestamp
	phaseVanish             // asking whether the coordinator vanishes before its decision
	phaseEarlyResolve       // (planted) resolving before the decision
	phaseEarlySettle        // (planted) noted as finalized before the decision
	phaseDecide             // the decision sent
	phaseCommitWait         // committed: waiting out its timestamp
	phaseVanishAfter        // asking whether the coordinator vanishes after its decision
	phaseResolveLater       // handing the intents to the resolver
	phaseLate               // asking whether the resolution is sent again, late
	phaseLateSent           // the late resolution noted
	phaseAbort              // the rollback's decision sent
	phaseAbortResolve       // resolving an aborted transaction's intents
	phaseRollbackTo         // removing the intents written since a savepoint
)

// stepKind is what a step asks of the driver.
type stepKind uint8

const (
	stepDone       stepKind = iota // the operation ended, with err
	stepSend                       // send cmd to the range of key; then replied
	stepPush                       // push the intent met (DB.push); then pushed
	stepCommitWait                 // wait until the clock passes ts; then waited
	stepBuggify                    // ask the buggify site; then buggified
	stepHeartbeat                  // start the heartbeat of meta at key; then resumed
	stepResolve                    // settle resolution as mode says; then resolved
)

// step is what the coordinator asks its driver to do next.
type step struct {
	kind  stepKind
	key   []byte
	cmd   *command
	met   *result // stepPush: the reply that met an intent
	queue bool    // stepPush: the pusher means to write the key
	ts    hlc.Timestamp
	site  string
	meta  storage.TxnMeta // stepHeartbeat
	res   resolution      // stepResolve
	mode  resolveMode
	err   error
}

// resolveMode says how the driver settles a stepResolve's resolution.
type resolveMode uint8

const (
	resolveNow     resolveMode = iota // DB.resolve: intents, then the record; best effort
	resolveKeysNow                    // DB.resolveKeys: the intents only; its error counts
	resolveLater                      // DB.resolveLater: the resolver's
	settleEarly                       // noted in the node's finalized-transaction cache only
	resolveLate                       // noted to be sent again before a later transaction
)

func done(err error) step { return step{kind: stepDone, err: err} }

func send(key []byte, c *command) step { return step{kind: stepSend, key: key, cmd: c} }

// newCoordinator is a transaction with id reading and writing at now.
func newCoordinator(id [16]byte, now, uncertainty hlc.Timestamp, node kernel.NodeID, place placement) *coordinator {
	return &coordinator{id: id, start: now, read: now, write: now, uncertainty: uncertainty, node: node, place: place,
		writes: map[string]bool{}, buffer: map[string]buffered{}, intents: map[string]buffered{}}
}

func (c *coordinator) meta() storage.TxnMeta {
	return storage.TxnMeta{ID: c.id, Timestamp: c.write, Anchor: c.anchor}
}

func (c *coordinator) check() error {
	switch {
	case c.done:
		return ErrDone
	case c.wounded.Load():
		return retry("aborted by another transaction")
	}
	return nil
}

// begin starts operation g, forgetting the last one's.
func (c *coordinator) begin(g goal) {
	if c.phase != phaseIdle {
		panic(fmt.Sprintf("txn: a coordinator began %d while %d stood at phase %d", g, c.goal, c.phase))
	}
	c.goal, c.key, c.cmd, c.value, c.found = g, nil, nil, nil, false
	c.from, c.to, c.limit, c.since, c.kvs = nil, nil, 0, nil, nil
	c.flushing, c.batches, c.batchTS, c.held, c.rounds = nil, nil, hlc.Timestamp{}, nil, 0
	c.keys, c.points, c.spans, c.decided, c.gone = nil, nil, nil, nil, nil
}

// finish ends the operation with err.
func (c *coordinator) finish(err error) step {
	c.phase = phaseIdle
	return done(err)
}

func (c *coordinator) end() {
	c.done, c.ended = true, true
}

// expect asserts that an outcome arrived where one was awaited.
func (c *coordinator) expect(event string, phases ...phase) {
	if !slices.Contains(phases, c.phase) {
		panic(fmt.Sprintf("txn: a coordinator got %s at phase %d (operation %d)", event, c.phase, c.goal))
	}
}

// get reads k (stored) as of the read timestamp, its own writes
// included; the value lands in c.value, c.found.
func (c *coordinator) get(k []byte) step {
	c.begin(goalGet)
	c.key = k
	if w, ok := c.buffer[string(k)]; ok {
		if err := c.check(); err != nil {
			return done(err)
		}
		c.value, c.found = slices.Clone(w.value), !w.deleted
		return done(nil)
	}
	return c.sendGet()
}

func (c *coordinator) sendGet() step {
	if err := c.check(); err != nil {
		return c.finish(err)
	}
	meta := c.meta()
	c.phase = phaseGet
	return send(c.key, &command{op: opGet, key: c.key, read: c.read, uncertainty: c.uncertainty, txn: &meta, mine: c.writes[string(c.key)]})
}

// scan reads up to limit live pairs of the stored span [from, to) as of
// the read timestamp, or with since the changes since it; the pairs land
// in c.kvs.
func (c *coordinator) scan(from, to []byte, limit int, since *hlc.Timestamp) step {
	c.begin(goalScan)
	if limit <= 0 {
		return done(fmt.Errorf("txn: scan limit %d", limit))
	}
	c.from, c.to, c.limit, c.since = from, to, limit, since
	// Buffered writes become intents first: the scan then sees them as
	// its own, in order, among everything else.
	return c.flush()
}

func (c *coordinator) sendPage() step {
	if c.from == nil || len(c.kvs) >= c.limit {
		return c.finish(nil)
	}
	if err := c.check(); err != nil {
		return c.finish(err)
	}
	meta := c.meta()
	cmd := &command{op: opScan, key: c.from, end: c.to, read: c.read, uncertainty: c.uncertainty, txn: &meta,
		limit: min(c.limit-len(c.kvs), consensus.MaxScanLimit), keys: c.writesIn(c.from, c.to)}
	if c.since != nil {
		cmd.op, cmd.from = opChanges, *c.since
	}
	c.phase = phaseScan
	return send(c.from, cmd)
}

// maxScanChecks bounds the keys of its own writes a scan asks the
// leaseholder to find its intents on (see writesIn).
const maxScanChecks = 1024

// writesIn are the keys in [from, to) the transaction wrote as intents,
// sorted: a scan checks that their intents are still there (opScan's
// keys), as a point read does (command.mine). Past maxScanChecks the
// scan checks none of them (a transaction that large scanning its own
// writes reads what lies beneath one an abort removed, until its commit
// fails).
func (c *coordinator) writesIn(from, to []byte) [][]byte {
	var keys [][]byte
	for k := range c.writes {
		if k >= string(from) && k < string(to) {
			if len(keys) == maxScanChecks {
				return nil
			}
			keys = append(keys, []byte(k))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

// conflict is the step a read's reply that met a conflict calls for (ok
// false: no conflict): an intent is pushed, an uncertain version moves
// the read timestamp above it if the reads so far can move (a refresh);
// then the read is sent again.
func (c *coordinator) conflict(res *result) (s step, ok bool) {
	switch res.code {
	case codeIntent:
		if res.intent.Txn.ID == c.id {
			return c.finish(fmt.Errorf("txn: met its own intent of another epoch")), true
		}
		return step{kind: stepPush, met: res}, true
	case codeBelowGC:
		return c.finish(retry("its reads at %v are below the garbage collection threshold %v", c.read, res.ts)), true
	case codeUncertain:
		return c.refresh(res.ts, c.phase), true
	}
	return step{}, false
}

// put buffers a write of k (stored); nothing is sent until commit.
func (c *coordinator) put(k []byte, w buffered) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.readOnly {
		return ErrReadOnly
	}
	c.buffer[string(k)] = w
	return nil
}

// flush writes the buffered writes as intents, in key order, in batches
// of one range's keys (Options.BatchBytes each): two transactions
// flushing the same keys meet at the first they share, so they never
// wait on each other in a cycle (a batch writes all its keys or none).
// Then the operation goes on (flushed).
func (c *coordinator) flush() step {
	c.flushing = slices.Sorted(maps.Keys(c.buffer))
	if len(c.flushing) > 1 && mutation.On(MutCommitSkipsAnIntent) {
		last := c.flushing[len(c.flushing)-1]
		delete(c.buffer, last) // dropped, as an ignored error would drop it
		c.flushing = c.flushing[:len(c.flushing)-1]
	}
	return c.nextBatch()
}

// flushWrites writes the buffered writes as intents now, and ends there
// (the tests' way to leave a transaction's intents behind).
func (c *coordinator) flushWrites() step {
	c.begin(goalFlush)
	return c.flush()
}

// nextBatch sends the next batch of buffered writes, or goes on with the
// operation once none is left.
func (c *coordinator) nextBatch() step {
	if len(c.batches) > 0 {
		return c.sendWrite()
	}
	if len(c.flushing) == 0 {
		return c.flushed()
	}
	size := func(k []byte) int { return len(k) + len(c.buffer[string(k)].value) }
	keys := bytesKeys(c.flushing)
	n := c.place.batchLen(keys, size)
	c.batches, c.flushing = [][][]byte{keys[:n]}, c.flushing[n:]
	return c.sendWrite()
}

// flushed goes on with the operation that flushed.
func (c *coordinator) flushed() step {
	switch c.goal {
	case goalScan:
		return c.sendPage()
	case goalCommit:
		return c.commitFlushed()
	case goalLock, goalFlush:
		// A lock's key was written already: as an intent now, it is
		// locked.
		return c.finish(nil)
	}
	panic(fmt.Sprintf("txn: a flush ended in operation %d", c.goal))
}

// bytesKeys is keys as byte slices.
func bytesKeys(keys []string) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// sendWrite sends the write in flight: the first batch's buffered
// writes as intents (opPut), or a lock (c.cmd, opLock), its first also
// writing the record (at its key) and starting the heartbeat.
func (c *coordinator) sendWrite() step {
	if err := c.check(); err != nil {
		return c.finish(err)
	}
	if c.cmd == nil || c.cmd.op != opLock {
		keys := c.batches[0]
		c.cmd = &command{op: opPut, key: keys[0], keys: keys}
		for _, k := range keys {
			w := c.buffer[string(k)]
			c.cmd.writes = append(c.cmd.writes, tagged(w.value, w.deleted))
		}
	}
	k := c.cmd.key
	c.cmd.begin, c.cmd.node = c.anchor == nil, 0
	meta := c.meta()
	if c.cmd.begin {
		meta.Anchor, c.cmd.node = k, c.node
	}
	c.cmd.txn, c.cmd.start, c.cmd.read = &meta, c.start, c.read
	c.phase = phaseWrite
	return send(k, c.cmd)
}

// wrote handles a write's reply: the keys are noted as written (or
// maybe: a rollback resolves them, and aborts the record if this was the
// first write); an intent in the way is pushed and the write sent again;
// a batch that a split has put in two ranges is sent again as two (the
// router learned the split from the refusal).
func (c *coordinator) wrote(res *result, err error) step {
	written := c.cmd.keys
	if c.cmd.op == opLock {
		written = [][]byte{c.cmd.key}
	}
	if !errors.Is(err, consensus.ErrNotApplied) && (err != nil || res.code != codeIntent) {
		for _, w := range written {
			c.writes[string(w)] = true
		}
		if c.cmd.begin {
			c.anchor = c.cmd.key
		}
	}
	if errors.Is(err, consensus.ErrCrossRange) && len(c.cmd.keys) > 1 {
		n := c.place.batchLen(c.cmd.keys, func([]byte) int { return 0 })
		if n == len(c.cmd.keys) {
			return c.finish(retry("a batch of writes was refused as crossing ranges that the router places in one"))
		}
		keys := c.batches[0]
		c.batches = append([][][]byte{keys[:n], keys[n:]}, c.batches[1:]...)
		return c.sendWrite()
	}
	if err != nil {
		return c.finish(err)
	}
	switch res.code {
	case codeIntent:
		return step{kind: stepPush, met: res, queue: true}
	case codeAborted:
		if c.cmd.mine {
			return c.finish(retry("aborted by another transaction: its write of %q is gone", callerKey(c.cmd.key)))
		}
		return c.finish(retry("aborted before its first write"))
	}
	if c.cmd.begin {
		c.held, c.phase = res, phaseHeartbeat
		return step{kind: stepHeartbeat, key: c.anchor, meta: c.meta()}
	}
	return c.written(res)
}

// written goes on after a write succeeded.
func (c *coordinator) written(res *result) step {
	if c.cmd.op == opLock {
		return c.locked(res)
	}
	for _, k := range c.batches[0] {
		c.intents[string(k)] = c.buffer[string(k)]
		delete(c.buffer, string(k))
	}
	if c.batchTS.Less(res.ts) {
		c.batchTS = res.ts
	}
	c.batches, c.cmd = c.batches[1:], nil
	if len(c.batches) == 0 {
		// The batch is written, every part of it: the write timestamp
		// moves up to the highest it was written at (the parts of a
		// split batch all carry the one they started with).
		if c.write.Less(c.batchTS) {
			c.write = c.batchTS
		}
		c.batchTS = hlc.Timestamp{}
	}
	return c.nextBatch()
}

// lock reads k (stored) as get does and locks it until the transaction
// ends (Tx.GetForUpdate): an intent holding the value read.
func (c *coordinator) lock(k []byte) step {
	c.begin(goalLock)
	if c.readOnly {
		return done(ErrReadOnly)
	}
	c.key = k
	if w, ok := c.buffer[string(k)]; ok {
		// Written already: written as an intent now, it is locked.
		c.value, c.found = slices.Clone(w.value), !w.deleted
		c.batches = [][][]byte{{k}}
		return c.sendWrite()
	}
	c.cmd = &command{op: opLock, key: k, mine: c.writes[string(k)]}
	return c.sendWrite()
}

// locked goes on after a lock was written: the read happened at the
// lock's timestamp, which may be above the read timestamp; the earlier
// reads are refreshed up to it.
func (c *coordinator) locked(res *result) step {
	c.held = res
	if c.read.Less(res.ts) {
		if !mutation.On(MutLockSkipsRefresh) {
			return c.refresh(res.ts, phaseWrite)
		}
		c.read = res.ts
	}
	return c.lockDone()
}

func (c *coordinator) lockDone() step {
	res, k := c.held, c.key
	if c.write.Less(res.ts) {
		c.write = res.ts
	}
	if _, ok := c.intents[string(k)]; !ok {
		c.intents[string(k)] = buffered{value: res.value, deleted: !res.found}
	}
	c.reads = append(c.reads, span{k, append(k[:len(k):len(k)], 0)})
	c.value, c.found = res.value, res.found
	return c.finish(nil)
}

// refresh moves the reads from the read timestamp to ts: every span read
// must have no write by another transaction in (read, ts]. Then the
// operation goes on at then (refreshed).
func (c *coordinator) refresh(ts hlc.Timestamp, then phase) step {
	c.refreshTo, c.afterRefresh, c.refreshing, c.refreshStart = ts, then, 0, nil
	return c.sendRefresh()
}

func (c *coordinator) sendRefresh() step {
	if c.refreshStart == nil {
		if c.refreshing == len(c.reads) {
			c.read = c.refreshTo
			return c.refreshed()
		}
		c.refreshStart = c.reads[c.refreshing].start
	}
	meta := c.meta()
	c.phase = phaseRefresh
	return send(c.refreshStart, &command{op: opRefresh, key: c.refreshStart, end: c.reads[c.refreshing].end, from: c.read, read: c.refreshTo, txn: &meta})
}

func (c *coordinator) refreshReplied(res *result, err error) step {
	if err != nil {
		return c.finish(err)
	}
	s := c.reads[c.refreshing]
	switch res.code {
	case codeRefreshFailed:
		return c.finish(retry("reads at %v cannot move to %v: a write in [%q, %q)", c.read, c.refreshTo, s.start, s.end))
	case codeBelowGC:
		return c.finish(retry("reads at %v are below the garbage collection threshold %v", c.read, res.ts))
	}
	c.refreshStart = nil
	if res.more {
		c.refreshStart = res.resume
	} else {
		c.refreshing++
	}
	return c.sendRefresh()
}

// refreshed goes on where the refresh was asked for, the reads now at
// refreshTo.
func (c *coordinator) refreshed() step {
	ts := c.refreshTo
	switch c.afterRefresh {
	case phaseGet, phaseScan:
		// An uncertain read: its write timestamp moves up too, and the
		// read is sent again.
		if c.write.Less(ts) {
			c.write = ts
		}
		if c.afterRefresh == phaseGet {
			return c.sendGet()
		}
		return c.sendPage()
	case phaseWrite:
		return c.lockDone()
	case phaseOnePhase:
		c.write = ts
		return c.sendOnePhase()
	case phaseDecide:
		return c.decide()
	}
	panic(fmt.Sprintf("txn: a refresh to go on at phase %d", c.afterRefresh))
}

// commit commits the transaction: ErrRetry if it cannot (nothing of it
// applied), ErrIndeterminate if its decision's outcome is unknown.
func (c *coordinator) commit() step {
	c.begin(goalCommit)
	if err := c.check(); err != nil {
		return done(err)
	}
	if len(c.buffer) > 0 && c.anchor == nil && c.place.oneRange(c.buffer) && bufferBytes(c.buffer) <= maxOnePhaseBytes {
		keys := slices.Sorted(maps.Keys(c.buffer))
		c.cmd = &command{op: opOnePhase, key: []byte(keys[0])}
		for _, k := range keys {
			w := c.buffer[k]
			c.cmd.keys = append(c.cmd.keys, []byte(k))
			c.cmd.writes = append(c.cmd.writes, tagged(w.value, w.deleted))
		}
		return c.sendOnePhase()
	}
	return c.flush()
}

// maxOnePhaseRounds bounds how often a one-phase commit refreshes and
// pushes before it gives up (ErrRetry).
const maxOnePhaseRounds = 10

// maxOnePhaseBytes bounds the writes a one-phase commit carries (one
// proposal); a larger transaction commits in two phases, its intents in
// batches.
const maxOnePhaseBytes = consensus.MaxProposalBytes / 4

// bufferBytes is the size of the buffered writes.
func bufferBytes(buffer map[string]buffered) int {
	n := 0
	for k, w := range buffer {
		n += len(k) + len(w.value)
	}
	return n
}

// sendOnePhase sends the one-phase commit: the buffered writes, all in
// one range, in one command: no record, no intents.
func (c *coordinator) sendOnePhase() step {
	if c.rounds == maxOnePhaseRounds {
		return c.finish(retry("a one-phase commit kept meeting newer reads and writes"))
	}
	c.rounds++
	meta := c.meta()
	c.cmd.txn, c.cmd.read, c.cmd.reads = &meta, c.read, len(c.reads) > 0
	c.phase = phaseOnePhase
	return send(c.cmd.key, c.cmd)
}

// onePhaseReplied handles the one-phase commit's reply. Writes that turn
// out to span ranges (the range split since the router learned it)
// commit in two phases. A command whose outcome is unknown is not sent
// again (it carries no record to decide by): ErrIndeterminate.
func (c *coordinator) onePhaseReplied(res *result, err error) step {
	switch {
	case errors.Is(err, consensus.ErrCrossRange):
		c.cmd = nil
		return c.flush()
	case errors.Is(err, consensus.ErrIndeterminate):
		c.end()
		return c.finish(fmt.Errorf("%w: a one-phase commit: %v", ErrIndeterminate, err))
	case err != nil:
		return c.finish(err)
	}
	switch res.code {
	case codeIntent:
		return step{kind: stepPush, met: res, queue: true}
	case codeNeedsRefresh:
		return c.refresh(res.ts, phaseOnePhase)
	}
	c.committed, c.write = true, res.ts
	c.end()
	c.phase = phaseOnePhaseWait
	return step{kind: stepCommitWait, ts: res.ts}
}

// commitFlushed goes on with a commit whose writes are all intents now.
func (c *coordinator) commitFlushed() step {
	if c.anchor == nil {
		// Read only: its reads were all at its read timestamp, and no
		// leaseholder served one before its clock passed it
		// (Machine.futureRead), so nothing later can miss what it saw.
		c.end()
		return c.finish(nil)
	}
	if c.read.Less(c.write) && !mutation.On(MutRefreshSkipped) {
		return c.refresh(c.write, phaseDecide)
	}
	return c.decide()
}

// decide sends the decision: the record's compare-and-set to committed
// with the intents' keys.
func (c *coordinator) decide() step {
	c.keys = sortedKeys(c.writes)
	c.points, c.spans = c.place.condense(c.keys)
	c.phase = phaseVanish
	return step{kind: stepBuggify, site: "txn.coordinator-vanishes-before-decision"}
}

func (c *coordinator) sendDecision() step {
	meta := c.meta()
	c.phase = phaseDecide
	return send(c.anchor, &command{op: opEnd, key: c.anchor, txn: &meta, commit: true, read: c.write, keys: c.points, spans: c.spans})
}

// decisionReplied handles the decision's reply. Asking again is safe: a
// decision is made once, and the record answers with it.
func (c *coordinator) decisionReplied(res *result, err error, gaveUp bool) step {
	if err != nil {
		if gaveUp || !errors.Is(err, consensus.ErrIndeterminate) && !errors.Is(err, consensus.ErrNotApplied) {
			c.end()
			// %v: the last attempt's error says nothing of the earlier
			// ones (a consensus.ErrNotApplied here must not read as
			// "not committed").
			return c.finish(fmt.Errorf("%w: %v", ErrIndeterminate, err))
		}
		return c.sendDecision()
	}
	if res.status != statusCommitted {
		return c.finish(retry("aborted before its commit (%v)", res.status))
	}
	c.committed, c.decided = true, res
	c.end()
	c.phase = phaseCommitWait
	return step{kind: stepCommitWait, ts: res.ts}
}

// rollback aborts the transaction if it wrote, and removes its intents;
// a transaction that committed stays committed.
func (c *coordinator) rollback() step {
	// It may come while an operation stands abandoned half-way: its task
	// unwound by a panic (or killed with its node, in the simulator),
	// with a deferred rollback. That operation is given up.
	c.phase = phaseIdle
	c.begin(goalRollback)
	c.end()
	if c.anchor == nil || c.committed || c.vanished {
		return done(nil)
	}
	c.keys = sortedKeys(c.writes)
	points, spans := c.place.condense(c.keys)
	meta := c.meta()
	c.phase = phaseAbort
	return send(c.anchor, &command{op: opEnd, key: c.anchor, txn: &meta, commit: false, keys: points, spans: spans})
}

// savepoint is the transaction's writes as they are now.
func (c *coordinator) savepoint() *Savepoint {
	return &Savepoint{buffer: maps.Clone(c.buffer), intents: maps.Clone(c.intents)}
}

// rollbackTo undoes the writes made since sp (Tx.RollbackTo).
func (c *coordinator) rollbackTo(sp *Savepoint) step {
	c.begin(goalRollbackTo)
	if err := c.check(); err != nil {
		return done(err)
	}
	c.buffer = maps.Clone(sp.buffer)
	var gone [][]byte
	for k, now := range c.intents {
		was, ok := sp.intents[k]
		switch {
		case !ok:
			gone = append(gone, []byte(k))
		case now.deleted != was.deleted || !bytes.Equal(now.value, was.value):
			if _, pending := c.buffer[k]; !pending {
				c.buffer[k] = was
			}
		}
	}
	if len(gone) == 0 {
		return done(nil)
	}
	slices.SortFunc(gone, bytes.Compare)
	if mutation.On(MutRollbackToKeepsIntents) {
		gone = nil
	}
	c.gone, c.phase = gone, phaseRollbackTo
	return step{kind: stepResolve, mode: resolveKeysNow, res: resolution{meta: c.meta(), keys: gone}}
}

// replied hands the coordinator the reply to the command it sent (gaveUp:
// the caller's context has ended).
func (c *coordinator) replied(res *result, err error, gaveUp bool) step {
	switch c.phase {
	case phaseGet:
		if err != nil {
			return c.finish(err)
		}
		if res.code == codeAborted {
			return c.finish(retry("aborted by another transaction: its write of %q is gone", callerKey(c.key)))
		}
		if s, ok := c.conflict(res); ok {
			return s
		}
		c.reads = append(c.reads, span{c.key, append(c.key[:len(c.key):len(c.key)], 0)})
		c.value, c.found = res.value, res.found
		return c.finish(nil)
	case phaseScan:
		if err != nil {
			return c.finish(err)
		}
		if res.code == codeAborted {
			return c.finish(retry("aborted by another transaction: one of its writes in the span it scans is gone"))
		}
		if s, ok := c.conflict(res); ok {
			return s
		}
		for _, kv := range res.kvs {
			c.kvs = append(c.kvs, storage.KeyValue{Key: callerKey(kv.Key), Value: kv.Value})
		}
		next := []byte(nil)
		if res.more {
			next = res.resume
		}
		end := c.to
		if next != nil {
			end = next
		}
		c.reads = append(c.reads, span{c.from, end})
		c.from = next
		return c.sendPage()
	case phaseWrite:
		return c.wrote(res, err)
	case phaseRefresh:
		return c.refreshReplied(res, err)
	case phaseOnePhase:
		return c.onePhaseReplied(res, err)
	case phaseDecide:
		return c.decisionReplied(res, err, gaveUp)
	case phaseAbort:
		if err != nil || res.status != statusAborted {
			return c.finish(nil) // its intents are resolved by whoever meets them
		}
		c.phase = phaseAbortResolve
		return step{kind: stepResolve, mode: resolveNow, res: resolution{meta: c.meta(), keys: c.keys}}
	}
	panic(fmt.Sprintf("txn: a coordinator got a reply at phase %d (operation %d)", c.phase, c.goal))
}

// pushed hands the coordinator the push's outcome: the intent it met is
// settled or its key free (err nil), and the request goes again.
func (c *coordinator) pushed(err error) step {
	c.expect("a push's outcome", phaseGet, phaseScan, phaseWrite, phaseOnePhase)
	if err != nil {
		return c.finish(err)
	}
	switch c.phase {
	case phaseGet:
		return c.sendGet()
	case phaseScan:
		return c.sendPage()
	case phaseWrite:
		return c.sendWrite()
	default:
		return c.sendOnePhase()
	}
}

// waited hands the coordinator the end of the wait for its commit
// timestamp.
func (c *coordinator) waited(err error) step {
	c.expect("a commit wait's end", phaseOnePhaseWait, phaseCommitWait)
	if err != nil {
		return c.finish(fmt.Errorf("%w: committed, but the wait for its timestamp ended: %v", ErrIndeterminate, err))
	}
	if c.phase == phaseOnePhaseWait {
		return c.finish(nil)
	}
	c.phase = phaseVanishAfter
	return step{kind: stepBuggify, site: "txn.coordinator-vanishes-after-decision"}
}

// buggified hands the coordinator a buggify site's answer.
func (c *coordinator) buggified(hit bool) step {
	c.expect("a buggify answer", phaseVanish, phaseVanishAfter, phaseLate)
	switch c.phase {
	case phaseVanish:
		if hit {
			// The simulator's aimed fault: intents written, no decision,
			// no more heartbeats; whoever meets an intent must settle it.
			c.vanished = true
			c.end()
			return c.finish(fmt.Errorf("%w: buggify: the coordinator vanished before its decision", ErrIndeterminate))
		}
		if mutation.On(MutResolveBeforeDecision) {
			c.phase = phaseEarlyResolve
			return step{kind: stepResolve, mode: resolveNow, res: resolution{meta: c.meta(), keys: c.keys, commit: true, ts: c.write}}
		}
		return c.settleEarly()
	case phaseVanishAfter:
		if hit {
			// Committed, nothing resolved: readers finish it from the record.
			return c.finish(fmt.Errorf("%w: buggify: the coordinator vanished after its decision", ErrIndeterminate))
		}
		c.phase = phaseResolveLater
		return step{kind: stepResolve, mode: resolveLater, res: resolution{meta: c.meta(), keys: withoutIndexes(c.keys, c.decided.resolved), commit: true, ts: c.decided.ts}}
	default:
		if !hit {
			return c.finish(nil)
		}
		// The same resolution again, late: sent before a later
		// transaction of this DB, after others may have written the keys
		// (and left intents there) since.
		c.phase = phaseLateSent
		return step{kind: stepResolve, mode: resolveLate, res: resolution{meta: c.meta(), keys: c.points, spans: c.spans, commit: true, ts: c.decided.ts}}
	}
}

func (c *coordinator) settleEarly() step {
	if mutation.On(MutFinalizedBeforeDecision) {
		c.phase = phaseEarlySettle
		return step{kind: stepResolve, mode: settleEarly, res: resolution{meta: c.meta(), keys: c.keys, commit: true, ts: c.write}}
	}
	return c.sendDecision()
}

// resumed hands the coordinator the start of its heartbeat.
func (c *coordinator) resumed() step {
	c.expect("a heartbeat's start", phaseHeartbeat)
	return c.written(c.held)
}

// resolved hands the coordinator a resolution's outcome.
func (c *coordinator) resolved(err error) step {
	c.expect("a resolution's outcome", phaseEarlyResolve, phaseEarlySettle, phaseResolveLater, phaseLateSent, phaseAbortResolve, phaseRollbackTo)
	switch c.phase {
	case phaseEarlyResolve:
		return c.settleEarly()
	case phaseEarlySettle:
		return c.sendDecision()
	case phaseResolveLater:
		c.phase = phaseLate
		return step{kind: stepBuggify, site: "txn.late-resolution"}
	case phaseRollbackTo:
		if err != nil {
			c.done = true // its intents are in an unknown state: only Rollback now
			return c.finish(fmt.Errorf("txn: rolling back to a savepoint: %w", err))
		}
		for _, k := range c.gone {
			delete(c.intents, string(k))
			delete(c.writes, string(k))
		}
		return c.finish(nil)
	}
	return c.finish(nil)
}

// withoutIndexes is keys but those at the indexes drop names (in
// ascending order, as a commit lists the intents it resolved).
func withoutIndexes(keys [][]byte, drop []uint64) [][]byte {
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		if len(drop) > 0 && drop[0] == uint64(i) {
			drop = drop[1:]
			continue
		}
		out = append(out, k)
	}
	return out
}

// sortedKeys is a set's keys in order.
func sortedKeys(set map[string]bool) [][]byte {
	keys := make([][]byte, 0, len(set))
	for k := range set {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}
