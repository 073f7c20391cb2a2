package consensus

import (
	"bytes"
	"cmp"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/storage"
)

// Parked queries: a wait queue at the leaseholder (issue 14; docs/txn.md,
// "Waiting at the leaseholder").
//
// A query may answer "ask me again when this key is written": its machine
// returns a *WaitForWrite (as Query's error) holding the key, how long it
// may wait, and the answer to give if nothing is written in that time.
// The driver then keeps the query's reply instead of sending it. When an
// entry whose effects write the key (or a key under it) applies here, the
// query is served again from the start (the lease and range checks
// included), and answered with what the machine says then, or parked
// again; when its time is up, it is served again and answered whatever
// the machine says; when this replica stops leading, it gets the answer
// its machine gave when it parked. All are linearizable: a served-again
// query reads at a point within its request, and the parked answer was
// true at the point it was read.
//
// A transaction that waits for another to finish (txn's pushers) used to
// poll the holder's record every few milliseconds; the key then lay idle
// between the holder's decision and the next poll, and the pollers loaded
// the leaseholder. Parked at the key, the waiter hears of the resolution
// as it applies, and a lock's writers go on one at a time (WaitForWrite.
// Queue). CockroachDB's lock table queues a key's waiters the same way.
//
// Everything happens on the driver: no task per waiter. A parked query's
// deadline is a runtime timer that wakes the driver.

// WaitForWrite is what a machine's Query returns (as its error) to park
// the query until Key (or a key under it) is written in this node's state
// or For has passed.
type WaitForWrite struct {
	// Key is the key whose write wakes the query (as the machine writes it
	// through RangeData), or the write of any key that starts with it.
	Key []byte
	// For is the longest the query may wait from now; the driver bounds
	// it by MaxQueryWait, and by the first park of the same request.
	For time.Duration
	// Reply is the query's answer if it is not woken.
	Reply []byte
	// Queue makes the query one of Key's queue: a write of Key wakes only
	// the first of the queue, by Rank (lowest first), then by when each
	// first parked; a woken query that parks again keeps its place. (A
	// lock's waiters: one goes on when the lock is released, instead of
	// all of them racing for it.) A query not in the queue is woken by
	// every write of Key.
	Queue bool
	Rank  uint64
}

func (w *WaitForWrite) Error() string { return "consensus: the query waits for a write" }

// MaxQueryWait bounds how long a query stays parked. It is far below
// AttemptTimeout, so that the client's attempt never times out on a
// parked query (an answer may come up to a scheduling delay late).
const MaxQueryWait = 100 * time.Millisecond

// maxParkedQueries bounds the queries parked on a node; beyond it, a
// query that would park is answered at once (its client asks again).
const maxParkedQueries = 4096

// parkedQuery is one query waiting for a write of key.
type parkedQuery struct {
	id    uint64 // parking.next when it first parked
	queue bool
	rank  uint64
	key   []byte
	until time.Duration // Runtime.Monotonic
	req   Request
	// fallback answers the query if it is not woken.
	fallback Response
	reply    func(Response, error)
}

// parking is the driver's parked queries, by the key that wakes them.
type parking struct {
	byKey map[string][]*parkedQuery
	n     int
	next  uint64
	// woken are the queries whose key was written, to serve again once
	// the cycle that applied the write is done.
	woken []*parkedQuery
}

// park keeps the reply of query req, which its machine asked to wait
// (w), with fallback its answer if it is not woken; false if it may not
// wait (its time is up, or too many wait).
func (s *Store) park(req Request, w *WaitForWrite, fallback Response, reply func(Response, error)) bool {
	now := s.rt.Monotonic()
	until := now + min(w.For, MaxQueryWait)
	if req.parkedUntil != 0 {
		until = min(until, req.parkedUntil)
	}
	p := &s.parking
	if until <= now || p.n >= maxParkedQueries || len(w.Key) == 0 {
		return false
	}
	if p.byKey == nil {
		p.byKey = map[string][]*parkedQuery{}
	}
	if req.parkedID == 0 {
		p.next++
		req.parkedID = p.next
	}
	req.parkedUntil = until
	k := string(w.Key)
	q := &parkedQuery{id: req.parkedID, queue: w.Queue, rank: w.Rank, key: w.Key, until: until, req: req, fallback: fallback, reply: reply}
	qs := p.byKey[k]
	at, _ := slices.BinarySearchFunc(qs, q, parkedOrder)
	p.byKey[k] = slices.Insert(qs, at, q)
	p.n++
	s.rt.AfterFunc(until-now, func() { s.events.Send(event{parkDue: true}) })
	return true
}

