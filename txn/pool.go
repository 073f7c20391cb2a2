package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/orbitkernel/orbit/kernel"
)

// ErrPoolExhausted: every DB of a Pool is lent out (TryTake).
var ErrPoolExhausted = errors.New("txn: every pooled client is in use")

// Pool lends DBs to tasks, each DB to one task at a time (a DB serves one
// task at a time). It holds a slot per DB it may make, at most size, and
// makes a slot's DB on its first use, so an idle pool costs nothing.
type Pool struct {
	newDB  func(name string) (*DB, error)
	prefix string
	// slots holds a DB, or nil for a slot whose DB is not made yet.
	slots *kernel.Mailbox[*DB]

	mu   sync.Mutex
	made int
}

// NewPool returns a pool of up to size DBs made by newDB, named prefix-1,
// prefix-2, ...
func NewPool(rt kernel.Runtime, size int, prefix string, newDB func(name string) (*DB, error)) *Pool {
	p := &Pool{newDB: newDB, prefix: prefix, slots: kernel.NewMailbox[*DB](rt, prefix+" pool", size)}
	for range size {
		p.slots.Send(nil)
	}
	return p
}

// TryTake lends a DB at once, or fails with ErrPoolExhausted. The caller
// gives it back with Put.
func (p *Pool) TryTake() (*DB, error) {
	db, ok := p.slots.TryRecv()
	if !ok {
		return nil, ErrPoolExhausted
	}
	return p.fill(db)
}

// Take lends a DB, waiting for one until ctx ends.
func (p *Pool) Take(ctx context.Context) (*DB, error) {
	db, err := p.slots.Recv(ctx)
	if err != nil {
		return nil, err
	}
	return p.fill(db)
}

// fill makes the DB of an empty slot.
func (p *Pool) fill(db *DB) (*DB, error) {
	if db != nil {
		return db, nil
	}
	p.mu.Lock()
	p.made++
	name := fmt.Sprintf("%s-%d", p.prefix, p.made)
	p.mu.Unlock()
	db, err := p.newDB(name)
	if err != nil {
		p.slots.Send(nil)
		return nil, err
	}
	return db, nil
}

// Put gives a DB back.
func (p *Pool) Put(db *DB) { p.slots.Send(db) }
