package storage

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// entryCache keeps the most recent entries of one range's log in memory,
// up to a byte budget: Raft reads those far more than any others, to send
// them to followers and to apply them just after they are written.
//
// It holds only durable entries (its owner changes it in post-commit
// hooks), so whatever it answers, the disk would answer too.
type entryCache struct {
	// maxBytes is the budget, in raftpb.Entry.Size() bytes; 0 or less
	// disables the cache.
	maxBytes int64
	// Invariant: ents holds consecutive indexes and, if not empty, ends at
	// the owner's durable last index.
	ents []raftpb.Entry
	// Invariant: bytes is the sum of Size() over ents, and bytes ≤ maxBytes.
	bytes int64
}

func entrySize(e *raftpb.Entry) int64 { return int64(e.Size()) }

// span returns the first and last index held; ok is false when empty.
func (c *entryCache) span() (first, last uint64, ok bool) {
	if len(c.ents) == 0 {
		return 0, 0, false
	}
	return c.ents[0].Index, c.ents[len(c.ents)-1].Index, true
}

// term returns the term of entry i if the cache holds it.
func (c *entryCache) term(i uint64) (uint64, bool) {
	first, last, ok := c.span()
	if !ok || i < first || i > last {
		return 0, false
	}
	return c.ents[i-first].Term, true
}

// append records entries just made durable. They replace any cached entry
// at or after their first index (a conflicting suffix), then the oldest
// entries go until the budget holds.
func (c *entryCache) append(ents []raftpb.Entry) {
	if c.maxBytes <= 0 || len(ents) == 0 {
		return
	}
	first, last, ok := c.span()
	switch at := ents[0].Index; {
	case !ok || at <= first:
		c.reset()
	case at <= last+1:
		for _, e := range c.ents[at-first:] {
			c.bytes -= entrySize(&e)
		}
		c.ents = c.ents[:at-first]
	default:
		panic(fmt.Sprintf("storage: entry cache [%d, %d] cannot take entries from %d", first, last, at))
	}
	for i := range ents {
		c.bytes += entrySize(&ents[i])
	}
	c.ents = append(c.ents, ents...)
	c.evict()
}

// evict drops the oldest entries until the budget holds. An entry larger
// than the whole budget is not kept at all.
func (c *entryCache) evict() {
	n := 0
	for c.bytes > c.maxBytes && n < len(c.ents) {
		c.bytes -= entrySize(&c.ents[n])
		n++
	}
	c.dropFront(n)
}

// compact drops the entries up to and including index.
func (c *entryCache) compact(index uint64) {
	first, last, ok := c.span()
	if !ok || index < first {
		return
	}
	n := int(min(index, last) - first + 1)
	for i := range n {
		c.bytes -= entrySize(&c.ents[i])
	}
	c.dropFront(n)
}

// dropFront removes the first n entries, copying the rest to a fresh array
// once the dead prefix dominates, so that the array does not grow forever.
func (c *entryCache) dropFront(n int) {
	c.ents = c.ents[n:]
	if len(c.ents) == 0 {
		c.ents = nil
	} else if len(c.ents) < cap(c.ents)/4 {
		c.ents = append([]raftpb.Entry(nil), c.ents...)
	}
}

func (c *entryCache) reset() {
	c.ents, c.bytes = nil, 0
}