// wakeWritten moves to the woken the queries parked on a key that effects
// write (a key that starts with it): on each such key, every query not in
// its queue, and the queue's first.
func (s *Store) wakeWritten(effects []byte) {
	p := &s.parking
	if p.n == 0 {
		return
	}
	var written [][]byte
	_ = storage.VisitEffects(effects, func(op storage.EffectOp) {
		if !op.Local && op.Kind != "delete-range" {
			written = append(written, op.Key)
		}
	})
	var hit []string
	for k := range p.byKey {
		if slices.ContainsFunc(written, func(w []byte) bool { return bytes.HasPrefix(w, []byte(k)) }) {
			hit = append(hit, k)
		}
	}
	// In key order, not the map's: the woken are served in this order.
	slices.Sort(hit)
	for _, k := range hit {
		qs := p.byKey[k]
		kept := qs[:0]
		wokeQueue := false
		for _, q := range qs {
			if q.queue {
				if wokeQueue {
					kept = append(kept, q)
					continue
				}
				wokeQueue = true
			}
			p.woken = append(p.woken, q)
		}
		p.n -= len(qs) - len(kept)
		if len(kept) == 0 {
			delete(p.byKey, k)
		} else {
			p.byKey[k] = kept
		}
	}
}

// serveWoken serves the woken queries again, from the start.
func (s *Store) serveWoken() {
	p := &s.parking
	woken := p.woken
	p.woken = nil
	for _, q := range woken {
		s.serve(q.req, q.reply)
	}
}

// takeParked removes the parked queries that match (all, for nil) and
// returns them in the order they parked (map order must not leak into
// what the driver does next: the simulator replays it).
func (s *Store) takeParked(match func(*parkedQuery) bool) []*parkedQuery {
	p := &s.parking
	if p.n == 0 {
		return nil
	}
	var taken []*parkedQuery
	for k, qs := range p.byKey {
		kept := qs[:0]
		for _, q := range qs {
			if match == nil || match(q) {
				taken = append(taken, q)
			} else {
				kept = append(kept, q)
			}
		}
		p.n -= len(qs) - len(kept)
		if len(kept) == 0 {
			delete(p.byKey, k)
		} else {
			p.byKey[k] = kept
		}
	}
	slices.SortFunc(taken, func(a, b *parkedQuery) int { return cmp.Compare(a.id, b.id) })
	return taken
}

// parkedOrder is the order of a key's parked queries: the queue's by rank
// and then by when each first parked (the others' order is the same).
func parkedOrder(a, b *parkedQuery) int {
	return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.id, b.id))
}

// answerParked answers the parked queries that match (all, for nil) with
// their fallbacks.
func (s *Store) answerParked(match func(*parkedQuery) bool) {
	for _, q := range s.takeParked(match) {
		q.reply(q.fallback, nil)
	}
}

// expireParked serves again the parked queries whose time is up: the
// machine answers afresh (a coordinator's heartbeat may have expired
// meanwhile), and does not park them again.
func (s *Store) expireParked() {
	now := s.rt.Monotonic()
	for _, q := range s.takeParked(func(q *parkedQuery) bool { return q.until <= now }) {
		s.serve(q.req, q.reply)
	}
}

// releaseParked answers the queries parked on keys of r's range: it
// stops leading, and a new leader's writes would never wake them here.
func (s *Store) releaseParked(r *replica) {
	d := r.desc
	s.answerParked(func(q *parkedQuery) bool { return d.Contains(q.key) })
}
