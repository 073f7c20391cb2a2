package consensus

import (
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// Clock rate check: leases (lease.go) assume no clock runs faster or slower
// than MaxClockDrift; this is where a node finds out that the assumption
// fails for it, and stops relying on it.
//
// Every pong carries the peer's monotonic clock as it answered, and the
// pinger knows its own readings when it sent the ping and got the pong. The
// peer's reading corresponds to some instant in between: the midpoint is
// off by at most half the round trip. Two such samples rateWindow apart
// give the ratio of the peer's clock rate to ours, to within the two half
// round trips over the span. What a lease needs is that no voter's clock
// runs faster, against the leader's, than (1+MaxClockDrift)/(1-MaxClockDrift):
// a leader that measures a voter's ratio beyond that for certain (the
// estimate less its error bound) serves no leased reads of the ranges that
// voter votes in, until a later window measures it within the bound for
// certain (the estimate plus its error bound). It logs each change, and
// Store.ClockRateFenced counts the peers concerned
// (orbit_clock_rate_fenced_peers).
//
// A window whose error bound straddles the limit says neither: the
// window grows, keeping its anchor, until the round trips are small
// against its span, and the verdict stays what it was meanwhile. Slow,
// jittery links call for this: with round trips of 240–560 ms (the Jepsen
// slow-leader fault), a 2 s window's bound alone was ±0.25, and every
// such fault fenced its node's peers, as if their clocks ran 10–20% fast,
// and turned the other nodes' leased reads into ReadIndex rounds for
// seconds. A window that reaches rateMaxWindow undecided fences: a link
// that slow leaves nothing to stand on.
//
// This catches a clock that went bad a window or two after it did (more,
// when the round trips are long against the window); in between, leases
// are exposed, as they are in every system that checks its clock bound by
// measurement (CockroachDB's offset check among them).
const (
	rateWindow = 2 * time.Second
	// rateMaxWindow is the longest a window grows while undecided.
	rateMaxWindow = 10 * rateWindow
	// rateFresh: a measurement older than this says nothing any more (the
	// peer stopped answering; its next pongs start a new window).
	rateFresh = 3 * rateWindow
)

// rateSample is one pong: our monotonic clock halfway between ping and
// pong, the peer's as it answered, and the round trip.
type rateSample struct {
	mid, peer, rtt time.Duration
}

// rateTrack measures one peer's clock rate against this node's.
type rateTrack struct {
	anchor rateSample
	// last is when the last pong came (our monotonic clock).
	last time.Duration
	// faster is the upper bound of the peer's rate over ours measured by
	// the last decided window.
	faster float64
	// fenced is the last decided window's verdict: the peer's clock runs
	// too fast for leases (for certain, or still undecided at
	// rateMaxWindow).
	fenced bool
}

// maxRateRatio is how much faster than a leader's clock a voter's may run
// for the leader's lease to hold.
func (o *Options) maxRateRatio() float64 {
	return (1 + o.MaxClockDrift) / (1 - o.MaxClockDrift)
}

// noteRate takes a pong from peer: the ping left at sent, the pong came at
// now (both our monotonic clock), and says the peer's clock read peerMono.
func (s *Store) noteRate(peer kernel.NodeID, sent, peerMono, now time.Duration) {
	smp := rateSample{mid: sent + (now-sent)/2, peer: peerMono, rtt: now - sent}
	tr := s.health.rates[peer]
	if tr == nil {
		tr = &rateTrack{}
		s.health.rates[peer] = tr
	}
	silent := now-tr.last > rateFresh
	tr.last = now
	if tr.anchor.mid == 0 || silent || smp.peer <= tr.anchor.peer {
		// A first sample, one after a long silence, or a peer that
		// restarted (its monotonic clock began again): a new window.
		tr.anchor = smp
		return
	}
	span := smp.mid - tr.anchor.mid
	if span < rateWindow {
		// Early in the window, a tighter sample is the better anchor.
		if smp.rtt < tr.anchor.rtt && span < rateWindow/4 {
			tr.anchor = smp
		}
		return
	}
	ratio := float64(smp.peer-tr.anchor.peer) / float64(span)
	bound := float64(smp.rtt+tr.anchor.rtt) / 2 / float64(span)
	limit := s.opts.maxRateRatio()
	fenced := ratio-bound > limit
	if !fenced && ratio+bound > limit && span < rateMaxWindow {
		return // undecided: the window grows
	}
	if ratio+bound > limit {
		fenced = true // undecided at the longest window
	}
	tr.faster, tr.anchor = ratio+bound, smp
	if fenced != tr.fenced {
		tr.fenced = fenced
		if fenced {
			s.rt.Logger().Warn(fmt.Sprintf("consensus: node %d's clock runs up to %.4f× this node's, beyond the %.4f× leases allow (MaxClockDrift %v): no leased reads of the ranges it votes in; every read takes a ReadIndex round until it is back within bounds",
				peer, tr.faster, s.opts.maxRateRatio(), s.opts.MaxClockDrift), "peer", uint64(peer))
		} else {
			s.rt.Logger().Info(fmt.Sprintf("consensus: node %d's clock rate is back within bounds (up to %.4f× this node's); leased reads resume", peer, tr.faster), "peer", uint64(peer))
		}
	}
	s.publishFenced()
}

// rateFenced reports whether the last verdict on peer's clock, while the
// peer still answers, is that it runs too fast for this node's leases.
func (s *Store) rateFenced(peer kernel.NodeID) bool {
	tr := s.health.rates[peer]
	return tr != nil && tr.fenced && s.rt.Monotonic()-tr.last < rateFresh
}

// votersRateOK reports whether no other voter of r is fenced. It runs on
// every leased read: with no peer fenced (publishFenced counts them as a
// measurement fences one) it looks at nothing else.
func (s *Store) votersRateOK(r *replica) bool {
	if s.offsetFenced.Load() {
		return false // this node's own clock is fenced (clockoffset.go)
	}
	if s.fencedPeers.Load() == 0 {
		return true
	}
	for _, v := range members(r.log.ConfState()) {
		if n := nodeOf(v); n != s.rt.NodeID() && s.rateFenced(n) {
			return false
		}
	}
	return true
}

// publishFenced counts the fenced peers for ClockRateFenced.
func (s *Store) publishFenced() {
	n := 0
	for id := range s.health.rates {
		if s.rateFenced(id) {
			n++
		}
	}
	s.fencedPeers.Store(int64(n))
}

// ClockRateFenced is how many peers this node last measured with a clock
// running too fast against its own for its leases: while it is above zero,
// the ranges those peers vote in take a ReadIndex round for every read
// here. Safe from any goroutine.
func (s *Store) ClockRateFenced() int { return int(s.fencedPeers.Load()) }
