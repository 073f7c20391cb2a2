package actor

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	"github.com/orbitkernel/orbit/internal/codec"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// An actor's records lie together in the transactional keyspace, under
// "actor/" and its name (type and key, each length-prefixed, so no name is
// a prefix of another's records), so that a turn's reads and writes
// usually fall in one range and commit in one command:
//
//	actor/<type><key>d          the directory entry (dirEntry)
//	actor/<type><key>s          the state (stateRecord)
//	actor/<type><key>c<client>  a caller's last state-changing request (lastRequest)
var keyPrefix = []byte("actor/")

// recordVersion leads every record's encoding; a record of another
// version is refused (errMalformed) rather than misread.
const recordVersion = 1

func nameKey(r Ref) []byte {
	w := codec.Encoder{B: append([]byte(nil), keyPrefix...)}
	w.Str(r.Type)
	w.Str(r.Key)
	return w.B
}

// RecordPrefix is the prefix an actor's records share (its name key) if
// key is one of them, else nil: txn.Options.RowPrefix, so that a split
// never puts an actor's records in two ranges, and its turns commit in
// one phase.
func RecordPrefix(key []byte) []byte {
	if !bytes.HasPrefix(key, keyPrefix) {
		return nil
	}
	d := codec.Decoder{B: key[len(keyPrefix):]}
	d.Str()
	d.Str()
	if d.Err != nil {
		return nil
	}
	return key[:len(key)-len(d.B)]
}

func dirKey(r Ref) []byte { return append(nameKey(r), 'd') }

func reminderKey(r Ref, name string) []byte { return append(append(nameKey(r), 'r'), name...) }

// dueIndex is the index of reminders by due time, which hosts scan:
// dueIndex, the due time (Unix ns, 8 bytes big endian), then the actor's
// type, key and the reminder's name (length-prefixed). Its span
// ("actor-due/") lies apart from the actors' records ("actor/").
var dueIndex = []byte("actor-due/")

func dueKey(due int64, r Ref, name string) []byte {
	w := codec.Encoder{B: binary.BigEndian.AppendUint64(append([]byte(nil), dueIndex...), uint64(due))}
	w.Str(r.Type)
	w.Str(r.Key)
	w.Str(name)
	return w.B
}

// dueEnd is the end of the index's span of reminders due at or before t.
func dueEnd(t int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), dueIndex...), uint64(t)+1)
}

func decodeDueKey(k []byte) (due int64, r Ref, name string, err error) {
	if len(k) < len(dueIndex)+8 || string(k[:len(dueIndex)]) != string(dueIndex) {
		return 0, r, "", errMalformed
	}
	due = int64(binary.BigEndian.Uint64(k[len(dueIndex):]))
	d := codec.Decoder{B: k[len(dueIndex)+8:]}
	r = Ref{Type: d.Str(), Key: d.Str()}
	name = d.Str()
	return due, r, name, d.Done()
}
func stateKey(r Ref) []byte { return append(nameKey(r), 's') }
func requestKey(r Ref, client uint64) []byte {
	return binary.BigEndian.AppendUint64(append(nameKey(r), 'c'), client)
}

// dirEntry says which activation holds an actor: the node, its epoch
// (each activation takes the next one) and until when (the holder's wall
// clock, Unix nanoseconds) no other node may take it over.
type dirEntry struct {
	Node   kernel.NodeID
	Epoch  uint64
	Expiry int64
}

// names says whether the entry (found says whether there is one) names
// node's activation of the given epoch: the fence every write of an
// activation checks.
func (e dirEntry) names(found bool, node kernel.NodeID, epoch uint64) bool {
	return found && e.Node == node && e.Epoch == epoch
}

func (e dirEntry) encode() []byte {
	w := newEncoder()
	w.U64(uint64(e.Node))
	w.U64(e.Epoch)
	w.I64(e.Expiry)
	return w.B
}

func decodeDirEntry(b []byte) (dirEntry, error) {
	r := newDecoder(b)
	e := dirEntry{Node: kernel.NodeID(r.U64()), Epoch: r.U64(), Expiry: r.I64()}
	return e, r.Done()
}

// stateRecord is an actor's durable state: the epoch of the activation
// that wrote it, its version (one more per state change) and the state.
type stateRecord struct {
	Epoch, Version uint64
	State          []byte
}

func (s stateRecord) encode() []byte {
	w := newEncoder()
	w.U64(s.Epoch)
	w.U64(s.Version)
	w.Bool(s.State != nil)
	w.Raw(s.State)
	return w.B
}

func decodeStateRecord(b []byte) (stateRecord, error) {
	r := newDecoder(b)
	s := stateRecord{Epoch: r.U64(), Version: r.U64()}
	if r.Bool() {
		s.State = r.Rest()
	}
	return s, r.Done()
}

// lastRequest is the last state-changing request of one caller that an
// actor ran, and its reply.
type lastRequest struct {
	Seq uint64
	// Refused: the actor refused it, and Reply is the refusal's message.
	Refused bool
	// At is when it was recorded (the host's clock, Unix ns; 0 in a
	// record of the first version, which is never expired).
	At    int64
	Reply []byte
}

// lastRequestVersion leads a lastRequest's encoding: version 2 added At
// (version 1, recordVersion, is still read).
const lastRequestVersion = 2

func (l lastRequest) encode() []byte {
	w := &codec.Encoder{B: []byte{lastRequestVersion}}
	w.U64(l.Seq)
	w.Bool(l.Refused)
	w.I64(l.At)
	w.Raw(l.Reply)
	return w.B
}

