package txn

import (
	"bytes"
	"slices"
	"sync"

	"github.com/orbitkernel/orbit/storage"
)

// Settling is a node's finalized-transaction cache (docs/txn.md, step 5,
// "Asynchronous resolution"): the commits of the node's DBs whose intents
// their resolver tasks have not settled yet, by intent key. Every request
// of those DBs carries the outcomes of the ones with an intent on the
// keys it reads or writes (command.finalized), so that whichever DB runs
// a node's next transaction on those keys (the pooled DBs of an actor
// host, of the SQL engine) takes the intents as resolved instead of
// pushing their records. CockroachDB keeps this cache at its
// leaseholders; here the coordinators' node knows first, and the
// leaseholders learn it with each request.
//
// Safe for use by every task of the node. Its size is bounded by the
// DBs' Options.PendingResolutions each (and maxLaterKeys intents each).
type Settling struct {
	mu    sync.Mutex
	byKey map[string][]*resolution
}

// NewSettling returns an empty cache, for the DBs of one node to share
// (Options.Settling).
func NewSettling() *Settling { return &Settling{byKey: map[string][]*resolution{}} }

// add notes r, whose intents on r.keys are to be resolved.
func (s *Settling) add(r *resolution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range r.keys {
		s.byKey[string(k)] = append(s.byKey[string(k)], r)
	}
}

// remove forgets r, settled (or given up: whoever meets what it left
// settles it from the record).
func (s *Settling) remove(r *resolution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range r.keys {
		left := s.byKey[string(k)][:0]
		for _, o := range s.byKey[string(k)] {
			if o != r {
				left = append(left, o)
			}
		}
		if len(left) == 0 {
			delete(s.byKey, string(k))
		} else {
			s.byKey[string(k)] = left
		}
	}
}

// finalizedFor are the outcomes c must carry: those of the settling
// commits with an intent on a key c names (c.key, c.keys) or, for a scan,
// in [c.key, c.end).
func (s *Settling) finalizedFor(c *command) []storage.FinalizedTxn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byKey) == 0 {
		return nil
	}
	var out []storage.FinalizedTxn
	seen := func(r *resolution) bool {
		for _, f := range out {
			if f.Txn.ID == r.meta.ID {
				return true
			}
		}
		return false
	}
	note := func(rs []*resolution) {
		for _, r := range rs {
			if !seen(r) {
				out = append(out, storage.FinalizedTxn{Txn: r.meta, Commit: r.commit, TS: r.ts})
			}
		}
	}
	if c.op == opScan || c.op == opChanges {
		for k, rs := range s.byKey {
			if bytes.Compare([]byte(k), c.key) >= 0 && bytes.Compare([]byte(k), c.end) < 0 {
				note(rs)
			}
		}
	} else {
		note(s.byKey[string(c.key)])
		for _, k := range c.keys {
			note(s.byKey[string(k)])
		}
	}
	// In one order whatever the map's: a command's bytes are the same
	// in every run of a seed.
	slices.SortFunc(out, func(a, b storage.FinalizedTxn) int { return bytes.Compare(a.Txn.ID[:], b.Txn.ID[:]) })
	return out
}
