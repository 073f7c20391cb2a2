package txn

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// TestCommandsDecodeAsEncoded: a command and a result come back as they
// were sent, and every cut-short or garbled copy is refused (errMalformed),
// never a panic: the machine answers such a command codeMalformed.
func TestCommandsDecodeAsEncoded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		genBytes := rapid.SliceOfN(rapid.Byte(), 0, 6)
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallNanos: rapid.Int64Min(0).Draw(t, "wall"), Logical: rapid.Int32Min(0).Draw(t, "logical")}
		})
		c := &command{op: op(rapid.IntRange(int(opGet), int(lastOp)).Draw(t, "op")), now: genTS.Draw(t, "now"),
			key: genBytes.Draw(t, "key"), end: genBytes.Draw(t, "end"), value: genBytes.Draw(t, "value"),
			deleted: rapid.Bool().Draw(t, "deleted"), read: genTS.Draw(t, "read"), from: genTS.Draw(t, "from"),
			uncertainty: genTS.Draw(t, "uncertainty"), limit: rapid.IntRange(0, 1000).Draw(t, "limit"),
			begin: rapid.Bool().Draw(t, "begin"), start: genTS.Draw(t, "start"), commit: rapid.Bool().Draw(t, "commit"),
			keys: rapid.SliceOfN(genBytes, 0, 3).Draw(t, "keys"), reads: rapid.Bool().Draw(t, "reads"),
			node: kernel.NodeID(rapid.Uint64().Draw(t, "node")),
			wait: time.Duration(rapid.Int64Range(0, int64(consensus.MaxQueryWait)).Draw(t, "wait")), queue: rapid.Bool().Draw(t, "queue")}
		for range c.keys {
			c.writes = append(c.writes, genBytes.Draw(t, "write"))
		}
		if rapid.Bool().Draw(t, "txn") {
			c.txn = &storage.TxnMeta{Timestamp: genTS.Draw(t, "ts"), Epoch: rapid.Uint32().Draw(t, "epoch"), Anchor: genBytes.Draw(t, "anchor")}
			c.txn.ID[0] = rapid.Byte().Draw(t, "id")
		}
		// The format before finalized: its list, count included, and
		// wait cut off.
		waitBytes := len(binary.AppendUvarint(nil, uint64(c.wait))) + 1 // and queue
		beforeFinalized := len(c.encode()) - 1 - waitBytes
		for i := range rapid.IntRange(0, 2).Draw(t, "finalized") {
			f := storage.FinalizedTxn{Txn: storage.TxnMeta{Timestamp: genTS.Draw(t, "fts"), Epoch: rapid.Uint32().Draw(t, "fepoch"), Anchor: genBytes.Draw(t, "fanchor")},
				Commit: rapid.Bool().Draw(t, "fcommit"), TS: genTS.Draw(t, "fcommitTS")}
			f.Txn.ID[0] = byte(i)
			c.finalized = append(c.finalized, f)
		}
		b := c.encode()
		beforeWait := len(b) - waitBytes
		got, err := decodeCommand(b)
		if err != nil || !reflect.DeepEqual(normalize(got), normalize(c)) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", c, got, err)
		}
		// A command of the formats before node, before finalized and
		// before wait (cut off) still decodes, without them; every other
		// cut fails.
		beforeNode := beforeFinalized - len(binary.AppendUvarint(nil, uint64(c.node)))
		for n := range len(b) {
			got, err := decodeCommand(b[:n])
			switch {
			case n == beforeNode && (err != nil || got.node != 0 || got.finalized != nil):
				t.Fatalf("a command of the format before node decoded as %+v, %v", got, err)
			case n == beforeFinalized && (err != nil || got.node != c.node || got.finalized != nil):
				t.Fatalf("a command of the format before finalized decoded as %+v, %v", got, err)
			case n == beforeWait && (err != nil || got.wait != 0 || got.queue || len(got.finalized) != len(c.finalized)):
				t.Fatalf("a command of the format before wait decoded as %+v, %v", got, err)
			case n != beforeNode && n != beforeFinalized && n != beforeWait && err == nil:
				t.Fatalf("a command cut to %d of %d bytes decoded", n, len(b))
			}
		}
		if _, err := decodeCommand(append(b, 0)); err == nil {
			t.Fatalf("a command with a trailing byte decoded")
		}
		r := &result{code: codeIntent, now: genTS.Draw(t, "rnow"), value: genBytes.Draw(t, "rvalue"), found: true,
			kvs: []storage.KeyValue{{Key: genBytes.Draw(t, "k"), Value: genBytes.Draw(t, "v")}}, resume: genBytes.Draw(t, "resume"),
			more: true, ts: genTS.Draw(t, "rts"), intentKey: genBytes.Draw(t, "ikey"), status: statusPending}
		// A reply of the format before abandoned (its count byte and
		// list cut off) still decodes, with none; every other cut fails.
		older := len(r.encode()) - 1
		r.abandoned = []storage.IntentError{{Key: genBytes.Draw(t, "akey"), Intent: storage.Intent{Txn: storage.TxnMeta{Anchor: genBytes.Draw(t, "aanchor")}}}}
		rb := r.encode()
		for n := range len(rb) {
			got, err := decodeResult(rb[:n])
			switch {
			case n == older && (err != nil || len(got.abandoned) != 0):
				t.Fatalf("a result of the older format decoded as %+v, %v", got, err)
			case n != older && err == nil:
				t.Fatalf("a result cut to %d of %d bytes decoded", n, len(rb))
			}
		}
		back, err := decodeResult(rb)
		if got := back; err != nil || got.ts != r.ts || string(got.kvs[0].Value) != string(r.kvs[0].Value) ||
			len(got.abandoned) != 1 || string(got.abandoned[0].Intent.Txn.Anchor) != string(r.abandoned[0].Intent.Txn.Anchor) {
			t.Fatalf("decode(encode(result)) = %+v, %v", back, err)
		}
	})
}

