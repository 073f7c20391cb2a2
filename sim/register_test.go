package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/kernel"
)

// Two services that exist to prove the simulator and the checker bite before
// Raft exists: a correct single-node register, and a deliberately broken
// replicated one.

// registerScenario runs the correct register.
var registerScenario = singleRegister("register", true)

// singleRegister is a scenario of one register server and four clients.
// syncWrites false gives the register that answers before syncing.
func singleRegister(name string, syncWrites bool) Scenario {
	return Scenario{
		Name: name,
		Setup: func(s *Sim) Workload {
			const server kernel.NodeID = 1
			s.AddNode(server, registerServer(syncWrites))
			return newKVWorkload(s, []kernel.NodeID{server}, 4, func(rt kernel.Runtime, _ int) kvCaller {
				return rpcCaller(rt, func(KVInput) kernel.NodeID { return server }, nil)
			})
		},
		FaultTime:    4 * time.Second,
		ProgressTime: 20 * time.Second,
		QuiesceTime:  time.Second,
	}
}

// registerServer is a correct linearizable register on one node. Every write
// is logged and synced before it is applied or answered, so a crash loses
// nothing acknowledged; every write carries (session, sequence), logged with
// it, so a duplicated or delayed request never applies twice, even after a
// restart, and a duplicate of the latest write gets the original answer. Any disk error crashes the node: after a failed sync, what is on
// disk is unknown, and only recovery from the log is safe.
//
// With syncWrites false it answers before its log is synced: still correct
// until a crash loses an acknowledged write, so only the crash fault can
// catch it.
func registerServer(syncWrites bool) func(rt kernel.Runtime) {
	return func(rt kernel.Runtime) { serveRegister(rt, syncWrites) }
}

func serveRegister(rt kernel.Runtime, syncWrites bool) {
	fs := rt.FS()
	values, applied, log := recoverRegister(fs)
	kernel.Serve(rt, "reg", func(ctx context.Context, _ kernel.NodeID, b []byte) ([]byte, error) {
		req, err := decodeKV(b)
		if err != nil {
			return nil, err
		}
		in := req.in
		if in.Op == OpGet {
			return encodeReply(KVOutput{Value: values[in.Key]}), nil
		}
		switch last := applied[req.session]; {
		case req.sequence == last.sequence:
			// A duplicate of the latest write: its client may still wait,
			// so it gets the original answer, never a refusal.
			return encodeReply(KVOutput{OK: last.swap}), nil
		case req.sequence < last.sequence:
			return nil, errors.New("stale request") // its client moved on
		}
		swap := in.Op != OpCAS || values[in.Key] == in.Expect
		if rt.Buggify("register.slow-write") {
			rt.Sleep(ctx, 30*time.Millisecond) // a slow disk: clients time out
		}
		rec := registerRecord{session: req.session, sequence: req.sequence, swap: swap, key: in.Key, value: in.Value}
		if _, err := log.Write(rec.encode()); err != nil {
			kernel.Crash("register log write: %v", err)
		}
		if syncWrites {
			if err := log.Sync(); err != nil {
				kernel.Crash("register log sync: %v", err)
			}
		}
		applied[req.session] = lastWrite{req.sequence, swap}
		if swap {
			values[in.Key] = in.Value
		}
		return encodeReply(KVOutput{OK: swap}), nil
	})
}

// lastWrite is a session's latest write and its outcome.
type lastWrite struct {
	sequence uint64
	swap     bool
}

// registerRecord is one logged write: len(4) crc(4) payload, where payload is
// session(8) sequence(8) swap(1) len(key)(2) key value.
type registerRecord struct {
	session, sequence uint64
	swap              bool
	key, value        string
}

func (r registerRecord) encode() []byte {
	p := binary.BigEndian.AppendUint64(nil, r.session)
	p = binary.BigEndian.AppendUint64(p, r.sequence)
	if r.swap {
		p = append(p, 1)
	} else {
		p = append(p, 0)
	}
	p = binary.BigEndian.AppendUint16(p, uint16(len(r.key)))
	p = append(p, r.key...)
	p = append(p, r.value...)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(p))
	return append(b, p...)
}

