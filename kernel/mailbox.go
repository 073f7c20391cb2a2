package kernel

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Recv on a mailbox that is closed and drained.
var ErrClosed = errors.New("kernel: mailbox closed")

// Mailbox is a bounded FIFO queue between tasks. Send never blocks: when the
// mailbox is full the message is refused, as a full socket buffer drops a
// packet, so a slow receiver can never stall a sender. Recv blocks in the
// runtime, so the simulator sees the wait.
type Mailbox[T any] struct {
	mu   sync.Mutex
	cond Cond
	// Invariant: len(items) <= capacity.
	items    []T
	head     int // items[head:] are queued; items[:head] are consumed
	capacity int
	closed   bool
}

// NewMailbox returns an empty mailbox holding at most capacity messages.
// name appears in deadlock reports.
func NewMailbox[T any](rt Runtime, name string, capacity int) *Mailbox[T] {
	if capacity <= 0 {
		panic("kernel: mailbox capacity must be positive")
	}
	m := &Mailbox[T]{capacity: capacity}
	m.cond = rt.NewCond(&m.mu, "recv "+name)
	return m
}

// Send queues v and reports whether it was accepted: false when the mailbox
// is full or closed.
func (m *Mailbox[T]) Send(v T) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(m.items)-m.head >= m.capacity {
		return false
	}
	if m.head > 0 && len(m.items) == cap(m.items) {
		// Reuse the consumed prefix instead of growing.
		n := copy(m.items, m.items[m.head:])
		clear(m.items[n:])
		m.items = m.items[:n]
		m.head = 0
	}
	m.items = append(m.items, v)
	m.cond.Broadcast()
	return true
}

// Recv returns the oldest message, blocking until there is one or ctx ends.
// A closed mailbox still yields its queued messages, then ErrClosed.
func (m *Mailbox[T]) Recv(ctx context.Context) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.head == len(m.items) {
		var zero T
		if m.closed {
			return zero, ErrClosed
		}
		if err := m.cond.Wait(ctx); err != nil {
			return zero, err
		}
	}
	return m.popLocked(), nil
}

// TryRecv returns the oldest message without blocking.
func (m *Mailbox[T]) TryRecv() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.head == len(m.items) {
		var zero T
		return zero, false
	}
	return m.popLocked(), true
}

// TryRecvNewest returns the newest message without blocking (a receiver
// that serves the latest first under overload, as adaptive LIFO does).
func (m *Mailbox[T]) TryRecvNewest() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var zero T
	if m.head == len(m.items) {
		return zero, false
	}
	last := len(m.items) - 1
	v := m.items[last]
	m.items[last] = zero
	m.items = m.items[:last]
	if m.head == len(m.items) {
		m.items = m.items[:0]
		m.head = 0
	}
	return v, true
}

func (m *Mailbox[T]) popLocked() T {
	v := m.items[m.head]
	var zero T
	m.items[m.head] = zero
	m.head++
	if m.head == len(m.items) {
		m.items = m.items[:0]
		m.head = 0
	}
	return v
}

// Len is the number of queued messages.
func (m *Mailbox[T]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items) - m.head
}

// Close refuses further sends and wakes every receiver.
func (m *Mailbox[T]) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.cond.Broadcast()
}
