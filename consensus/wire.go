package consensus

import (
	"time"

	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// errMalformed marks bytes that do not decode; the message is dropped (a
// request gets an error reply).
var errMalformed = errors.New("consensus: malformed message")

// Raft messages travel between nodes in batches: every message one Ready
// cycle produced for a node, whatever its range, goes in one network
// message. Format: count (uvarint), then per message: range ID (uvarint),
// length (uvarint), raftpb.Message bytes.
func encodeRaftBatch(msgs []outMsg) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for i := range msgs {
		data, err := msgs[i].m.Marshal()
		if err != nil {
			panic(fmt.Sprintf("consensus: marshal raft message: %v", err)) // a bug: our own struct
		}
		b = binary.AppendUvarint(b, uint64(msgs[i].id))
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	return b
}

func decodeRaftBatch(b []byte, visit func(storage.RangeID, raftpb.Message)) error {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return errMalformed
	}
	b = b[w:]
	for range n {
		id, w := binary.Uvarint(b)
		if w <= 0 {
			return errMalformed
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < size {
			return errMalformed
		}
		var m raftpb.Message
		if err := m.Unmarshal(b[w : w+int(size)]); err != nil {
			return errMalformed
		}
		b = b[w+int(size):]
		visit(storage.RangeID(id), m)
	}
	return nil
}

// Op is a key-value operation.
type Op uint8

const (
	OpGet Op = iota + 1
	OpPut
	OpDelete
	OpCAS  // set Value if the current value is Expect ("" matches a missing key)
	OpScan // read up to Limit pairs in [Key, End) within Key's range
	// Membership (membership.go): make the node in Value (8 bytes, big
	// endian) a voter of Key's range, or no member of it. Each call takes
	// one step; OK reports that the target holds.
	OpAddReplica
	OpRemoveReplica
	// Commands for a StateMachine (statemachine.go): Value is the command,
	// Key routes it (any key of its range); the reply comes back in Value.
	OpCommand // a write, through the log
	OpQuery   // a read, at a ReadIndex
	// OpRemoveLiveReplica is OpRemoveReplica refused when the voters left
	// would not hold a quorum of replicas the leader heard from recently
	// (etcd's strict reconfiguration check): what an operator's removal
	// uses.
	OpRemoveLiveReplica
	// OpSplit splits the range holding Key at Key (split.go): Value is the
	// new right-hand range's ID (8 bytes, big endian, Client.Split
	// allocates it). OK once the range holding Key starts at Key.
	OpSplit
	// OpBatch applies Value, a batch of puts, deletes and compare-and-sets
	// on keys of Key's range, atomically (batch.go); the reply's Value
	// holds each one's outcome.
	OpBatch
	// OpTransferLeader hands the leadership (and with it the lease) of
	// Key's range to the node in Value (8 bytes, big endian), once that
	// node's replica is a voter with the whole log (membership.go). Each
	// call takes one step; OK once the node leads the range.
	OpTransferLeader
	// OpFreeze freezes the range starting at Key, the first step of merging
	// it into the range on its left (merge.go): OK once frozen, with the
	// range's final state in Value (a merge trigger).
	OpFreeze
	// OpMerge proposes the merge trigger in Value to the range ending at
	// Key, the right-hand range's start (merge.go). OK once a range covers
	// Key.
	OpMerge
	// OpMetaUpdate publishes the range descriptor in Value (a MetaEntry)
	// to the meta range (meta.go); Key is the entry's key. OK when it
	// wrote (nothing newer overlapped it).
	OpMetaUpdate
)

// isRead reports whether the operation only reads (served at a ReadIndex,
// never proposed).
func (o Op) isRead() bool { return o == OpGet || o == OpScan || o == OpQuery }

func (o Op) isMembership() bool {
	return o == OpAddReplica || o == OpRemoveReplica || o == OpRemoveLiveReplica
}

// isAdmin reports whether the operation changes the range itself
// (membership, split): refusals of these come back as errors, not retries
// of a write.
func (o Op) isAdmin() bool {
	return o.isMembership() || o == OpSplit || o == OpTransferLeader || o == OpFreeze || o == OpMerge
}

// MaxScanLimit bounds one scan's page; a larger Limit is cut to it.
const MaxScanLimit = 1000

// Request is one key-value operation from a client. Client and Seq identify
// it: a retried write carries the same pair and is applied at most once.
type Request struct {
	Client, Seq uint64
	Op          Op
	Key         []byte
	Value       []byte
	Expect      []byte
	// OpScan: the end of the span (nil: no bound) and the page size.
	End   []byte
	Limit int
	// OpCommand: the leader's stamp (statemachine.go), set when it
	// proposes the command.
	NowMillis int64
	Rand      uint64
	// term is the evaluating leader's term (CommandMeta.Term); it stays
	// on the leader.
	term uint64
	// Range and Generation are the range the client routed the request to,
	// as its range cache knows it (0: route by key alone). A node refuses
	// a request whose key its replica of Range no longer holds
	// (RangeMismatchError).
	Range      storage.RangeID
	Generation uint64
	// View, on OpScan: PinView asks for a pinned scan; another nonzero
	// value names the pinned view to read (pinned.go).
	View uint64
	// parkedUntil is when a query parked here (park.go) must be answered
	// at the latest (Runtime.Monotonic; 0: never parked). It stays on the
	// leader.
	parkedUntil time.Duration
	// parkedID is the query's place among the parked (park.go; 0: never
	// parked), kept when it parks again.
	parkedID uint64
}

// Response is the outcome of a Request.
type Response struct {
	Value []byte // OpGet: the value; nil when missing
	Found bool   // OpGet: whether the key exists
	OK    bool   // OpCAS: whether it swapped
	// OpScan: the pairs read, in key order, and where to resume (nil: the
	// span is exhausted). A scan stops at its range's end; Resume is then
	// that end, the next range's start.
	KVs    []storage.KeyValue
	Resume []byte
	// Range is the range that served the request, as it was then: a
	// caller walks the keyspace range by range by continuing at its End
	// (Client.Walk), and the client's range cache learns it. Zero from a
	// server older than this field, and for membership and split steps.
	Range Descriptor
	// View names the pinned view that holds the rest of a pinned scan
	// (0: none; pinned.go).
	View uint64
	// node is the node that answered (set by Client.Do).
	node kernel.NodeID
	// park is a query's request to wait for a write (park.go), on the
	// leader between readFrom and readLocal; never sent.
	park *WaitForWrite
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendEnd appends a span's end: a flag (0: none, the end of the
// keyspace; 1: a key, possibly empty) and the bytes.
func appendEnd(b, end []byte) []byte {
	if end == nil {
		return appendBytes(append(b, 0), nil)
	}
	return appendBytes(append(b, 1), end)
}

// readEnd reads what appendEnd wrote: nil for none, a copy otherwise.
func readEnd(b []byte) (end, rest []byte, err error) {
	if len(b) < 1 {
		return nil, nil, errMalformed
	}
	has := b[0] == 1
	if end, rest, err = readBytes(b[1:]); err != nil || !has {
		return nil, rest, err
	}
	return append([]byte{}, end...), rest, nil
}

func readBytes(b []byte) (v, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return nil, nil, errMalformed
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// Encoding: client(8) seq(8) op(1) key value expect end-flag(1) end limit
// now(8) rand(8) range(8) generation(8) [view(8)]. Requests written
// before 2026-12-03 end after rand (version 1 log entries hold them), and
// still decode, with no range; the view goes only on pinned scans.
func (r Request) encode() []byte {
	// Sized exactly, once: a write's value is most of it, and growing the
	// buffer from nothing cost a SET about 1 KB of garbage.
	size := r.encodedLen()
	b := binary.BigEndian.AppendUint64(make([]byte, 0, size), r.Client)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = append(b, byte(r.Op))
	b = appendBytes(b, r.Key)
	b = appendBytes(b, r.Value)
	b = appendBytes(b, r.Expect)
	b = appendEnd(b, r.End)
	b = binary.AppendUvarint(b, uint64(max(r.Limit, 0)))
	b = binary.BigEndian.AppendUint64(b, uint64(r.NowMillis))
	b = binary.BigEndian.AppendUint64(b, r.Rand)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Range))
	b = binary.BigEndian.AppendUint64(b, r.Generation)
	if r.View != 0 {
		b = binary.BigEndian.AppendUint64(b, r.View)
	}
	return b
}

// encodedLen is len(r.encode()), without encoding it.
func (r Request) encodedLen() int {
	n := 8 + 8 + 1
	for _, f := range [][]byte{r.Key, r.Value, r.Expect} {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	n += 1 + uvarintLen(uint64(len(r.End))) + len(r.End)
	n += uvarintLen(uint64(max(r.Limit, 0))) + 4*8
	if r.View != 0 {
		n += 8
	}
	return n
}

// uvarintLen is the length of x's uvarint encoding.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func decodeRequest(b []byte) (Request, error) {
	if len(b) < 17 {
		return Request{}, errMalformed
	}
	r := Request{Client: binary.BigEndian.Uint64(b), Seq: binary.BigEndian.Uint64(b[8:]), Op: Op(b[16])}
	if r.Op < OpGet || r.Op > OpMetaUpdate {
		return Request{}, errMalformed
	}
	var err error
	b = b[17:]
	for _, f := range []*[]byte{&r.Key, &r.Value, &r.Expect} {
		if *f, b, err = readBytes(b); err != nil {
			return Request{}, err
		}
	}
	if r.End, b, err = readEnd(b); err != nil {
		return Request{}, err
	}
	limit, w := binary.Uvarint(b)
	if rest := len(b) - w; w <= 0 || limit > MaxScanLimit || (rest != 16 && rest != 32 && rest != 40) {
		return Request{}, errMalformed
	}
	r.Limit = int(limit)
	b = b[w:]
	r.NowMillis, r.Rand = int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:])
	if len(b) >= 32 {
		r.Range, r.Generation = storage.RangeID(binary.BigEndian.Uint64(b[16:])), binary.BigEndian.Uint64(b[24:])
	}
	if len(b) == 40 {
		if r.View = binary.BigEndian.Uint64(b[32:]); r.View == 0 || r.Op != OpScan {
			return Request{}, errMalformed
		}
	}
	return r, nil
}

