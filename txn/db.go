package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Errors a caller tells apart with errors.Is.
var (
	// ErrRetry: a conflict (a write too old to commit at its read
	// timestamp that a refresh could not move, an uncertain read that
	// could not move, a wound by an older transaction); nothing was
	// committed, and running the transaction again may succeed. DB.Txn
	// does, up to Options.MaxRetries times.
	ErrRetry = errors.New("txn: transaction must retry")
	// ErrIndeterminate: the commit's outcome is unknown (the context
	// ended while its decision was in flight).
	ErrIndeterminate = errors.New("txn: transaction outcome unknown")
	// ErrClockOffset: a node's clock is beyond the maximum offset from
	// this one's; it refused the request.
	ErrClockOffset = errors.New("txn: clock offset beyond the maximum")
	// ErrMalformed: a node could not make sense of the request.
	ErrMalformed = errors.New("txn: malformed request")
	// ErrDone: the transaction was committed or rolled back already.
	ErrDone = errors.New("txn: the transaction has ended")
	// ErrReadOnly: a write (or a lock) asked of a read-only transaction
	// (Tx.SetReadOnly); the transaction itself goes on.
	ErrReadOnly = errors.New("txn: write in a read-only transaction")
)

// RetryError says why a transaction must retry.
type RetryError struct{ Reason string }

func (e *RetryError) Error() string { return fmt.Sprintf("%v: %s", ErrRetry, e.Reason) }
func (e *RetryError) Unwrap() error { return ErrRetry }

func retry(format string, args ...any) error {
	return &RetryError{Reason: fmt.Sprintf(format, args...)}
}

// DB runs reads, writes and transactions on the transactional keyspace.
// Keys are the caller's: the DB stores them under the keyspace's prefix.
// One DB serves one caller task at a time, as a consensus.Client does.
type DB struct {
	rt     kernel.Runtime
	router *consensus.Router
	name   string
	cl     *consensus.Client
	hb     *kernel.Mailbox[*consensus.Client] // the heartbeat tasks' client, one at a time
	clock  *hlc.Clock
	opts   Options
	place  placement
	// late are resolutions a buggify site asked to send again, before a
	// later transaction (the simulator's duplicated, late messages).
	late []resolution
	// settling is the node's finalized-transaction cache
	// (Options.Settling, or the DB's own), pending the number of this
	// DB's commits in it (resolveLater), at most
	// Options.PendingResolutions.
	settling *Settling
	pending  atomic.Int32
	// resolutions feed the resolver task (nil until the first).
	resolutions *kernel.Mailbox[*resolution]
}

// NewDB returns a DB on the node's router and clock; name labels its
// consensus clients (consensus.NewClient).
func NewDB(rt kernel.Runtime, router *consensus.Router, clock *hlc.Clock, name string, opts Options) (*DB, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	settling := opts.Settling
	if settling == nil {
		settling = NewSettling()
	}
	place := placement{lookup: router.Lookup, batchBytes: opts.BatchBytes, recordKeyBytes: opts.RecordKeyBytes}
	return &DB{rt: rt, router: router, name: name, cl: consensus.NewClient(router, name), clock: clock, opts: opts, settling: settling, place: place}, nil
}

// Now is the node's hybrid-logical clock's reading.
func (db *DB) Now() hlc.Timestamp { return db.clock.Now() }

// MaxOffset is the maximum clock offset between nodes the DB relies on.
func (db *DB) MaxOffset() time.Duration { return db.clock.MaxOffset() }

