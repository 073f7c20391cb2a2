package actor

import (
	"context"
	"encoding/binary"

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
	b := append([]byte(nil), keyPrefix...)
	b = binary.AppendUvarint(b, uint64(len(r.Type)))
	b = append(b, r.Type...)
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	return append(b, r.Key...)
}

func dirKey(r Ref) []byte   { return append(nameKey(r), 'd') }
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

func (e dirEntry) encode() []byte {
	b := []byte{recordVersion}
	b = binary.AppendUvarint(b, uint64(e.Node))
	b = binary.AppendUvarint(b, e.Epoch)
	return binary.AppendVarint(b, e.Expiry)
}

func decodeDirEntry(b []byte) (dirEntry, error) {
	r := reader{b: b}
	r.version()
	e := dirEntry{Node: kernel.NodeID(r.uvarint()), Epoch: r.uvarint(), Expiry: r.varint()}
	return e, r.done()
}

// stateRecord is an actor's durable state: the epoch of the activation
// that wrote it, its version (one more per state change) and the state.
type stateRecord struct {
	Epoch, Version uint64
	State          []byte
}

func (s stateRecord) encode() []byte {
	b := []byte{recordVersion}
	b = binary.AppendUvarint(b, s.Epoch)
	b = binary.AppendUvarint(b, s.Version)
	if s.State == nil {
		return append(b, 0)
	}
	return append(append(b, 1), s.State...)
}

func decodeStateRecord(b []byte) (stateRecord, error) {
	r := reader{b: b}
	r.version()
	s := stateRecord{Epoch: r.uvarint(), Version: r.uvarint()}
	if r.byte() == 1 {
		s.State = r.rest()
	}
	return s, r.done()
}

// lastRequest is the last state-changing request of one caller that an
// actor ran, and its reply.
type lastRequest struct {
	Seq   uint64
	Reply []byte
}

func (l lastRequest) encode() []byte {
	b := binary.AppendUvarint([]byte{recordVersion}, l.Seq)
	return append(b, l.Reply...)
}

func decodeLastRequest(b []byte) (lastRequest, error) {
	r := reader{b: b}
	r.version()
	l := lastRequest{Seq: r.uvarint()}
	l.Reply = r.rest()
	return l, r.done()
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
	Ref     Ref
	Method  string
	Client  uint64 // the calling client's identity
	Seq     uint64 // its number for this call, increasing per client
	Payload []byte
}

func (q request) encode() []byte {
	b := []byte{recordVersion}
	for _, s := range []string{q.Ref.Type, q.Ref.Key, q.Method} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, q.Client)
	b = binary.AppendUvarint(b, q.Seq)
	return append(b, q.Payload...)
}

func decodeRequest(b []byte) (request, error) {
	r := reader{b: b}
	r.version()
	q := request{Ref: Ref{Type: r.str(), Key: r.str()}, Method: r.str(), Client: r.uvarint(), Seq: r.uvarint()}
	q.Payload = r.rest()
	return q, r.done()
}

// reader decodes the encodings above; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err, r.b = errMalformed, nil }

func (r *reader) version() {
	if r.byte() != recordVersion {
		r.fail()
	}
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, w := binary.Uvarint(r.b)
	if w <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[w:]
	return v
}

func (r *reader) varint() int64 {
	v, w := binary.Varint(r.b)
	if w <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[w:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) rest() []byte {
	b := append([]byte{}, r.b...)
	r.b = nil
	return b
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		return errMalformed
	}
	return r.err
}