// Encoding: flags(1: found, ok, resume) value, pair count, pairs (key
// value), resume.
func (r Response) encode() []byte {
	var flags byte
	if r.Found {
		flags |= 1
	}
	if r.OK {
		flags |= 2
	}
	if r.Resume != nil {
		flags |= 4
	}
	if r.Range.ID != 0 {
		flags |= 8
	}
	if r.View != 0 {
		flags |= 16
	}
	b := appendBytes([]byte{flags}, r.Value)
	b = binary.AppendUvarint(b, uint64(len(r.KVs)))
	for _, kv := range r.KVs {
		b = appendBytes(b, kv.Key)
		b = appendBytes(b, kv.Value)
	}
	b = appendBytes(b, r.Resume)
	if flags&16 != 0 {
		b = binary.BigEndian.AppendUint64(b, r.View)
	}
	if flags&8 != 0 {
		b = r.Range.appendTo(b)
	}
	return b
}

func decodeResponse(b []byte) (Response, error) {
	if len(b) < 1 {
		return Response{}, errMalformed
	}
	r := Response{Found: b[0]&1 != 0, OK: b[0]&2 != 0}
	hasResume, hasRange, hasView := b[0]&4 != 0, b[0]&8 != 0, b[0]&16 != 0
	value, b, err := readBytes(b[1:])
	if err != nil {
		return Response{}, err
	}
	if r.Found || len(value) > 0 {
		r.Value = append([]byte{}, value...)
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || n > MaxScanLimit {
		return Response{}, errMalformed
	}
	b = b[w:]
	for range n {
		var kv storage.KeyValue
		if kv.Key, b, err = readBytes(b); err != nil {
			return Response{}, err
		}
		if kv.Value, b, err = readBytes(b); err != nil {
			return Response{}, err
		}
		r.KVs = append(r.KVs, storage.KeyValue{Key: append([]byte{}, kv.Key...), Value: append([]byte{}, kv.Value...)})
	}
	resume, b, err := readBytes(b)
	if err != nil {
		return Response{}, err
	}
	if hasResume {
		r.Resume = append([]byte{}, resume...)
	}
	if hasView {
		if len(b) < 8 {
			return Response{}, errMalformed
		}
		r.View, b = binary.BigEndian.Uint64(b), b[8:]
	}
	if hasRange {
		if r.Range, err = decodeDescriptor(b); err != nil {
			return Response{}, err
		}
	}
	return r, nil
}

// A proposal is what goes into the Raft log, in a versioned envelope:
// version(1) proposal-id(8), then what the version says. The proposal ID
// lets the proposing node find who waits for it. A replica that meets an
// entry of a version this binary does not read stops with ErrEntryVersion
// rather than guess at its bytes (docs/consensus.md, "The log entry
// envelope").
//
//   - Version 2 (what this binary writes): the effects the leader
//     evaluated the write to (evaluate.go): prev(8), the ID of the effects
//     entry it was evaluated after; now(8), the leader's stamp (for the
//     Applied hook); client(8), whose client-table record in the effects
//     holds the reply; flags(1); the effects (storage.Batch's encoding,
//     length-prefixed); and, with flag 1, the request itself (only the
//     follower-reevaluates planted bug writes it).
//   - Version 1 (written before 2026-12-02; still read, so that a data
//     directory's log replays): the client's request, stamped by the
//     leader, which every replica executes as it applies.
//   - Kind 3 (entrySplit, from 2026-12-03): a split trigger (split.go):
//     generation(8), the left-hand range's generation it was proposed
//     against; the new range's ID(8); the split key. A binary that
//     predates it stops at it with ErrEntryVersion, as it must: applying
//     a log without its splits would diverge.
//   - Kind 4 (entryFreeze, from 2026-12-03): a merge's freeze of the
//     right-hand range (merge.go): generation(8), the range's generation
//     it was proposed against.
//   - Kind 5 (entryMerge, from 2026-12-03): a merge trigger, in the
//     left-hand range's log: the right-hand range's descriptor, clock(8),
//     then its user data and its client-table entries, each a count
//     (uvarint) of length-prefixed key-value pairs.
//   - Kind 6 (entryStickySplit, from 2026-12-03): a split trigger as kind
//     3, asked for by an operator: automatic merges leave it alone.
//   - Kind 7 (entryHandover, from 2026-12-06): a leader's hand-over
//     summaries (handover.go): (keyspace name, summary) pairs, each
//     length-prefixed; none at all: the leader takes its hand-over back.
//   - Kind 8 (entryMergeSummaries, from 2026-12-06): a merge trigger as
//     kind 5 followed by the right-hand range's summaries (a count, then
//     kind 7's pairs; handover.go), which the left-hand range's leader
//     takes over.
//
// proposalOverhead bounds what a proposal adds to its effects: the
// envelope.
const proposalOverhead = 64

// entryVersion is the envelope version this binary writes. Bump it with
// any change to what follows the version byte, and keep reading the old
// one while a cluster may still hold it.
const (
	entryVersion        = 2
	entryVersionRequest = 1
	entrySplit          = 3
	entryFreeze         = 4
	entryMerge          = 5
	entryStickySplit    = 6
	entryHandover       = 7
	entryMergeSummaries = 8
)

// changesRange reports whether an entry of kind k changes its range's
// span or makes it final (a split, a freeze, a merge): a leader withdraws
// its lease view ahead of such an entry (leasedread.go). Every new kind
// of that sort goes here (a kind-8 merge missing from this list kept the
// lease view through the merge and served reads with the old descriptor:
// TestServeSplitsRanges, 2026-12-06).
func changesRange(k byte) bool {
	switch k {
	case entrySplit, entryStickySplit, entryFreeze, entryMerge, entryMergeSummaries:
		return true
	}
	return false
}

// ErrEntryVersion is the reason a replica stops at a log entry whose
// envelope version this binary does not read.
var ErrEntryVersion = errors.New("consensus: log entry of an unknown format version")

// proposal is a decoded log entry: effects (version 2), a request to
// execute at apply (version 1), a split trigger (kind 3), a freeze (kind 4)
// or a merge trigger (kind 5).
type proposal struct {
	id       uint64
	effects  *evaluated
	split    *splitTrigger
	freeze   *uint64       // the generation a freeze was proposed against
	merge    *mergeTrigger // a merge trigger (merge.go)
	handover *handover     // a hand-over's summaries, or its taking back (handover.go)
	req      Request       // version 1 only
}

// splitTrigger is a split as its leader proposed it.
type splitTrigger struct {
	generation uint64          // the left-hand range's, when proposed
	newID      storage.RangeID // the right-hand range's
	key        []byte          // where the right-hand range starts
	// sticky: asked for by an operator, not by size: automatic merges
	// leave the split alone (kind 6; merge.go).
	sticky bool
}

func encodeSplit(id uint64, t splitTrigger) []byte {
	kind := byte(entrySplit)
	if t.sticky {
		kind = entryStickySplit
	}
	b := binary.BigEndian.AppendUint64([]byte{kind}, id)
	b = binary.BigEndian.AppendUint64(b, t.generation)
	b = binary.BigEndian.AppendUint64(b, uint64(t.newID))
	return appendBytes(b, t.key)
}

// encodeFreeze writes a freeze (kind 4): the range's generation when
// proposed.
func encodeFreeze(id uint64, generation uint64) []byte {
	b := binary.BigEndian.AppendUint64([]byte{entryFreeze}, id)
	return binary.BigEndian.AppendUint64(b, generation)
}

// encodeMerge writes a merge trigger (kind 5): the right-hand range's
// final state, as mergeTrigger.encode wrote it.
func encodeMerge(id uint64, m *mergeTrigger) []byte {
	kind := byte(entryMerge)
	if len(m.summaries) > 0 {
		kind = entryMergeSummaries
	}
	b := binary.BigEndian.AppendUint64([]byte{kind}, id)
	return append(b, m.encode()...)
}

// evaluated is a write as its leader evaluated it.
type evaluated struct {
	prev      uint64   // the effects entry it was evaluated after (0: none)
	nowMillis int64    // the leader's stamp
	client    uint64   // whose client-table record has the reply
	writes    []byte   // storage effects
	req       *Request // MutFollowerReevaluates only
}

const flagCarriesRequest = 1

func encodeEffects(id uint64, ev evaluated) []byte {
	var req []byte
	if ev.req != nil {
		req = ev.req.encode()
	}
	size := 1 + 4*8 + 1 + 2*binary.MaxVarintLen64 + len(ev.writes) + len(req)
	b := binary.BigEndian.AppendUint64(append(make([]byte, 0, size), entryVersion), id)
	b = binary.BigEndian.AppendUint64(b, ev.prev)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.nowMillis))
	b = binary.BigEndian.AppendUint64(b, ev.client)
	var flags byte
	if ev.req != nil {
		flags |= flagCarriesRequest
	}
	b = append(b, flags)
	b = appendBytes(b, ev.writes)
	if ev.req != nil {
		b = appendBytes(b, req)
	}
	return b
}

