package txn

import (
	"fmt"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// A transaction record is the single point of decision about its
// transaction (docs/txn.md, step 4): kept with its anchor key (its first
// write's) as a run-local record, so that it moves with that key through
// splits and merges, and changed only by compare-and-set at the anchor's
// leaseholder. Committed and aborted are final.

type status byte

const (
	statusNone status = iota // no record
	statusPending
	statusCommitted
	statusAborted
)

func (s status) String() string {
	return [...]string{"none", "pending", "committed", "aborted"}[min(int(s), 3)]
}

type record struct {
	status status
	// ts is the commit timestamp once committed.
	ts hlc.Timestamp
	// start is the transaction's age (wound–wait: the older wins);
	// heartbeat, the anchor leaseholder's clock when the coordinator
	// last showed it was alive.
	start, heartbeat hlc.Timestamp
	// keys are the intents a finalized transaction left, for whoever
	// resolves them; spans (start, end pairs, flat) cover them instead
	// when there are too many (Options.RecordKeyBytes).
	keys, spans [][]byte
	// node is the coordinator's node (0: unknown, a record written
	// before records named it): a push aborts the transaction once that
	// node has been silent for Options.CoordinatorSilence.
	node kernel.NodeID
}

// recordName names a record among its anchor's run-local records.
const recordName = "txn"

// recordKey is where txn id's record lives: with its anchor.
func recordKey(anchor []byte, id [16]byte) []byte {
	return storage.MVCCRunLocalKey(anchor, append([]byte(recordName), id[:]...))
}

// recordID is the transaction a run-local record's name names (false: not
// a transaction record).
func recordID(name []byte) (id [16]byte, ok bool) {
	if len(name) != len(recordName)+len(id) || string(name[:len(recordName)]) != recordName {
		return id, false
	}
	copy(id[:], name[len(recordName):])
	return id, true
}

func (r *record) encode() []byte {
	var e encoder
	e.Byte(byte(r.status))
	e.ts(r.ts)
	e.ts(r.start)
	e.ts(r.heartbeat)
	e.List(r.keys)
	e.List(r.spans)
	e.U64(uint64(r.node))
	return e.B
}

func decodeRecord(b []byte) (*record, error) {
	d := newDecoder(b)
	r := &record{status: status(d.Byte())}
	r.ts, r.start, r.heartbeat = d.ts(), d.ts(), d.ts()
	r.keys = d.List(maxCommandKeys)
	if len(d.B) > 0 { // records written before spans were
		r.spans = d.List(maxCommandKeys)
	}
	if len(d.B) > 0 { // records written before they named the node
		r.node = kernel.NodeID(d.U64())
	}
	if err := d.Done(); err != nil || r.status < statusPending || r.status > statusAborted || len(r.spans)%2 != 0 {
		return nil, fmt.Errorf("txn: a corrupt record (%d bytes): %w", len(b), errMalformed)
	}
	return r, nil
}
