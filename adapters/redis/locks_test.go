package redis

import (
	"bytes"
	"testing"

	"github.com/orbitkernel/orbit/consensus"
)

func apply(t *testing.T, m *memRange, cmd []byte, now int64) Reply {
	return runOn(t, m, cmd, now, true)
}
func query(t *testing.T, m *memRange, cmd []byte, now int64) Reply {
	return runOn(t, m, cmd, now, false)
}

// runOn runs cmd on m as a write (Apply) or a read (Query) at now.
func runOn(t *testing.T, m *memRange, cmd []byte, now int64, write bool) Reply {
	t.Helper()
	sm, meta := &StateMachine{}, consensus.CommandMeta{NowMillis: now, Rand: 7}
	run := sm.Query
	if write {
		run = sm.Apply
	}
	b, err := run(m, cmd, meta)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeReply(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLockedKeysRefuseEveryCommand: between a transaction's lock and its
// resolution, every keyed command naming the key is answered Locked and
// has no effect; others' keys and keyspace-wide reads are served without
// seeing the lock area; a flush waits; a second transaction's lock takes
// nothing; the commit replaces the key with its image once, and a
// resolution repeated later changes nothing.
func TestLockedKeysRefuseEveryCommand(t *testing.T) {
	m := &memRange{kv: map[string][]byte{}}
	apply(t, m, ExecCommand(args("rpush", "a", "1", "2")), 1000)
	apply(t, m, InDB(3, ExecCommand(args("set", "b", "x"))), 1000)
	apply(t, m, ExecCommand(args("set", "free", "y")), 1000)

	id, other := TxnID{1}, TxnID{2}
	rks := [][]byte{RawRouteKey(0, []byte("a")), RawRouteKey(3, []byte("b"))}
	r := apply(t, m, LockCommand(id, rks), 1010)
	now, _, images, err := LockReply(r, rks)
	if err != nil || now != 1010 || len(images[0].Records) != 3 || len(images[1].Records) != 1 {
		t.Fatalf("lock reply %+v (%v): want the list's 3 records and the string's 1", images, err)
	}

	for _, c := range []struct {
		cmd   []byte
		write bool
	}{
		{ExecCommand(args("rpush", "a", "3")), true},
		{ExecCommand(args("lrange", "a", "0", "-1")), false},
		{ExecCommand(args("rename", "free", "a")), true},
		{InDB(3, ExecCommand(args("get", "b"))), false},
		{MultiCommand(nil, [][][]byte{args("get", "free"), args("del", "a")}), true},
		{BlockingCommand(args("blpop", "a", "0")), true},
		{FlushAllCommand(m.start), true},
		{InDB(5, FlushCommand(m.start)), true},
		{LockCommand(other, rks[:1]), true},
	} {
		before := len(m.kv)
		var r Reply
		if c.write {
			r = apply(t, m, c.cmd, 1020)
		} else {
			r = query(t, m, c.cmd, 1020)
		}
		got, rk, age, ok := LockedBy(r)
		if !ok || got != id || age != 10 || !(bytes.Equal(rk, rks[0]) || bytes.Equal(rk, rks[1])) {
			t.Errorf("%q: reply %+v; want Locked by %x, 10 ms old", c.cmd, r, id)
		}
		if len(m.kv) != before {
			t.Errorf("%q: the refused command wrote", c.cmd)
		}
	}
	if r := query(t, m, ExecCommand(args("get", "free")), 1020); string(r.Str) != "y" {
		t.Errorf("GET of an unlocked key = %+v", r)
	}
	if r := query(t, m, CountCommand(m.start), 1020); r.Int != 2 {
		t.Errorf("DBSIZE of database 0 = %d; want 2 (the lock area is no key)", r.Int)
	}
	if r := query(t, m, ScanCommand(m.start, nil, 100, ScanOptions{}), 1020); len(r.Elems[0].Elems) != 2 {
		t.Errorf("SCAN = %+v; want a and free", r.Elems[0])
	}

	// The commit: a becomes a string, b keeps its value (read, not written).
	mem := NewMemStore()
	_ = mem.Set(RouteKey([]byte("a")), encodeMeta(meta{typ: typeString, value: []byte("new")}))
	image := Image{RK: rks[0], Records: mem.Dump()}
	if r := apply(t, m, ResolveCommand(id, true, rks, []Image{image}), 1030); r.Int != 2 {
		t.Fatalf("resolve dropped %+v locks; want 2", r)
	}
	if r := query(t, m, ExecCommand(args("get", "a")), 1040); string(r.Str) != "new" {
		t.Fatalf("GET a after the commit = %+v", r)
	}
	if r := query(t, m, InDB(3, ExecCommand(args("get", "b"))), 1040); string(r.Str) != "x" {
		t.Fatalf("GET b after the commit = %+v", r)
	}
	apply(t, m, ExecCommand(args("set", "a", "later")), 1050)
	if r := apply(t, m, ResolveCommand(id, true, rks, []Image{image}), 1060); r.Int != 0 {
		t.Fatalf("a repeated resolution dropped %d locks", r.Int)
	}
	if r := query(t, m, ExecCommand(args("get", "a")), 1070); string(r.Str) != "later" {
		t.Fatalf("a repeated resolution rewrote a: %+v", r)
	}
	if r := apply(t, m, FlushAllCommand(m.start), 1080); r.Kind != KindSimple {
		t.Fatalf("FLUSHALL with no lock left = %+v", r)
	}
}

// TestRunTxn: commands run on images give the range's reply and the
// images of exactly the keys they changed; a failed watch or a write
// outside the images changes nothing.
func TestRunTxn(t *testing.T) {
	m := &memRange{kv: map[string][]byte{}}
	apply(t, m, ExecCommand(args("mset", "a", "1", "b", "2")), 1000)
	rks := [][]byte{RawRouteKey(0, []byte("a")), RawRouteKey(0, []byte("b")), RawRouteKey(0, []byte("c"))}
	_, _, images, err := LockReply(apply(t, m, LockCommand(TxnID{1}, rks), 1000), rks)
	if err != nil {
		t.Fatal(err)
	}
	run := RunTxn(images, 0, 1000, 1, nil, [][][]byte{args("rename", "a", "c")}, false, nil, 0)
	if run.Reply.Kind != KindSimple || len(run.Writes) != 2 || !bytes.Equal(run.Writes[0].RK, rks[0]) || len(run.Writes[0].Records) != 0 || !bytes.Equal(run.Writes[1].RK, rks[2]) {
		t.Fatalf("RENAME a c = %+v, writes %+v; want a emptied and c written", run.Reply, run.Writes)
	}
	run = RunTxn(images, 0, 1000, 1, []Watch{{Key: []byte("b"), Digest: []byte("stale")}}, [][][]byte{args("set", "a", "9")}, true, nil, 0)
	if run.Reply.Kind != KindNullArray || len(run.Writes) != 0 {
		t.Fatalf("EXEC with a stale watch = %+v, %d writes", run.Reply, len(run.Writes))
	}
	run = RunTxn(images, 0, 1000, 1, nil, [][][]byte{args("copy", "a", "b", "db", "4")}, false, nil, 0)
	if run.Reply.Kind != KindError || run.Reply.Err == nil {
		t.Fatalf("COPY to another database = %+v; want an error with no writes", run.Reply)
	}
	run = RunTxn(images, 0, 1000, 1, nil, [][][]byte{args("mget", "a", "b", "c")}, false, nil, 0)
	if len(run.Reply.Elems) != 3 || string(run.Reply.Elems[1].Str) != "2" || len(run.Writes) != 0 {
		t.Fatalf("MGET = %+v, %d writes", run.Reply, len(run.Writes))
	}
}

// TestNoLocksCertificate: a range takes the no-locks certificate only
// while it holds no lock; a lock step ends it in the same write; while
// it stands, commands skip their lock reads (shown here by a lock record
// planted under a certificate, which a real range never holds); the lock
// sweeper's scan says when one is worth asking for.
func TestNoLocksCertificate(t *testing.T) {
	m := &memRange{kv: map[string][]byte{}}
	apply(t, m, ExecCommand(args("set", "a", "1")), 1000)
	if r := query(t, m, LockScanCommand(m.start, nil), 1000); !LockScanWantsCertificate(r) {
		t.Fatalf("lock scan of a range without locks or a certificate = %+v; want it to ask for one", r)
	}
	if r := apply(t, m, CertifyCommand(m.start), 1000); r.Kind != KindBool || r.Int != 1 || m.hints&hintNoLocks == 0 {
		t.Fatalf("certify with no lock = %+v, hints %b; want it taken", r, m.hints)
	}
	if r := query(t, m, LockScanCommand(m.start, nil), 1000); r.Kind != KindNull {
		t.Fatalf("lock scan of a certified range = %+v; want null", r)
	}

	// A lock step ends the certificate, and the locked key is refused.
	id := TxnID{1}
	rks := [][]byte{RawRouteKey(0, []byte("a"))}
	apply(t, m, LockCommand(id, rks), 1010)
	if m.hints&hintNoLocks != 0 {
		t.Fatal("the certificate outlived a lock step")
	}
	if _, _, _, ok := LockedBy(query(t, m, ExecCommand(args("get", "a")), 1020)); !ok {
		t.Fatal("GET of a locked key served after the certificate ended")
	}
	if r := apply(t, m, CertifyCommand(m.start), 1020); r.Kind != KindBool || r.Int != 0 || m.hints&hintNoLocks != 0 {
		t.Fatalf("certify with a lock = %+v, hints %b; want it refused", r, m.hints)
	}
	if r := query(t, m, LockScanCommand(m.start, nil), 1020); LockScanWantsCertificate(r) {
		t.Fatalf("lock scan of a range holding a lock = %+v; want the lock", r)
	}

	// Under a certificate the lock record is not read at all.
	m.hints |= hintNoLocks
	if r := query(t, m, ExecCommand(args("get", "a")), 1030); string(r.Str) != "1" {
		t.Fatalf("GET under a certificate = %+v; want the value, its lock record unread", r)
	}
}
