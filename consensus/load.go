package consensus

import (
	"bytes"
	"slices"
	"time"

	"github.com/orbitkernel/orbit/storage"
)

// Load-based splits (Options.SplitQPS), after CockroachDB's load-based
// splitter: a range that serves more requests than one leader should is
// split, so that its halves can be led from different nodes (the
// rebalancers even out leaderships, package cluster).
//
// A leader counts the requests it serves for its range (reads and writes;
// not range operations) over windows of loadWindowTicks, and keeps a
// uniform sample (a reservoir) of their keys. At a window's end, if the
// range served more than SplitQPS a second, the sample's median key is the
// candidate, if at least a quarter of the sampled requests fall on each
// side of it: one hot key cannot be split (its requests all fall on one
// side), and a candidate that would leave nearly all the load on one side
// would only make a range. The splitter task asks the state machine for a
// boundary near the candidate (Redis: a hash slot's start, SplitKeyer) and
// splits there, as for a size split (not sticky: once the load is gone,
// automatic merges may undo it). A range under load counts as warm: no
// automatic merge takes it meanwhile.
const (
	loadWindowTicks = 100 // 2 s at the default tick
	loadSamples     = 32
)

// loadTracker is one leader's count of the current window.
type loadTracker struct {
	count  int
	sample [][]byte
}

// noteLoad counts one request for key served by r's leader (always: the
// counts are what LeaderLoad publishes) and samples its key (only for
// load-based splits).
func (s *Store) noteLoad(r *replica, key []byte) {
	l := &r.load
	l.count++
	if s.opts.SplitQPS <= 0 {
		return
	}
	r.warm = true
	switch {
	case len(l.sample) < loadSamples:
		l.sample = append(l.sample, bytes.Clone(key))
	default:
		if i := s.rt.Rand().IntN(l.count); i < loadSamples {
			l.sample[i] = bytes.Clone(key)
		}
	}
}

// checkLoad runs on the driver every tick; at a window's end it hands the
// splitter the ranges led here that served more than SplitQPS, with their
// candidate split keys, and starts a new window.
func (s *Store) checkLoad() {
	if s.ticks%loadWindowTicks != 0 {
		return
	}
	window := time.Duration(loadWindowTicks) * s.opts.TickInterval
	led := map[storage.RangeID]float64{}
	defer func() { s.leaderLoad.Store(&led) }()
	for _, id := range s.ids {
		r := s.replicas[id]
		l := r.load
		r.load = loadTracker{}
		if r.leading {
			led[id] = float64(l.count) / window.Seconds()
		}
		if s.opts.SplitQPS <= 0 || !r.leading || float64(l.count) <= float64(s.opts.SplitQPS)*window.Seconds() ||
			r.splitKey != nil || r.frozen || r.freezing || s.splitsAsked[id] {
			continue
		}
		key := loadSplitKey(l.sample, r.desc)
		if key == nil {
			continue
		}
		if s.splitter.Send(sizeJob{d: r.desc, at: key}) {
			s.splitsAsked[id] = true
		}
	}
}

// loadSplitKey is the median of the sampled keys if it is strictly inside
// d and at least a quarter of the samples fall on each side of it; nil
// otherwise.
func loadSplitKey(sample [][]byte, d Descriptor) []byte {
	if len(sample) < loadSamples/2 {
		return nil
	}
	keys := slices.Clone(sample)
	slices.SortFunc(keys, bytes.Compare)
	key := keys[len(keys)/2]
	left, _ := slices.BinarySearchFunc(keys, key, bytes.Compare) // samples strictly below key
	if left < len(keys)/4 || len(keys)-left < len(keys)/4 ||
		bytes.Compare(key, d.Start) <= 0 || (d.End != nil && bytes.Compare(key, d.End) >= 0) {
		return nil
	}
	return key
}

// LeaderLoad returns, for each range led here, the requests a second its
// leader served over the last window (2 s): what a rebalancer weighs
// leaderships by. Safe from any task.
func (s *Store) LeaderLoad() map[storage.RangeID]float64 {
	if p := s.leaderLoad.Load(); p != nil {
		return *p
	}
	return nil
}