// send runs c on the range holding key's run, through cl.
func (db *DB) send(ctx context.Context, cl *consensus.Client, key []byte, c *command) (*result, error) {
	fencedWait := time.Millisecond
	for {
		res, err := db.sendOnce(ctx, cl, key, c)
		if err != nil {
			return res, err
		}
		var wait time.Duration
		switch res.code {
		case codeFutureRead:
			// A read in the leaseholder's future: wait until its clock
			// passes the read's timestamp.
			wait = max(time.Duration(c.read.WallNanos-res.now.WallNanos), time.Millisecond)
		case codeFenced:
			// The leaseholder's clock is fenced and it did nothing; it
			// hands its leadership over within ticks, or its clock comes
			// back. Ask again, backing off.
			wait, fencedWait = fencedWait, min(2*fencedWait, 100*time.Millisecond)
		default:
			return res, nil
		}
		if err := db.rt.Sleep(ctx, wait); err != nil {
			if res.code == codeFenced {
				return nil, fmt.Errorf("%w: the leaseholder of %q has its clock fenced: %w", ErrClockOffset, key, err)
			}
			return nil, err
		}
	}
}

func (db *DB) sendOnce(ctx context.Context, cl *consensus.Client, key []byte, c *command) (*result, error) {
	if err := db.clock.Fenced(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClockOffset, err)
	}
	c.now = db.clock.Now()
	if c.op.meetsIntents() {
		c.finalized = db.settling.finalizedFor(c)
	}
	var out []byte
	var err error
	if !c.op.query() {
		out, err = cl.Command(ctx, storage.MVCCRouteKey(key), c.encode())
	} else {
		out, err = cl.Query(ctx, storage.MVCCRouteKey(key), c.encode())
	}
	if err != nil {
		return nil, err
	}
	res, err := decodeResult(out)
	if err != nil {
		return nil, fmt.Errorf("%w: a reply that does not decode: %w", ErrMalformed, err)
	}
	switch res.code {
	case codeMalformed:
		return nil, fmt.Errorf("%w: %d refused", ErrMalformed, c.op)
	case codeClockOffset:
		return nil, fmt.Errorf("%w: the leaseholder of %q refused our clock", ErrClockOffset, key)
	}
	if err := db.clock.Update(res.now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClockOffset, err)
	}
	return res, nil
}

// Get reads key's latest committed value (a transaction of one read).
func (db *DB) Get(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	err = db.Txn(ctx, func(tx *Tx) error {
		value, found, err = tx.Get(ctx, key)
		return err
	})
	return value, found, err
}

// Put writes key outside any transaction: one round, at a timestamp above
// every read and version of the key, acknowledged once every later read
// anywhere must see it.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	return db.write(ctx, key, value, false)
}

// Delete removes key outside any transaction, as Put writes.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	return db.write(ctx, key, nil, true)
}

func (db *DB) write(ctx context.Context, key, value []byte, deleted bool) error {
	k := spaceKey(key)
	for {
		res, err := db.send(ctx, db.cl, k, &command{op: opPut, key: k, keys: [][]byte{k}, writes: [][]byte{tagged(value, deleted)}})
		if err != nil {
			return err
		}
		if res.code == codeIntent {
			if err := db.push(ctx, nil, res, true); err != nil {
				return err
			}
			continue
		}
		if err := db.commitWait(ctx, res.ts); err != nil {
			return fmt.Errorf("%w: written, but the wait for its timestamp ended: %v", ErrIndeterminate, err)
		}
		return nil
	}
}

// commitWait returns once the node's clock (its physical part, which
// follows no step of the wall clock: hlc.Clock) has passed ts. A write's
// timestamp may be above every clock (pushed by a read at a timestamp
// from a clock ahead, or by a new leaseholder's cache); a read that
// starts after the write is acknowledged must still see it, and its
// uncertainty window (its clock plus the maximum offset) covers only
// timestamps some clock has reached. CockroachDB waits the same way for
// writes at future timestamps.
func (db *DB) commitWait(ctx context.Context, ts hlc.Timestamp) error {
	wait := time.Duration(ts.WallNanos - db.clock.Physical().UnixNano())
	if wait <= 0 {
		return nil
	}
	return db.rt.Sleep(ctx, wait+time.Nanosecond)
}