// normalize makes empty byte slices nil, as decoding gives them.
func normalize(c *command) command {
	n := *c
	z := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	n.key, n.end, n.value = z(n.key), z(n.end), z(n.value)
	var keys [][]byte
	for _, k := range n.keys {
		keys = append(keys, z(k))
	}
	n.keys = keys
	var writes [][]byte
	for _, w := range n.writes {
		writes = append(writes, z(w))
	}
	n.writes = writes
	if n.txn != nil {
		m := *n.txn
		m.Anchor = z(m.Anchor)
		n.txn = &m
	}
	var finalized []storage.FinalizedTxn
	for _, f := range n.finalized {
		f.Txn.Anchor = z(f.Txn.Anchor)
		finalized = append(finalized, f)
	}
	n.finalized = finalized
	return n
}

// TestRecordsDecodeAsEncoded: a record comes back as it was written, and
// one of an older format (before node, before spans) still decodes.
func TestRecordsDecodeAsEncoded(t *testing.T) {
	r := &record{status: statusPending, start: hlc.Timestamp{WallNanos: 5}, heartbeat: hlc.Timestamp{WallNanos: 7, Logical: 1},
		keys: [][]byte{[]byte("a")}, spans: [][]byte{[]byte("b"), []byte("c")}, node: 300}
	b := r.encode()
	got, err := decodeRecord(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", r, got, err)
	}
	beforeNode := b[:len(b)-len(binary.AppendUvarint(nil, 300))]
	if got, err := decodeRecord(beforeNode); err != nil || got.node != 0 || len(got.spans) != 2 {
		t.Fatalf("a record without its node decoded as %+v, %v", got, err)
	}
	if _, err := decodeRecord(append(b, 0)); err == nil {
		t.Fatal("a record with a trailing byte decoded")
	}
}
