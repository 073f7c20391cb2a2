package actor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/internal/codec"
	"github.com/orbitkernel/orbit/kernel"
)

// TestRecordsRoundTrip: every record and the request decode to what was
// encoded, and a truncated, extended or other-version encoding is refused
// (errMalformed), never misread.
func TestRecordsRoundTrip(t *testing.T) {
	e := dirEntry{Node: 3, Epoch: 7, Expiry: -5}
	s := stateRecord{Epoch: 2, Version: 9, State: []byte("st")}
	l := lastRequest{Seq: 4, At: 1 << 61, Reply: []byte("r")}
	q := request{Ref: Ref{Type: "t", Key: "k"}, Method: "m", Client: 1 << 60, Seq: 12, Budget: 500 * time.Millisecond, Payload: []byte("p")}
	cases := []struct {
		enc    []byte
		decode func([]byte) (any, error)
		want   any
	}{
		{e.encode(), func(b []byte) (any, error) { return decodeDirEntry(b) }, e},
		{s.encode(), func(b []byte) (any, error) { return decodeStateRecord(b) }, s},
		{stateRecord{Epoch: 1, Version: 1}.encode(), func(b []byte) (any, error) { return decodeStateRecord(b) }, stateRecord{Epoch: 1, Version: 1}},
		{l.encode(), func(b []byte) (any, error) { return decodeLastRequest(b) }, l},
		{q.encode(), func(b []byte) (any, error) { return decodeRequest(b) }, q},
	}
	for i, c := range cases {
		got, err := c.decode(c.enc)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("case %d: decoded %v, %v; want %v", i, got, err, c.want)
		}
		other := append([]byte{0xff}, c.enc[1:]...)
		if _, err := c.decode(other); !errors.Is(err, errMalformed) {
			t.Errorf("case %d: another version decoded (%v)", i, err)
		}
		if _, err := c.decode(c.enc[:1]); !errors.Is(err, errMalformed) {
			t.Errorf("case %d: a truncated encoding decoded (%v)", i, err)
		}
	}
	// A caller's last request of the first version (no time) still reads,
	// with At 0 (never expired).
	v1 := binary.AppendUvarint([]byte{recordVersion}, 4)
	v1 = append(append(v1, 1), "refused"...)
	if got, err := decodeLastRequest(v1); err != nil || got.Seq != 4 || !got.Refused || got.At != 0 || string(got.Reply) != "refused" {
		t.Errorf("a first-version last request decoded as %+v, %v", got, err)
	}
	// A request of the first version (a node not yet upgraded: no
	// budget) still reads, with no budget.
	w := &codec.Encoder{B: []byte{recordVersion}}
	w.Str("t")
	w.Str("k")
	w.Str("m")
	w.U64(1 << 60)
	w.U64(12)
	w.Str("")
	w.I64(0)
	w.U64(0)
	w.Bool(false)
	w.Raw([]byte("p"))
	wantV1 := q
	wantV1.Budget = 0
	if got, err := decodeRequest(w.B); err != nil || fmt.Sprint(got) != fmt.Sprint(wantV1) {
		t.Errorf("a first-version request decoded as %+v, %v", got, err)
	}
	if _, err := decodeDirEntry(append(e.encode(), 0)); !errors.Is(err, errMalformed) {
		t.Errorf("a directory entry with trailing bytes decoded (%v)", err)
	}
}

// TestRecordKeysAreDisjoint: no actor's records fall inside another's
// span, even when one name is a prefix of another.
func TestRecordKeysAreDisjoint(t *testing.T) {
	a, b := Ref{Type: "ab", Key: "c"}, Ref{Type: "a", Key: "bc"}
	if bytes.HasPrefix(dirKey(a), nameKey(b)) || bytes.HasPrefix(dirKey(b), nameKey(a)) {
		t.Fatalf("%v and %v share a name prefix", a, b)
	}
	if !bytes.HasPrefix(requestKey(a, 1), nameKey(a)) || !bytes.HasPrefix(stateKey(a), nameKey(a)) {
		t.Fatal("an actor's records are not under its name")
	}
}

// TestWireErrors: each typed error crosses the wire as itself.
func TestWireErrors(t *testing.T) {
	for _, err := range []error{&NotHereError{Node: 5}, &MethodError{Msg: "no"}, ErrOverloaded, ErrStaleRequest, ErrUnknownType, errors.New("whatever")} {
		w := toWire(err).(*wireError)
		got := fromWire(&kernel.RemoteError{Code: w.RemoteCode(), Detail: w.RemoteDetail(), Msg: w.Error()})
		switch want := err.(type) {
		case *NotHereError:
			var nh *NotHereError
			if !errors.As(got, &nh) || nh.Node != want.Node {
				t.Errorf("%v came back as %v", err, got)
			}
		case *MethodError:
			var me *MethodError
			if !errors.As(got, &me) || me.Msg != want.Msg {
				t.Errorf("%v came back as %v", err, got)
			}
		default:
			if errors.Is(err, ErrOverloaded) || errors.Is(err, ErrStaleRequest) || errors.Is(err, ErrUnknownType) {
				if !errors.Is(got, err) {
					t.Errorf("%v came back as %v", err, got)
				}
			} else if !errors.Is(got, errAgain) {
				t.Errorf("an untyped error came back as %v, want errAgain", got)
			}
		}
	}
}

// TestRecordPrefix: every record of an actor (directory entry, state,
// callers' records, reminders, outbox) has the actor's name key as its
// row prefix, no other actor's record does, and keys outside the actors'
// records (the due index, a name cut short) have none.
func TestRecordPrefix(t *testing.T) {
	for _, r := range []Ref{{Type: "counter", Key: "n1"}, {Type: "counter", Key: "n10"}, {Type: "c", Key: ""}, {Type: "t", Key: "a\x00b"}} {
		name := nameKey(r)
		for _, k := range [][]byte{dirKey(r), stateKey(r), requestKey(r, 7), reminderKey(r, "tick"), outboxKey(r, 3)} {
			if got := RecordPrefix(k); !bytes.Equal(got, name) {
				t.Errorf("RecordPrefix(%q) = %q, want %q", k, got, name)
			}
		}
	}
	if a, b := RecordPrefix(dirKey(Ref{Type: "counter", Key: "n1"})), dirKey(Ref{Type: "counter", Key: "n10"}); bytes.HasPrefix(b, a) {
		t.Errorf("n1's row prefix %q is a prefix of n10's record %q", a, b)
	}
	for _, k := range [][]byte{dueKey(5, Ref{Type: "t", Key: "k"}, "r"), []byte("actor/"), append([]byte("actor/"), 9, 'a'), []byte("sql/1")} {
		if got := RecordPrefix(k); got != nil {
			t.Errorf("RecordPrefix(%q) = %q, want none", k, got)
		}
	}
}