// push settles the intent a request met (res), or waits until its key is
// free, and returns for the caller to ask again. tx is the pusher (nil: a
// request outside any transaction, which never wounds). queue says the
// caller means to write the key: it waits in the key's queue, where one
// writer goes on per release; a reader goes on at every write of the key.
//
// It asks the holder's record first, with a query: settled, the intent is
// resolved; abortable (its coordinator gone, or wound–wait: the pusher is
// older and has waited WoundAfter), it is pushed, a replicated write that
// aborts it, and resolved. Alive, the pusher waits for the key at the
// key's leaseholder (opAwait), a writer in its queue ranked by age, until
// the key is written (the holder resolved its intent, took it back with
// ROLLBACK TO SAVEPOINT, or a newer holder replaced it; a version
// committed) or maxPushWait is up: the key
// free, push returns; held still, by the same holder or another, it asks
// that holder's record again (a heartbeat may have expired meanwhile).
// Writers waiting for a hot lock go on one at a time as it is released,
// instead of all of them racing for it (docs/txn.md, "Waiting at the
// leaseholder").
func (db *DB) push(ctx context.Context, tx *coordinator, res *result, queue bool) error {
	holder, key := res.intent.Txn, res.intentKey
	// The pusher names itself, and so may wound a younger holder, only
	// once it has waited WoundAfter (Options.WoundAfter says why).
	wounding := tx != nil && db.opts.WoundAfter < 0
	woundAt := db.rt.Monotonic() + db.opts.WoundAfter
	for {
		if tx != nil && tx.wounded.Load() {
			return retry("wounded by an older transaction while waiting for %x", holder.ID[:4])
		}
		if tx != nil && !wounding && db.rt.Monotonic() >= woundAt {
			wounding = true
		}
		pc := pushOf(holder)
		if wounding {
			pc.pusher, pc.start = tx.id, tx.start
		}
		sc := *pc
		sc.op = opStatus
		st, err := db.send(ctx, db.cl, holder.Anchor, &sc)
		if err != nil {
			return err
		}
		switch {
		case st.code == codePending: // alive: wait for the key
		case st.code == codeOK && (st.status == statusCommitted || st.status == statusAborted):
			return db.resolveMet(ctx, holder, key, st) // settled
		default:
			// A push aborts it now (or the reply is a leaseholder's older
			// than settled statuses: the push says).
			if pr, err := db.pushOnce(ctx, pc, holder, key); err != nil || pr.code != codePending {
				return err
			}
		}
		wait := maxPushWait
		if tx != nil && !wounding {
			wait = max(min(wait, woundAt-db.rt.Monotonic()), time.Millisecond)
		}
		aw := &command{op: opAwait, key: key, wait: wait, queue: queue, start: db.clock.Now()}
		if tx != nil {
			aw.txn, aw.start = &storage.TxnMeta{ID: tx.id}, tx.start
		}
		ar, err := db.send(ctx, db.cl, key, aw)
		switch {
		case errors.Is(err, ErrMalformed):
			// A leaseholder older than opAwait: look again after a
			// while, as pushers did before it.
			if err := db.rt.Sleep(ctx, maxPushWait/4); err != nil {
				return err
			}
		case err != nil:
			return err
		case ar.code == codeOK:
			return nil // free
		case ar.code == codeIntent:
			holder = ar.intent.Txn // held still, perhaps by another
		default:
			return fmt.Errorf("%w: an await answered %d", ErrMalformed, ar.code)
		}
	}
}

// pushOf is a push of holder's record by no transaction (a pusher that
// never wounds).
func pushOf(holder storage.TxnMeta) *command {
	return &command{op: opPush, key: holder.Anchor, txn: &storage.TxnMeta{ID: holder.ID, Anchor: holder.Anchor}}
}

// pushOnce sends the push pc of holder, whose intent is at key, and
// resolves the intent unless the holder is pending still (its reply's
// code then says codePending).
func (db *DB) pushOnce(ctx context.Context, pc *command, holder storage.TxnMeta, key []byte) (*result, error) {
	pr, err := db.send(ctx, db.cl, holder.Anchor, pc)
	if err != nil || pr.code == codePending {
		return pr, err
	}
	return pr, db.resolveMet(ctx, holder, key, pr)
}

