package consensus

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/orbitkernel/orbit/storage"
)

// Long queries on a task of their own (issue 13, "Millions of keys").
//
// The driver serves a read that reached it (no published lease view: a
// ReadIndex round, or a lease checked in the cycle) between two Ready
// cycles, and while it reads no range of the node proposes, appends or
// applies anything. For a point read that is microseconds; for a query
// that reads its whole range (Redis's DBSIZE, INFO keyspace, RANDOMKEY,
// a SCAN with a large COUNT) it grows with the range: at four million
// keys one DBSIZE held every write of the node for over ten seconds, and
// their clients gave up ("write outcome unknown").
//
// So a machine says which of its queries are long (LongQuerier), and the
// driver, at the moment it would have run one, takes a Pebble view of the
// engine instead (the read's linearization point: the engine then holds
// every write acknowledged before the read, and only committed ones) and
// runs the query on that view on a task of its own. The view's lifetime
// is the store's to end: a store that closes aborts the long queries
// still running (their reads fail, their clients retry elsewhere) and
// closes their views before it reports closed, so no view outlives the
// engine. At most maxLongQueries run at once on a node; another is
// refused, retryable, before anything is read.
//
// Reads served off the driver under a lease view (leasedread.go) already
// run on their caller's task, long or not.

// LongQuerier is implemented by a state machine some of whose queries
// read a whole range, or a part that grows with it: the store runs those
// off its driver, on a view (longquery.go).
type LongQuerier interface {
	LongQuery(cmd []byte) bool
}

// maxLongQueries bounds the long queries running at once on a node: each
// holds a Pebble snapshot (which keeps compactions from dropping what it
// sees) and a core while it runs.
const maxLongQueries = 4

// errStoreClosing is what the reads of a long query whose store closed
// under it panic with (a failed read would stop the node: mustRead); the
// query's task recovers it.
var errStoreClosing = errors.New("consensus: the store is closing")

// longQuery is one long query's view, shared by its task and the store.
type longQuery struct {
	// abort is set when the store closes: the query's next read fails.
	abort atomic.Bool
	// mu is held by the task while it reads the view, and by the store
	// to close it at shutdown.
	mu   sync.Mutex
	view *storage.View // nil once closed
}

// longQueries are a node's long queries running, by ID.
type longQueries struct {
	mu     sync.Mutex
	next   uint64
	m      map[uint64]*longQuery
	closed bool
}

// isLong reports whether req is a query its machine calls long.
func (s *Store) isLong(req Request) bool {
	if req.Op != OpQuery {
		return false
	}
	ks, err := s.machineFor(req.Key)
	if err != nil {
		return false
	}
	lq, ok := ks.Machine.(LongQuerier)
	return ok && lq.LongQuery(req.Value)
}

// readLong answers the long query req of range d on a task of its own,
// from a view of the engine taken now (on the driver).
func (s *Store) readLong(d Descriptor, req Request, meta CommandMeta, reply func(Response, error)) {
	t := &s.long
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		reply(Response{}, retryf("the store is closing"))
		return
	case len(t.m) >= maxLongQueries:
		t.mu.Unlock()
		reply(Response{}, retryf("%d long queries already running on this node", maxLongQueries))
		return
	}
	q := &longQuery{view: s.eng.NewView()}
	t.next++
	id := t.next
	if t.m == nil {
		t.m = map[uint64]*longQuery{}
	}
	t.m[id] = q
	t.mu.Unlock()
	s.rt.Go("long query", func(context.Context) {
		resp, err := q.run(func(rd stateReader) (Response, error) {
			var resp Response
			var err error
			s.readFrom(rd, d, req, meta, func(r Response, e error) { r.park = nil; resp, err = r, e })
			return resp, err
		})
		t.mu.Lock()
		delete(t.m, id)
		t.mu.Unlock()
		reply(resp, err)
	})
}

// run reads q's view with read, then closes it. A store that closed
// first leaves nothing to read, and one that closes while it reads ends
// the read: either way the query is refused, retryable.
func (q *longQuery) run(read func(stateReader) (Response, error)) (resp Response, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view == nil {
		return Response{}, retryf("the store closed before the query ran")
	}
	defer func() {
		_ = q.view.Close()
		q.view = nil
		if p := recover(); p != nil && p != errStoreClosing { //nolint:errorlint // the sentinel itself, as panicked
			panic(p)
		}
		if q.abort.Load() {
			resp, err = Response{}, retryf("the store closed while the query ran")
		}
	}()
	return read(abortable{View: q.view, abort: &q.abort})
}

// closeAll aborts the long queries running, waits for their current read
// and closes their views (the store is closing). Later ones are refused.
func (t *longQueries) closeAll() {
	t.mu.Lock()
	t.closed = true
	ids := slices.Sorted(maps.Keys(t.m)) // one order for every run
	qs := make([]*longQuery, len(ids))
	for i, id := range ids {
		qs[i] = t.m[id]
	}
	t.mu.Unlock()
	for _, q := range qs {
		q.abort.Store(true)
		q.mu.Lock()
		if q.view != nil {
			_ = q.view.Close()
			q.view = nil
		}
		q.mu.Unlock()
	}
}

// abortable is a view whose reads end the query once its store is
// closing.
type abortable struct {
	*storage.View
	abort *atomic.Bool
}

func (a abortable) Get(key []byte) ([]byte, error) {
	if a.abort.Load() {
		panic(errStoreClosing)
	}
	return a.View.Get(key)
}

func (a abortable) Scan(start, end []byte, limit int) ([]storage.KeyValue, []byte, error) {
	if a.abort.Load() {
		panic(errStoreClosing)
	}
	return a.View.Scan(start, end, limit)
}

func (a abortable) GetRangeLocal(id storage.RangeID, key []byte) ([]byte, error) {
	if a.abort.Load() {
		panic(errStoreClosing)
	}
	return a.View.GetRangeLocal(id, key)
}
