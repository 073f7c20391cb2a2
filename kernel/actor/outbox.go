package actor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/txn"
)

// The outbox (docs/actors.md, "Calls between actors"): a turn's calls to
// other actors are records with their sender, numbered by the sender's
// counter and written in the turn's transaction — an effect of a deposed
// activation never exists. A sender with calls waiting has one entry in
// the due index (outboxName); the hosts that scan it deliver the sender's
// calls one at a time, in order, each numbered (the sender's identity and
// the call's number) so that the target runs it once however often it is
// sent, and hand each answer back to the sender as a turn that runs only
// while the call still waits, removing it in the same transaction.

// outboxState is the sender's counter record: the number of its next
// call, and the due time of its index entry (0: none, no call waits).
type outboxState struct {
	Next     uint64
	IndexDue int64
}

func readOutboxState(ctx context.Context, tx *txn.Tx, ref Ref) (outboxState, error) {
	v, found, err := tx.Get(ctx, outboxNext(ref))
	if err != nil || !found {
		return outboxState{Next: 1}, err
	}
	r := newDecoder(v)
	st := outboxState{Next: r.U64(), IndexDue: r.I64()}
	return st, r.Done()
}

func writeOutboxState(ctx context.Context, tx *txn.Tx, ref Ref, st outboxState) error {
	w := newEncoder()
	w.U64(st.Next)
	w.I64(st.IndexDue)
	return tx.Put(ctx, outboxNext(ref), w.B)
}

// writeCalls adds a turn's calls to the sender's outbox.
func writeCalls(ctx context.Context, tx *txn.Tx, ref Ref, calls []OutCall, now int64) error {
	if len(calls) == 0 {
		return nil
	}
	st, err := readOutboxState(ctx, tx, ref)
	if err != nil {
		return err
	}
	for _, c := range calls {
		if c.To.Type == "" {
			return fmt.Errorf("actor %s: a call with no target type", ref)
		}
		rec := outboxRecord{To: c.To, Method: c.Method, Tag: c.Tag, Payload: c.Payload}
		if err := tx.Put(ctx, outboxKey(ref, st.Next), rec.encode()); err != nil {
			return err
		}
		st.Next++
	}
	if st.IndexDue == 0 {
		st.IndexDue = now
		if err := tx.Put(ctx, dueKey(now, ref, outboxName), []byte{1}); err != nil {
			return err
		}
	}
	return writeOutboxState(ctx, tx, ref, st)
}

// readOutbox reads the sender's call seq, waiting for its answer.
func readOutbox(ctx context.Context, tx *txn.Tx, ref Ref, seq uint64) (outboxRecord, bool, error) {
	v, found, err := tx.Get(ctx, outboxKey(ref, seq))
	if err != nil || !found {
		return outboxRecord{}, false, err
	}
	rec, err := decodeOutboxRecord(v)
	return rec, err == nil, err
}

// settleOutboxIndex drops the sender's index entry if no call waits.
func settleOutboxIndex(ctx context.Context, tx *txn.Tx, ref Ref) error {
	start, end := outboxSpan(ref)
	kvs, err := tx.Scan(ctx, start, end, 1)
	if err != nil || len(kvs) > 0 {
		return err
	}
	st, err := readOutboxState(ctx, tx, ref)
	if err != nil || st.IndexDue == 0 {
		return err
	}
	if err := tx.Delete(ctx, dueKey(st.IndexDue, ref, outboxName)); err != nil {
		return err
	}
	st.IndexDue = 0
	return writeOutboxState(ctx, tx, ref, st)
}

// senderID is the caller identity under which an actor's calls are
// numbered.
func senderID(ref Ref) uint64 {
	f := fnv.New64a()
	f.Write(nameKey(ref))
	return max(f.Sum64(), 1)
}

// firstWaiting reads the sender's first call that waits for an answer.
func (h *Host) firstWaiting(ctx context.Context, sender Ref) (seq uint64, rec outboxRecord, found bool, err error) {
	err = h.withDB(ctx, func(tx *txn.Tx) error {
		found = false
		start, end := outboxSpan(sender)
		kvs, err := tx.Scan(ctx, start, end, 1)
		if err != nil || len(kvs) == 0 {
			return err
		}
		k := kvs[0].Key
		if len(k) < 8 {
			return errMalformed
		}
		seq = binary.BigEndian.Uint64(k[len(k)-8:])
		rec, err = decodeOutboxRecord(kvs[0].Value)
		found = err == nil
		return err
	})
	return seq, rec, found, err
}

// deliverOutbox delivers the sender's waiting calls in order, and their
// answers back to it, until one's outcome is unknown (the next scan
// sends it again, under the same number) or none waits.
func (h *Host) deliverOutbox(ctx context.Context, cl *Client, sender Ref) {
	for {
		seq, rec, found, err := h.firstWaiting(ctx, sender)
		if err != nil || !found {
			return
		}
		reply, err := cl.CallAs(ctx, rec.To, rec.Method, rec.Payload, senderID(sender), seq)
		if err == nil && h.replyLost() {
			err = errReplyLost
		}
		answer := request{Ref: sender, Outbox: seq, Payload: reply}
		var me *MethodError
		switch {
		case err == nil:
		case errors.As(err, &me) || errors.Is(err, ErrOverloaded) || errors.Is(err, ErrUnknownType) || errors.Is(err, ErrStaleRequest):
			answer.Refused, answer.Payload = true, []byte(err.Error())
		case mutation.On(MutUnsureCallFailed):
			answer.Refused, answer.Payload = true, []byte(err.Error())
		default:
			return // unknown: the next scan sends it again
		}
		if h.answerFails() {
			return // as if the answer turn failed: the next scan sends the call again
		}
		if _, err := cl.send(ctx, sender, "answer", answer); err != nil {
			var me *MethodError
			if !errors.As(err, &me) { // the sender's own refusal still took the answer
				return
			}
		}
	}
}

// kick starts delivering the sender's waiting calls on a task of their
// own, unless this host is at it already: right after a turn that made
// calls commits, and from the scans for senders whose calls were left
// waiting (their host died, or a delivery's outcome was unknown).
func (h *Host) kick(sender Ref) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.delivering[sender] {
		return
	}
	h.delivering[sender] = true
	h.rt.Go("actor outbox "+sender.String(), func(ctx context.Context) {
		defer func() {
			h.mu.Lock()
			delete(h.delivering, sender)
			h.mu.Unlock()
		}()
		cl, err := h.clients.Take(ctx)
		if err != nil {
			return
		}
		defer h.clients.Put(cl)
		dctx, cancel := h.rt.WithTimeout(ctx, 4*h.opts.AttemptTimeout)
		defer cancel()
		h.deliverOutbox(dctx, cl, sender)
	})
}