// resolveMet resolves holder's intent at key as its record says (pr: a
// push's or a status query's reply on a settled record).
func (db *DB) resolveMet(ctx context.Context, holder storage.TxnMeta, key []byte, pr *result) error {
	_, err := db.send(ctx, db.cl, key, &command{op: opResolve, key: key, keys: [][]byte{key}, txn: &holder, commit: pr.status == statusCommitted, read: pr.ts})
	return err
}

// maxPushWait bounds one wait in a key's queue, after which the waiter
// asks the holder's record again (its coordinator may be gone) and
// checks that it was not wounded itself meanwhile. Below
// consensus.MaxQueryWait, which bounds it at the leaseholder.
const maxPushWait = 50 * time.Millisecond

// Txn runs fn in a transaction and commits it, running it again (with a
// new transaction) after a retryable conflict, at most MaxRetries times.
// fn must do nothing but through tx that it cannot do twice. Every
// attempt keeps the first one's age: wound–wait lets an older
// transaction through, so a retried one grows older than its rivals and
// wins in the end instead of starving.
func (db *DB) Txn(ctx context.Context, fn func(*Tx) error) error {
	var err error
	var age hlc.Timestamp
	for attempt := range db.opts.MaxRetries {
		for len(db.late) > 0 {
			r := db.late[0]
			db.late = db.late[1:]
			db.resolve(ctx, db.cl, r)
		}
		tx := db.Begin()
		if attempt == 0 {
			age = tx.c.start
		}
		tx.c.start = age
		if err = fn(tx); err == nil {
			err = tx.Commit(ctx)
		}
		if err == nil {
			return nil
		}
		tx.Rollback(ctx)
		if !errors.Is(err, ErrRetry) {
			return err
		}
		backoff := time.Duration(1+db.rt.Rand().IntN(1<<min(attempt, 6))) * time.Millisecond
		if serr := db.rt.Sleep(ctx, backoff); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", db.opts.MaxRetries, err)
}

// placement is where the router places keys, as far as it knows (it
// may be out of date: a range then refuses a command that crosses it),
// and the sizes batches and records are kept to.
type placement struct {
	lookup         func(key []byte) consensus.Descriptor
	batchBytes     int // Options.BatchBytes
	recordKeyBytes int // Options.RecordKeyBytes
}

// oneRange reports whether every buffered key is placed in one range.
func (p placement) oneRange(writes map[string]buffered) bool {
	var id storage.RangeID
	for k := range writes {
		d := p.lookup(storage.MVCCRouteKey([]byte(k)))
		if id != 0 && d.ID != id {
			return false
		}
		id = d.ID
	}
	return true
}

// batchLen is how many of keys (sorted) go in the next batch: those
// placed in the first one's range, up to batchBytes of size (at least one
// key).
func (p placement) batchLen(keys [][]byte, size func([]byte) int) int {
	d := p.lookup(storage.MVCCRouteKey(keys[0]))
	n, bytes := 1, size(keys[0])
	for ; n < len(keys); n++ {
		bytes += size(keys[n])
		if bytes > p.batchBytes || !d.Contains(storage.MVCCRouteKey(keys[n])) {
			break
		}
	}
	return n
}

// keyBytes is a key's size in a batch that carries only keys.
func keyBytes(k []byte) int { return len(k) }

// condense is what a record keeps of a transaction's intents on keys
// (sorted): the keys, or past recordKeyBytes one span per run of keys
// placed in one range (flat start, end pairs), as CockroachDB condenses
// its lock spans.
func (p placement) condense(keys [][]byte) (points, spans [][]byte) {
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	if total <= p.recordKeyBytes {
		return keys, nil
	}
	for len(keys) > 0 {
		n := p.batchLen(keys, func([]byte) int { return 0 })
		end := append(slices.Clone(keys[n-1]), 0)
		if mutation.On(MutCondensedSpanShort) {
			end = keys[n-1]
		}
		spans = append(spans, keys[0], end)
		keys = keys[n:]
	}
	return nil, spans
}

// resolution is a decided transaction's intents to settle: committed at
// ts, or aborted; then its record is forgotten.
type resolution struct {
	meta   storage.TxnMeta // meta.Anchor: where its record is
	keys   [][]byte
	spans  [][]byte // flat start, end pairs (a condensed record's)
	commit bool
	ts     hlc.Timestamp
}

// maxCrossRangeRefusals bounds how often a resolution batch may be
// refused as crossing ranges in a row (each refusal teaches the router
// the split) before the resolution gives up.
const maxCrossRangeRefusals = 8

// resolveLater settles a commit's intents (r) on the DB's resolver task:
// the commit answers once its decision is durable, not after a round per
// range of intents (docs/txn.md, "Asynchronous resolution"). Until the
// resolver is done with r, every request of the node's DBs that reads or
// writes one of r's intent keys carries r's outcome (Settling), so the
// node's next transactions read and overwrite those intents as resolved
// instead of pushing (a client re-touching its keys made a queue without
// it slower than resolving in line). Past Options.PendingResolutions, r
// is resolved here, before the commit answers: a client that commits
// faster than its intents resolve waits for them.
func (db *DB) resolveLater(ctx context.Context, r resolution) {
	if len(r.keys) > maxLaterKeys || len(r.spans) > 0 {
		// A large transaction's intents, left behind, would be settled
		// by the readers of other nodes one push at a time (pgbench -i's
		// 100,000 rows made the next query time out), and their
		// resolution is most of its commit's work anyway.
		db.resolve(ctx, db.cl, r)
		return
	}
	if int(db.pending.Add(1)) > db.opts.PendingResolutions {
		db.pending.Add(-1)
		db.resolve(ctx, db.cl, r)
		return
	}
	if db.resolutions == nil {
		db.resolutions = kernel.NewMailbox[*resolution](db.rt, "txn resolutions", db.opts.PendingResolutions)
		db.rt.Go("txn resolver", db.resolver)
	}
	db.settling.add(&r)
	if !db.resolutions.Send(&r) {
		// pending bounds the queue at its capacity.
		panic("txn: the resolver's queue is full below PendingResolutions")
	}
}

// maxLaterKeys bounds the intents a commit leaves to its DB's resolver;
// a commit with more resolves them before it answers (resolveLater).
const maxLaterKeys = 64

// resolver settles the resolutions resolveLater queues, one at a time,
// each for at most HeartbeatExpiry (intents it leaves are settled by
// whoever meets them, from the record), and then drops it from settling.
func (db *DB) resolver(node context.Context) {
	cl := consensus.NewClient(db.router, db.name+"/resolver")
	for {
		r, err := db.resolutions.Recv(node)
		if err != nil {
			return
		}
		ctx, cancel := db.rt.WithTimeout(node, db.opts.HeartbeatExpiry)
		db.resolve(ctx, cl, *r)
		cancel()
		db.settling.remove(r)
		db.pending.Add(-1)
	}
}

// resolve settles r's intents, a batch per range at a time, then forgets
// the record, through cl. Best effort: an intent left behind is resolved
// by the first request that meets it (its record says how), and the
// record stays until then (or until garbage collection finds it).
func (db *DB) resolve(ctx context.Context, cl *consensus.Client, r resolution) {
	if db.resolveKeys(ctx, cl, r) != nil {
		return
	}
	for i := 0; i+1 < len(r.spans); i += 2 {
		for start := r.spans[i]; start != nil; {
			res, err := db.send(ctx, cl, start, &command{op: opResolveSpan, key: start, end: r.spans[i+1], txn: &r.meta, commit: r.commit, read: r.ts})
			if err != nil || res.code != codeOK {
				return
			}
			start = nil
			if res.more {
				start = res.resume
			}
		}
	}
	_, _ = db.send(ctx, cl, r.meta.Anchor, &command{op: opForget, key: r.meta.Anchor, txn: &r.meta})
}

// resolveKeys settles r's intents on r.keys, a batch per range at a time;
// an error says some may be left.
func (db *DB) resolveKeys(ctx context.Context, cl *consensus.Client, r resolution) error {
	refused := 0
	for keys := r.keys; len(keys) > 0; {
		n := db.place.batchLen(keys, keyBytes)
		res, err := db.send(ctx, cl, keys[0], &command{op: opResolve, key: keys[0], keys: keys[:n], txn: &r.meta, commit: r.commit, read: r.ts})
		if errors.Is(err, consensus.ErrCrossRange) && refused < maxCrossRangeRefusals {
			refused++
			continue // the router learned the split: batch again
		}
		if err == nil && res.code != codeOK {
			err = fmt.Errorf("%w: a resolution answered %d", ErrMalformed, res.code)
		}
		if err != nil {
			return err
		}
		refused = 0
		if res.more && !mutation.On(MutResolveStopsAtBatch) {
			n, _ = slices.BinarySearchFunc(keys, res.resume, bytes.Compare)
		}
		keys = keys[n:]
	}
	return nil
}

// gcPage bounds the keys one garbage collection command walks.
const gcPage = 1000

// CollectGarbage runs one garbage collection pass over the transactional
// keyspace (docs/txn.md): range by range, a page of keys at a time, each
// range's leaseholder removes what no read at or above now − GCTTL can
// see and the settled records older than that; the records whose intents
// lie in other ranges too come back, and CollectGarbage resolves those
// intents and forgets the records; so do the intents written before
// now − GCTTL, whose transactions CollectGarbage pushes (abandoned ones
// are aborted) and resolves. With onlyLed, it skips the ranges
// this node's router does not name it the leader of (every node then
// collects its own).
func (db *DB) CollectGarbage(ctx context.Context, onlyLed bool) (GCPass, error) {
	var pass GCPass
	for from := slices.Clone(KeyspaceStart); from != nil; {
		route := storage.MVCCRouteKey(from)
		if d := db.router.Lookup(route); onlyLed && db.router.Leader(d.ID) != db.rt.NodeID() {
			if d.End == nil || bytes.Compare(d.End, KeyspaceEnd) >= 0 {
				return pass, nil
			}
			from = storage.MVCCKeyAt(d.End)
			continue
		}
		res, err := db.send(ctx, db.cl, from, &command{op: opGC, key: from, end: slices.Clone(KeyspaceEnd), limit: gcPage})
		if err != nil {
			return pass, err
		}
		for _, kv := range res.kvs {
			var id [16]byte
			copy(id[:], kv.Value)
			r, err := decodeRecord(kv.Value[len(id):])
			if err != nil {
				return pass, err
			}
			db.resolve(ctx, db.cl, resolution{meta: storage.TxnMeta{ID: id, Anchor: kv.Key}, keys: r.keys, spans: r.spans, commit: r.status == statusCommitted, ts: r.ts})
			pass.Records++
		}
		// Intents older than the threshold: their transactions are pushed
		// once, as by a reader outside any transaction (aborted if their
		// heartbeats expired, left alone if they are alive still), and
		// the intents of the settled ones resolved.
		for _, a := range res.abandoned {
			holder := a.Intent.Txn
			pr, err := db.pushOnce(ctx, pushOf(holder), holder, a.Key)
			switch {
			case err != nil:
				return pass, err
			case pr.code == codePending:
				pass.Alive++
			default:
				pass.Abandoned++
			}
		}
		from = nil
		if res.more {
			from = res.resume
		}
	}
	return pass, nil
}

// GCPass is what one garbage collection pass (DB.CollectGarbage) did
// beyond removing old versions in place.
type GCPass struct {
	// Records are the settled records whose intents in other ranges the
	// pass resolved.
	Records int
	// Abandoned are the intents older than the threshold whose
	// transactions the pass found settled or aborted (their coordinators
	// gone before a decision) and resolved; Alive, those whose
	// transactions were alive still (left alone).
	Abandoned, Alive int
}
