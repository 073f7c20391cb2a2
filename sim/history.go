package sim

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// History records operations as clients see them: the virtual time of the
// call and of the return. An operation whose outcome the client cannot know
// (a timeout, a lost reply) stays open: it may have taken effect at any point
// after its call, or never.
//
// Calls and returns are stamped with a logical clock that ticks on every
// stamp, not with virtual time: an operation that starts at the very instant
// another returns must still count as after it (Porcupine treats equal times
// as overlapping). Virtual time goes along as metadata for the report.
type History struct {
	s     *Sim
	clock int64
	ops   []porcupine.Operation
}

func (h *History) tick() int64 {
	h.clock++
	return h.clock
}

// NewHistory returns an empty history timed by s.
func (s *Sim) NewHistory() *History { return &History{s: s} }

// Pending is an operation that has been called and not yet returned.
type Pending struct {
	h  *History
	op porcupine.Operation
}

// Call records the start of an operation by client (numbered from 0).
func (h *History) Call(client int, input KVInput) *Pending {
	return &Pending{h: h, op: porcupine.Operation{ClientId: client, Input: input, Call: h.tick(), Metadata: h.s.Elapsed()}}
}

// Return records a definite outcome and returns its timestamp.
func (p *Pending) Return(out KVOutput) int64 {
	p.op.Output = out
	p.op.Return = p.h.tick()
	p.h.ops = append(p.h.ops, p.op)
	return p.op.Return
}

// Unknown records that the outcome is unknown. A read with an unknown
// outcome cannot constrain anything and is dropped; a write stays in the
// history with no return, so the checker may place it anywhere after its
// call, including after everything else (which is "it never happened").
//
// It returns the operation's place in the history (-1 for a dropped read),
// for Bound.
func (p *Pending) Unknown() int {
	if p.op.Input.(KVInput).Op == OpGet {
		return -1
	}
	p.op.Output = KVOutput{Unknown: true}
	p.op.Return = math.MaxInt64
	p.h.ops = append(p.h.ops, p.op)
	return len(p.h.ops) - 1
}

// Bound closes an unknown write: it cannot take effect after ret. A service
// that numbers each client's writes and refuses any number below the last
// it applied gives this bound: once the client's next write has returned,
// the unknown one can no longer apply. The bound makes the check stricter
// (a late application becomes a violation) and keeps Porcupine's search
// small when outages leave many writes open.
func (h *History) Bound(op int, ret int64) {
	if op >= 0 && h.ops[op].Return == math.MaxInt64 {
		h.ops[op].Return = ret
	}
}

// Len is the number of recorded operations.
func (h *History) Len() int { return len(h.ops) }

// Operations returns the recorded operations.
func (h *History) Operations() []porcupine.Operation { return h.ops }

// KVOp is the kind of a key-value operation.
type KVOp uint8

const (
	OpGet KVOp = iota + 1
	OpPut
	OpCAS // set Value if the current value is Expect
	OpDelete
	OpIncr // add 1 to a counter ("" counts as 0) and read the new value
)

// KVInput is a key-value operation as called. A missing key reads as "".
type KVInput struct {
	Op     KVOp
	Key    string
	Value  string // OpPut, OpCAS: the new value
	Expect string // OpCAS: the value it must replace
}

// KVOutput is a key-value operation's outcome.
type KVOutput struct {
	Value   string // OpGet: what it read; OpIncr: the counter's new value
	OK      bool   // OpCAS: whether it swapped
	Unknown bool   // the client cannot know what happened
}

func (in KVInput) String() string {
	switch in.Op {
	case OpGet:
		return fmt.Sprintf("get(%s)", in.Key)
	case OpPut:
		return fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
	case OpCAS:
		return fmt.Sprintf("cas(%s, %q -> %q)", in.Key, in.Expect, in.Value)
	case OpDelete:
		return fmt.Sprintf("delete(%s)", in.Key)
	case OpIncr:
		return fmt.Sprintf("incr(%s)", in.Key)
	}
	return "?"
}
