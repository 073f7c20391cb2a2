package kernel

import (
	"context"
	"errors"
)

// ErrPoolExhausted: every value of a Pool is lent out (TryTake).
var ErrPoolExhausted = errors.New("every pooled value is in use")

// Pool lends values to tasks, each to one task at a time (a client that
// serves one task at a time: a transactional DB, an actor client). It
// holds a slot per value it may make, at most size, and makes a slot's
// value on its first use, so an idle pool costs nothing.
type Pool[T any] struct {
	make  func() (T, error)
	slots *Mailbox[poolSlot[T]]
}

type poolSlot[T any] struct {
	v    T
	made bool
}

// NewPool returns a pool of up to size values made by make.
func NewPool[T any](rt Runtime, what string, size int, make func() (T, error)) *Pool[T] {
	p := &Pool[T]{make: make, slots: NewMailbox[poolSlot[T]](rt, what+" pool", size)}
	for range size {
		p.slots.Send(poolSlot[T]{})
	}
	return p
}

// TryTake lends a value at once, or fails with ErrPoolExhausted. The
// caller gives it back with Put.
func (p *Pool[T]) TryTake() (T, error) {
	s, ok := p.slots.TryRecv()
	if !ok {
		var zero T
		return zero, ErrPoolExhausted
	}
	return p.fill(s)
}

// Take lends a value, waiting for one until ctx ends.
func (p *Pool[T]) Take(ctx context.Context) (T, error) {
	s, err := p.slots.Recv(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return p.fill(s)
}

// fill makes the value of an empty slot.
func (p *Pool[T]) fill(s poolSlot[T]) (T, error) {
	if s.made {
		return s.v, nil
	}
	v, err := p.make()
	if err != nil {
		p.slots.Send(poolSlot[T]{})
	}
	return v, err
}

// Put gives a value back.
func (p *Pool[T]) Put(v T) { p.slots.Send(poolSlot[T]{v: v, made: true}) }
