package actor

import (
	"errors"
	"time"
)

// Perturbations (FoundationDB's BUGGIFY): under the simulator only
// (kernel.Runtime.Buggify is false in production), a host takes a rare
// path that a real bug needed a lucky seed to reach, so that the
// simulator reaches it by design (with the planted bug it exposes:
// mutation.go).

// perturbations is a host's state for them (guarded by Host.mu).
type perturbations struct {
	// answersFailUntil (monotonic): until then the answers this host
	// delivers all fail, once per host (0: not yet), for a little
	// longer than RequestTTL, so that the outboxes deliver their calls
	// again and again past the callees' records' TTL. Sagas seed 244
	// reached that through a saga whose answer turn kept aborting: a
	// callee whose record of the call expired under the copies ran it
	// twice (planted requests-not-touched). Every host delivers every
	// sender's calls (the scans), so one host failing one sender's
	// answers would be covered by the others.
	answersFailUntil time.Duration
}

// answerFails reports whether the answers this host delivers fail now:
// for RequestTTL and a quarter once the perturbation fires, once per host.
func (h *Host) answerFails() bool {
	now := h.rt.Monotonic()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.perturb
	switch {
	case now < p.answersFailUntil:
		return true
	case p.answersFailUntil != 0 || !h.rt.Buggify("actor.answers-fail"):
		return false
	}
	p.answersFailUntil = now + h.opts.RequestTTL*5/4
	return true
}

// errReplyLost is a delivered call's outcome when replyLost fires.
var errReplyLost = errors.New("actor: buggify: the call ran, and its reply was lost")

// replyLost reports whether a call an outbox delivered, which ran, is to
// be taken as if its reply had been lost on the way back: its outcome is
// then unknown to the sender, which must send it again (the callee's
// record of the call answers the copy) and never take it for refused.
// Calls whose outcome is unknown came only from timeouts under faults,
// so rarely that after a change of timing 300 seeds of the sagas
// scenario no longer met one with unsure-call-failed planted (2026-12-07).
func (h *Host) replyLost() bool { return h.rt.Buggify("actor.call-reply-lost") }