func decodeLastRequest(b []byte) (lastRequest, error) {
	r := &codec.Decoder{B: b}
	var l lastRequest
	switch r.Byte() {
	case recordVersion:
		l.Seq, l.Refused = r.U64(), r.Bool()
	case lastRequestVersion:
		l.Seq, l.Refused, l.At = r.U64(), r.Bool(), r.I64()
	default:
		r.Fail()
	}
	l.Reply = r.Rest()
	return l, r.Done()
}

// requestSpan is the span of an actor's callers' last requests.
func requestSpan(r Ref) (start, end []byte) {
	return append(nameKey(r), 'c'), append(nameKey(r), 'c'+1)
}

// reminderRecord is a reminder as stored with its actor.
type reminderRecord struct {
	Due, Period int64 // Unix ns; ns, 0 for once
	Payload     []byte
}

func (m reminderRecord) encode() []byte {
	w := newEncoder()
	w.I64(m.Due)
	w.I64(m.Period)
	w.Raw(m.Payload)
	return w.B
}

func decodeReminderRecord(b []byte) (reminderRecord, error) {
	r := newDecoder(b)
	m := reminderRecord{Due: r.I64(), Period: r.I64()}
	m.Payload = r.Rest()
	return m, r.Done()
}

// outboxKey is an actor's call number seq, waiting for its answer;
// outboxNext holds the number its next call takes.
func outboxKey(r Ref, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(nameKey(r), 'o'), seq)
}
func outboxSpan(r Ref) (start, end []byte) { return append(nameKey(r), 'o'), append(nameKey(r), 'p') }
func outboxNext(r Ref) []byte              { return append(nameKey(r), 'q') }

// outboxName is the due index's name for a sender's pending calls (a
// reminder's name never starts with a 0 byte: setReminders refuses it).
const outboxName = "\x00outbox"

// outboxRecord is a call an actor made and that waits for its answer.
type outboxRecord struct {
	To      Ref
	Method  string
	Tag     string
	Payload []byte
}

func (o outboxRecord) encode() []byte {
	w := newEncoder()
	w.Str(o.To.Type)
	w.Str(o.To.Key)
	w.Str(o.Method)
	w.Str(o.Tag)
	w.Raw(o.Payload)
	return w.B
}

func decodeOutboxRecord(b []byte) (outboxRecord, error) {
	r := newDecoder(b)
	o := outboxRecord{To: Ref{Type: r.Str(), Key: r.Str()}, Method: r.Str(), Tag: r.Str()}
	o.Payload = r.Rest()
	return o, r.Done()
}

// readDir reads an actor's directory entry in tx.
func readDir(ctx context.Context, tx *txn.Tx, ref Ref) (dirEntry, bool, error) {
	v, found, err := tx.Get(ctx, dirKey(ref))
	if err != nil || !found {
		return dirEntry{}, false, err
	}
	e, err := decodeDirEntry(v)
	return e, true, err
}

// request is a call on the wire, client to host.
type request struct {
	Ref    Ref
	Method string
	Client uint64 // the calling client's identity
	Seq    uint64 // its number for this call, increasing per client
	// Reminder and Due name a reminder's firing (Method is ""): it runs
	// only while the reminder is still due at Due.
	Reminder string
	Due      int64
	// Outbox, when not 0, names the sender's call this request answers
	// (Method is ""): Payload is the reply, or Refused says the call was
	// refused with Payload as the reason.
	Outbox  uint64
	Refused bool
	// Budget is how long the caller waits for this attempt's answer
	// (0: no limit). The host drops a call still queued when it runs out
	// (Host.run): the caller has given up on that attempt and will send
	// the call again, and a turn spent on it only delays the calls whose
	// callers still wait. Orleans drops expired messages for the same
	// reason; without it, a host slowed below its callers' attempt
	// timeout spends every turn on abandoned attempts (the simulator's
	// actors seeds 520 and 673: a range applying 80 entries a second,
	// and no call answered for 30 s).
	Budget  time.Duration
	Payload []byte

	// timer names the activation's own timer that is due (never on the
	// wire: timers live with their activation).
	timer string
}

// requestVersion leads a request's encoding: version 2 added Budget
// (version 1, recordVersion, from a node not yet upgraded, is still read,
// with no budget).
const requestVersion = 2

func (q request) encode() []byte {
	w := &codec.Encoder{B: []byte{requestVersion}}
	w.Str(q.Ref.Type)
	w.Str(q.Ref.Key)
	w.Str(q.Method)
	w.U64(q.Client)
	w.U64(q.Seq)
	w.Str(q.Reminder)
	w.I64(q.Due)
	w.U64(q.Outbox)
	w.Bool(q.Refused)
	w.I64(int64(q.Budget))
	w.Raw(q.Payload)
	return w.B
}

func decodeRequest(b []byte) (request, error) {
	r := &codec.Decoder{B: b}
	version := r.Byte()
	if version != recordVersion && version != requestVersion {
		r.Fail()
	}
	q := request{Ref: Ref{Type: r.Str(), Key: r.Str()}, Method: r.Str(), Client: r.U64(), Seq: r.U64(), Reminder: r.Str(), Due: r.I64(), Outbox: r.U64(), Refused: r.Bool()}
	if version == requestVersion {
		q.Budget = time.Duration(r.I64())
	}
	q.Payload = r.Rest()
	return q, r.Done()
}

// newEncoder starts an encoding with the version byte.
func newEncoder() *codec.Encoder { return &codec.Encoder{B: []byte{recordVersion}} }

// newDecoder reads an encoding, failing at once on another version.
func newDecoder(b []byte) *codec.Decoder {
	d := &codec.Decoder{B: b}
	if d.Byte() != recordVersion {
		d.Fail()
	}
	return d
}