// encodeRequestProposal writes a version 1 entry (tests of the old
// format's replay).
func encodeRequestProposal(id uint64, r Request) []byte {
	b := binary.BigEndian.AppendUint64([]byte{entryVersionRequest}, id)
	return append(b, r.encode()...)
}

func decodeProposal(b []byte) (proposal, error) {
	if len(b) < 9 {
		return proposal{}, errMalformed
	}
	p := proposal{id: binary.BigEndian.Uint64(b[1:])}
	switch b[0] {
	case entryVersionRequest:
		var err error
		p.req, err = decodeRequest(b[9:])
		return p, err
	case entrySplit, entryStickySplit:
		if len(b) < 25 {
			return proposal{}, errMalformed
		}
		t := &splitTrigger{generation: binary.BigEndian.Uint64(b[9:]), newID: storage.RangeID(binary.BigEndian.Uint64(b[17:])),
			sticky: b[0] == entryStickySplit}
		key, rest, err := readBytes(b[25:])
		if err != nil || len(rest) != 0 || len(key) == 0 || t.newID == 0 {
			return proposal{}, errMalformed
		}
		t.key = append([]byte{}, key...)
		p.split = t
		return p, nil
	case entryFreeze:
		if len(b) != 17 {
			return proposal{}, errMalformed
		}
		gen := binary.BigEndian.Uint64(b[9:])
		p.freeze = &gen
		return p, nil
	case entryMerge, entryMergeSummaries:
		var err error
		p.merge, err = decodeMergeTrigger(b[9:])
		if err == nil && (b[0] == entryMergeSummaries) != (len(p.merge.summaries) > 0) {
			err = fmt.Errorf("%w: a kind-%d merge trigger with %d summaries", errMalformed, b[0], len(p.merge.summaries))
		}
		return p, err
	case entryHandover:
		var err error
		p.handover, err = decodeHandover(b[9:])
		return p, err
	case entryVersion:
	default:
		return proposal{}, fmt.Errorf("%w: version %d, and this binary reads versions %d to %d: run the binary that wrote it, or a newer one",
			ErrEntryVersion, b[0], entryVersionRequest, entryMergeSummaries)
	}
	b = b[9:]
	if len(b) < 25 {
		return proposal{}, errMalformed
	}
	ev := &evaluated{prev: binary.BigEndian.Uint64(b), nowMillis: int64(binary.BigEndian.Uint64(b[8:])), client: binary.BigEndian.Uint64(b[16:])}
	flags := b[24]
	var err error
	var rest []byte
	if ev.writes, rest, err = readBytes(b[25:]); err != nil {
		return proposal{}, err
	}
	if flags&flagCarriesRequest != 0 {
		var req []byte
		if req, rest, err = readBytes(rest); err != nil {
			return proposal{}, err
		}
		r, err := decodeRequest(req)
		if err != nil {
			return proposal{}, err
		}
		ev.req = &r
	}
	if len(rest) != 0 {
		return proposal{}, errMalformed
	}
	p.effects = ev
	return p, nil
}