// decodeRecords returns the valid prefix of a log: it stops at the first
// record that is short or fails its checksum (a torn tail).
func decodeRecords(b []byte) (recs []registerRecord, valid []byte) {
	off := 0
	for len(b)-off >= 8 {
		n := int(binary.BigEndian.Uint32(b[off:]))
		sum := binary.BigEndian.Uint32(b[off+4:])
		if n < 19 || len(b)-off-8 < n {
			break
		}
		p := b[off+8 : off+8+n]
		if crc32.ChecksumIEEE(p) != sum {
			break
		}
		klen := int(binary.BigEndian.Uint16(p[17:]))
		if 19+klen > n {
			break
		}
		recs = append(recs, registerRecord{
			session: binary.BigEndian.Uint64(p), sequence: binary.BigEndian.Uint64(p[8:]),
			swap: p[16] == 1, key: string(p[19 : 19+klen]), value: string(p[19+klen:]),
		})
		off += 8 + n
	}
	return recs, b[:off]
}

const registerLog = "/register.log"

// recoverRegister rebuilds the register from its log and returns the log
// open for appending. The valid prefix is rewritten to a new file that
// replaces the old one, so that records appended after a torn tail are not
// hidden behind it at the next recovery.
func recoverRegister(fs vfs.FS) (values map[string]string, applied map[uint64]lastWrite, log vfs.File) {
	values, applied = map[string]string{}, map[uint64]lastWrite{}
	var data []byte
	if f, err := fs.Open(registerLog); err == nil {
		data, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			kernel.Crash("register log read: %v", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		kernel.Crash("register log open: %v", err)
	}
	recs, valid := decodeRecords(data)
	for _, r := range recs {
		applied[r.session] = lastWrite{r.sequence, r.swap}
		if r.swap {
			values[r.key] = r.value
		}
	}
	const tmp = registerLog + ".tmp"
	log, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		kernel.Crash("register log create: %v", err)
	}
	if _, err := log.Write(valid); err != nil {
		kernel.Crash("register log rewrite: %v", err)
	}
	if err := log.Sync(); err != nil {
		kernel.Crash("register log sync: %v", err)
	}
	if err := fs.Rename(tmp, registerLog); err != nil {
		kernel.Crash("register log rename: %v", err)
	}
	dir, err := fs.OpenDir("/")
	if err == nil {
		err = dir.Sync()
		dir.Close()
	}
	if err != nil {
		kernel.Crash("register dir sync: %v", err)
	}
	return values, applied, log
}

// brokenScenario runs the deliberately broken register.
var brokenScenario = Scenario{
	Name:         "broken-register",
	Setup:        setupBroken,
	FaultTime:    4 * time.Second,
	ProgressTime: 20 * time.Second,
	QuiesceTime:  time.Second,
}

// setupBroken builds asynchronous primary–backup replication with the
// classic mistakes: the primary answers before the backup has the write,
// reads go to the backup, and a client that cannot reach the primary fails
// over to the backup without it catching up. Nothing is persisted.
func setupBroken(s *Sim) Workload {
	servers := []kernel.NodeID{1, 2}
	for _, id := range servers {
		s.AddNode(id, brokenServer)
	}
	return newKVWorkload(s, servers, 4, func(rt kernel.Runtime, _ int) kvCaller {
		primary := kernel.NodeID(1)
		backup := func() kernel.NodeID { return 3 - primary }
		target := func(in KVInput) kernel.NodeID {
			if in.Op == OpGet {
				return backup()
			}
			return primary
		}
		failover := func(in KVInput) {
			if in.Op != OpGet {
				primary = backup()
			}
		}
		return rpcCaller(rt, target, failover)
	})
}

func brokenServer(rt kernel.Runtime) {
	values := map[string]string{}
	peer := 3 - rt.NodeID()
	repl := rt.Net().Listen("repl")
	rt.Go("apply-replication", func(ctx context.Context) {
		for {
			env, err := repl.Recv(ctx)
			if err != nil {
				return
			}
			if r, err := decodeKV(env.Body); err == nil {
				values[r.in.Key] = r.in.Value
			}
		}
	})
	kernel.Serve(rt, "reg", func(ctx context.Context, _ kernel.NodeID, b []byte) ([]byte, error) {
		req, err := decodeKV(b)
		if err != nil {
			return nil, err
		}
		in := req.in
		switch in.Op {
		case OpGet:
			return encodeReply(KVOutput{Value: values[in.Key]}), nil
		case OpCAS:
			if values[in.Key] != in.Expect {
				return encodeReply(KVOutput{OK: false}), nil
			}
		}
		values[in.Key] = in.Value
		rt.Net().Send(peer, "repl", encodeKV(kvRequest{in: KVInput{Op: OpPut, Key: in.Key, Value: in.Value}}))
		return encodeReply(KVOutput{OK: true}), nil
	})
}

// unsyncedScenario runs the register that acknowledges before syncing.
var unsyncedScenario = singleRegister("unsynced-register", false)
