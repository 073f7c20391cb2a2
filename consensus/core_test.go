package consensus

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/storage"
)

// Transcript tests of the replica core alone (core.go), in the manner of
// etcd Raft's interaction tests: each file under testdata/core drives a few
// cores of one range over raft.MemoryStorage, with no engine, network,
// runtime or simulator, and prints every plan a core makes — what it
// persists and whether it syncs, which messages may leave before the sync,
// what commits, which reads are due, how its role changes — and, over a
// map per node in place of its engine (memState), the writes the cores
// evaluate and apply, and the data splits and merges move. Time is the
// harness's: ticks and the monotonic clock move only when a command says.
// Refresh the expected output with
//
//	go test ./consensus -run TestCoreTranscripts -rewrite
//
// Commands (n= is a replica, 1..N, of range 1, or of range= when given;
// a replica's ID is its node's; crash, restart and isolate take a node):
//
//	cores [n=3] [leases=off]   a new range of n voters, all followers
//	campaign n=1               n campaigns now (its Raft's Campaign)
//	transfer n=1 to=2          n, leading, hands leadership to another
//	                           voter (giving up its lease first)
//	propose n=1 data=x         a proposal on n (as the driver's evaluation
//	                           would make it: chained, its client waiting
//	                           for the entry to apply); data names it
//	conf-change n=1 remove=3   a membership change proposed on n
//	request n=1 op=put key=k   the checks a request meets at n before it is
//	                           evaluated (op: get, put, freeze), and the
//	                           refusal, if any
//	hand-over n=1 to=2 | hand-over-ended n=1
//	split-proposed n=1 key=m | split-applied n=1
//	freeze-proposed n=1 | freeze-applied n=1 frozen=true
//	                           what the driver notes of a leader's steps in
//	                           flight (health.go, split.go, merge.go)
//	read n=1 name=r1           a linearizable read arriving at n, leading
//	renew                      the lease renewal every tick makes (ask a
//	                           round where leaseRenewal says it is due)
//	tick [n=1] [ticks=1]       advance the clock by ticks tick intervals;
//	                           the Raft of n (default: every live replica)
//	                           ticks as often. Keep a follower's ticks
//	                           since it last heard its leader below the
//	                           election timeout: past it, Raft draws a
//	                           random timeout and the transcript would
//	                           not replay
//	clock advance=50ms         advance the monotonic clock only
//	ready [n=1]                n (default: every live replica with one)
//	                           plans its Ready and the harness carries it
//	                           out as the driver does: persist, send,
//	                           apply, answer reads, advance
//	deliver [n=2]              step the messages waiting for n (default:
//	                           every live replica)
//	stabilize                  ready and deliver until nothing moves
//	crash n=2 | restart n=2    a crash loses what only the core knew
//	                           (reads, leases, who it heard); the restart
//	                           opens the replica on its persisted state
//	write n=1 name=w op=put key=k value=v [expect=x] [seq=N] [lost]
//	                           a put, delete or cas evaluated by n's core
//	                           over its overlay and proposed (lost: lost
//	                           on the way instead); seq= repeats an
//	                           earlier write's (a client's retry)
//	state [n=1]                each replica's data in its span, its
//	                           descriptor and its last effects entry
//	split n=1 key=m            propose a split of n's range at m (the
//	                           right-hand range's ID is the next free
//	                           one); as each replica applies it through
//	                           its core, its node stages the right-hand
//	                           range and opens its replica, as the
//	                           driver's finishSplit does
//	freeze n=1 range=2         propose a freeze of n's range; applied, it
//	                           keeps the range's final state
//	merge n=1 right=2          propose a merge of the frozen range right
//	                           into n's range; as each replica applies
//	                           it, its node destroys its replica of right
//	isolate n=3 | heal         drop every message to and from n
//	lease [n=1]                whether n may serve a read alone now
//	status                     each replica's role, term, leader, commit
//	                           and applied index
func TestCoreTranscripts(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "core"), func(t *testing.T, path string) {
		runCoreTranscript(t, path)
	})
}

// runCoreTranscript runs one core transcript in a fresh world.
func runCoreTranscript(t testing.TB, path string) {
	e := &coreEnv{}
	datadriven.RunTestAny(t, path, e.handle)
}

// coreEnv is one core transcript's world.
type coreEnv struct {
	t        testing.TB // the running command's
	opts     Options
	replicas []*coreReplica // index i is replica i+1
	at       moment
	nextID   uint64
	isolated map[uint64]bool
	// proposals maps a proposal's data to its ID; named, an ID to the
	// name transcripts give it (its data, or a write's name); seq is the
	// last sequence number a write used.
	proposals map[string]uint64
	named     map[uint64]string
	writes    map[uint64]bool
	seq       uint64
	// splits maps a split proposal's data to its trigger; freezes a
	// freeze's to the generation it was proposed against, and merges a
	// merge's to its trigger. final is each frozen range's final state,
	// as its freeze applied.
	splits  map[string]splitTrigger
	freezes map[string]uint64
	merges  map[string]*mergeTrigger
	final   map[storage.RangeID]*mergeTrigger
	out     strings.Builder
}

// coreReplica is one replica: its core, its persisted Raft state, and
// what it applied.
type coreReplica struct {
	rangeID storage.RangeID
	id      uint64
	// conf is the configuration as the replica applied it.
	conf    raftpb.ConfState
	core    *replicaCore
	storage *raft.MemoryStorage
	applied uint64
	// data is the replica's applied state (what its engine would hold);
	// its core's overlays stage writes over it.
	data  *memState
	down  bool
	inbox []raftpb.Message
	// names of the reads waiting on this replica, by read.
	names map[*read]string
}

func (e *coreEnv) handle(t testing.TB, d *datadriven.TestData) string {
	if d.Cmd != "cores" && e.replicas == nil {
		d.Fatalf(t, "no cores yet")
	}
	e.out.Reset()
	e.t = t
	switch d.Cmd {
	case "cores":
		n := 3
		d.MaybeScanArgs(t, "n", &n)
		e.start(t, n, !d.HasArg("leases"))
	case "campaign":
		e.printf("%v", e.replica(t, d, "n").core.rn.Campaign())
	case "transfer":
		r := e.replica(t, d, "n")
		r.core.transferLeader(e.replica(t, d, "to").id)
	case "propose":
		var data string
		d.ScanArgs(t, "data", &data)
		c := e.replica(t, d, "n").core
		if err := c.rn.Propose([]byte(data)); err != nil {
			e.printf("%v\n", err)
			return e.out.String()
		}
		e.nextID++
		c.chain(e.nextID, []byte(data))
		c.await(e.nextID, func(Response, error) { e.printf("  proposal %s answered\n", data) })
		e.proposals[data] = e.nextID
		e.named[e.nextID] = data
	case "conf-change":
		var remove uint64
		d.ScanArgs(t, "remove", &remove)
		cc := raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeRemoveNode, NodeID: remove}}}
		e.printf("%v", e.replica(t, d, "n").core.rn.ProposeConfChange(cc))
	case "read":
		e.read(t, d)
	case "request":
		e.request(t, d)
	case "write":
		e.write(t, d)
	case "state":
		for _, r := range e.chosen(t, d) {
			d := r.desc()
			e.printf("%s: %s (%s; last effect: %s)\n", r.name(), r.data.in(d), spanText(d), e.entryName(lastEffect(r.data, r.rangeID)))
		}
	case "hand-over":
		e.replica(t, d, "n").core.handOver(e.replica(t, d, "to").id, time.Hour)
	case "hand-over-ended":
		e.replica(t, d, "n").core.handoverEnded()
	case "split-proposed":
		var key string
		d.ScanArgs(t, "key", &key)
		e.replica(t, d, "n").core.splitProposed([]byte(key))
	case "split-applied":
		e.replica(t, d, "n").core.splitApplied()
	case "freeze-proposed":
		e.replica(t, d, "n").core.freezeProposed()
	case "freeze-applied":
		var frozen bool
		d.ScanArgs(t, "frozen", &frozen)
		c := e.replica(t, d, "n").core
		c.freezeApplied()
		c.setFrozen(frozen)
	case "renew":
		for _, r := range e.live() {
			switch r.core.leaseRenewal(e.at) {
			case renewDue:
				e.nextID++
				r.core.askRound(e.nextID, e.at)
				e.printf("%s: asks lease round %d\n", r.name(), e.nextID)
			case renewFresh:
				e.printf("%s: lease still fresh\n", r.name())
			}
		}
	case "tick":
		ticks := 1
		d.MaybeScanArgs(t, "ticks", &ticks)
		which := e.live()
		if d.HasArg("n") {
			which = []*coreReplica{e.replica(t, d, "n")}
		}
		for range ticks {
			e.at.tick++
			e.at.mono += e.opts.TickInterval
			for _, r := range which {
				r.core.tick()
			}
		}
	case "clock":
		var s string
		d.ScanArgs(t, "advance", &s)
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.Fatalf(t, "advance: %v", err)
		}
		e.at.mono += dur
	case "ready":
		for _, r := range e.chosen(t, d) {
			e.ready(r)
		}
	case "deliver":
		for _, r := range e.chosen(t, d) {
			e.deliver(r)
		}
	case "stabilize":
		for moved := true; moved; {
			moved = false
			for _, r := range e.live() {
				if r.core.hasUnbatchedReads() || r.core.rn.HasReady() {
					e.ready(r)
					moved = true
				}
			}
			for _, r := range e.live() {
				if len(r.inbox) > 0 {
					e.deliver(r)
					moved = true
				}
			}
		}
	case "crash":
		for _, r := range e.node(t, d) {
			r.down, r.inbox, r.core = true, nil, nil
		}
	case "restart":
		for _, r := range e.node(t, d) {
			e.open(t, r)
		}
	case "split":
		var key string
		d.ScanArgs(t, "key", &key)
		r := e.replica(t, d, "n")
		data := "split:" + key
		if err := r.core.rn.Propose([]byte(data)); err != nil {
			e.printf("%v\n", err)
			return e.out.String()
		}
		r.core.splitProposed([]byte(key))
		e.splits[data] = splitTrigger{generation: r.desc().Generation, newID: e.nextRange(), key: []byte(key)}
	case "freeze":
		r := e.replica(t, d, "n")
		data := fmt.Sprintf("freeze:r%d", r.rangeID)
		if err := r.core.rn.Propose([]byte(data)); err != nil {
			e.printf("%v\n", err)
			return e.out.String()
		}
		r.core.freezeProposed()
		e.freezes[data] = r.desc().Generation
	case "merge":
		r := e.replica(t, d, "n")
		var right uint64
		d.ScanArgs(t, "right", &right)
		m := e.final[storage.RangeID(right)]
		if m == nil {
			d.Fatalf(t, "range %d: no freeze applied", right)
		}
		data := fmt.Sprintf("merge:r%d", right)
		if err := r.core.rn.Propose([]byte(data)); err != nil {
			e.printf("%v\n", err)
			return e.out.String()
		}
		e.merges[data] = m
	case "isolate":
		e.isolated[e.replica(t, d, "n").id] = true
	case "heal":
		clear(e.isolated)
	case "lease":
		for _, r := range e.chosen(t, d) {
			st := r.core.rn.BasicStatus()
			valid := r.core.leaseValid(st, e.at, func() bool { return true })
			e.printf("%s: lease valid %t (term %d, confirmed at %v, now %v)\n", r.name(), valid, r.core.lease.term, r.core.lease.start, e.at.mono)
		}
	case "status":
		for _, r := range e.replicas {
			if r.down {
				e.printf("%s: down\n", r.name())
				continue
			}
			st := r.core.rn.BasicStatus()
			e.printf("%s: %s term %d lead %d commit %d applied %d\n", r.name(), st.RaftState, st.Term, st.Lead, st.Commit, r.applied)
		}
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return e.out.String()
}

func (e *coreEnv) printf(format string, args ...any) { fmt.Fprintf(&e.out, format, args...) }

// start makes n voters of one range, each with the initial snapshot the
// store bootstraps a range with (index 1, term 1).
func (e *coreEnv) start(t testing.TB, n int, leases bool) {
	e.opts = Options{DisableLeases: !leases}
	e.opts.EnsureDefaults()
	e.replicas, e.at, e.nextID, e.isolated, e.proposals = nil, moment{mono: time.Hour}, 0, map[uint64]bool{}, map[string]uint64{}
	e.named, e.writes, e.seq, e.splits = map[uint64]string{}, map[uint64]bool{}, 0, map[string]splitTrigger{}
	e.freezes, e.merges, e.final = map[string]uint64{}, map[string]*mergeTrigger{}, map[storage.RangeID]*mergeTrigger{}
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	for i := 1; i <= n; i++ {
		st := raft.NewMemoryStorage()
		snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1, ConfState: raftpb.ConfState{Voters: voters}}}
		if err := st.ApplySnapshot(snap); err != nil {
			t.Fatal(err)
		}
		r := &coreReplica{rangeID: 1, id: uint64(i), storage: st, applied: 1, conf: snap.Metadata.ConfState, data: newMemState()}
		setDescriptor(r.data, Descriptor{ID: 1})
		e.replicas = append(e.replicas, r)
		e.open(t, r)
	}
}

// name is how transcripts name r: its ID in range 1, r<range>/<ID> in
// the ranges splits made.
func (r *coreReplica) name() string {
	if r.rangeID == 1 {
		return strconv.FormatUint(r.id, 10)
	}
	return fmt.Sprintf("r%d/%d", r.rangeID, r.id)
}

// find is replica id of range, or nil.
func (e *coreEnv) find(rangeID storage.RangeID, id uint64) *coreReplica {
	for _, r := range e.replicas {
		if r.rangeID == rangeID && r.id == id {
			return r
		}
	}
	return nil
}

// node is every replica of node n= (a replica's ID is its node's).
func (e *coreEnv) node(t testing.TB, d *datadriven.TestData) []*coreReplica {
	var id uint64
	d.ScanArgs(t, "n", &id)
	var rs []*coreReplica
	for _, r := range e.replicas {
		if r.id == id {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		d.Fatalf(t, "n=%d: no such replica", id)
	}
	return rs
}

// nextRange is the ID a new split's right-hand range gets.
func (e *coreEnv) nextRange() storage.RangeID {
	var last storage.RangeID
	for _, r := range e.replicas {
		last = max(last, r.rangeID)
	}
	for _, t := range e.splits {
		last = max(last, t.newID)
	}
	return last + 1
}

// split applies split trigger t to r through its core, as the driver's
// applySplit does: a trigger that no longer fits is a no-op; otherwise
// the left-hand range's descriptor shrinks, and the node stages the
// right-hand range in its state and opens its replica as the driver's
// finishSplit does: on a fresh log with the left-hand range's voters,
// with no quiet window (it promised no leader a lease), and campaigning
// at once if the left-hand replica leads.
func (e *coreEnv) split(r *coreReplica, t splitTrigger) {
	left, right, ok := r.core.applySplit(r.data, r.desc(), r.conf, &t)
	if !ok {
		e.printf("  split at %q: no-op (the range is %s; proposed at generation %d)\n", t.key, spanText(r.desc()), t.generation)
		return
	}
	stageRightHand(r.data, left.ID, right, t.sticky)
	key := string(t.key)
	st := raft.NewMemoryStorage()
	snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1, ConfState: r.conf}}
	if err := st.ApplySnapshot(snap); err != nil {
		e.t.Fatal(err)
	}
	nr := &coreReplica{rangeID: right.ID, id: r.id, storage: st, applied: 1, conf: r.conf, data: r.data}
	e.replicas = append(e.replicas, nr)
	e.open(e.t, nr)
	nr.core.promisedNothing()
	e.printf("  split at %q: opened %s", key, nr.name())
	if r.core.leading {
		e.printf(", which campaigns (the left-hand leader leads the right-hand range too): %v", nr.core.rn.Campaign())
	}
	e.printf("\n")
}

// freeze applies a freeze proposed against generation gen to r through
// its core, as the driver's applyFreeze does, and keeps the range's final
// state for a merge.
func (e *coreEnv) freeze(r *coreReplica, gen uint64) {
	m, frozeNow := r.core.applyFreeze(r.data, r.desc(), gen)
	switch {
	case m == nil:
		e.printf("  freeze: no-op (generation %d, proposed at %d)\n", r.desc().Generation, gen)
		return
	case frozeNow:
		e.printf("  frozen")
	default:
		e.printf("  frozen already")
	}
	var data []string
	for _, kv := range m.data {
		data = append(data, string(kv.Key)+"="+string(kv.Value))
	}
	e.printf(": final state %s; range-local records taken over: %d\n", strings.Join(data, " "), len(m.local))
	e.final[r.rangeID] = m
}

// merge applies merge trigger m to r, the left-hand range, through its
// core, as the driver's applyMerge does: the node stages the merged range
// in its state and destroys its replica of the right-hand range.
func (e *coreEnv) merge(r *coreReplica, m *mergeTrigger) {
	d := r.desc()
	merged, ok, now := r.core.applyMerge(r.data, d, m)
	switch {
	case !ok:
		e.printf("  merge of r%d: no-op (the range ends at %q)\n", m.right.ID, d.End)
		return
	case !now:
		e.printf("  merge of r%d: merged already\n", m.right.ID)
		return
	}
	stageMerge(r.data, d, merged, m, nil)
	e.printf("  merged r%d: the range is %s", m.right.ID, spanText(merged))
	if o := e.find(m.right.ID, r.id); o != nil {
		e.replicas = slices.DeleteFunc(e.replicas, func(x *coreReplica) bool { return x == o })
		e.printf("; %s destroyed", o.name())
	}
	e.printf("\n")
}

// open starts r's core on its persisted state.
func (e *coreEnv) open(t testing.TB, r *coreReplica) {
	rn, err := raft.NewRawNode(e.opts.raftConfig(r.id, r.storage, r.applied, 0, quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	r.core, r.down, r.names = newReplicaCore(r.id, rn, e.opts.coreConfig(), e.at, r.data.overlay), false, map[*read]string{}
}

func (e *coreEnv) replica(t testing.TB, d *datadriven.TestData, arg string) *coreReplica {
	var id uint64
	d.ScanArgs(t, arg, &id)
	rangeID := uint64(1)
	d.MaybeScanArgs(t, "range", &rangeID)
	r := e.find(storage.RangeID(rangeID), id)
	if r == nil {
		d.Fatalf(t, "%s=%d range=%d: no such replica", arg, id, rangeID)
	}
	if r.down && arg == "n" && d.Cmd != "restart" {
		d.Fatalf(t, "replica %d is down", id)
	}
	return r
}

// chosen is n= if given, else every live replica.
func (e *coreEnv) chosen(t testing.TB, d *datadriven.TestData) []*coreReplica {
	if d.HasArg("n") {
		return []*coreReplica{e.replica(t, d, "n")}
	}
	return e.live()
}

func (e *coreEnv) live() []*coreReplica {
	var rs []*coreReplica
	for _, r := range e.replicas {
		if !r.down {
			rs = append(rs, r)
		}
	}
	return rs
}

// read starts a read on a leader as the driver's serve does.
func (e *coreEnv) read(t testing.TB, d *datadriven.TestData) {
	r := e.replica(t, d, "n")
	var name string
	d.ScanArgs(t, "name", &name)
	st := r.core.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		e.printf("%s: not leader (lead %d, term %d)\n", name, st.Lead, st.Term)
		return
	}
	rd := &read{}
	if d.HasArg("after-writes") {
		rd.after = r.core.lastInflight() // a query of a keyspace whose queries see writes
	}
	leased, now := r.core.startRead(rd, st, r.applied, e.at, func() bool { return true })
	switch {
	case now:
		e.printf("%s: served at once under the lease, applied %d\n", name, r.applied)
	case leased:
		r.names[rd] = name
		e.printf("%s: leased, waits for commit %d to apply", name, rd.readAt)
		if rd.after != 0 {
			e.printf(" and proposal %d", rd.after)
		}
		e.printf("\n")
	default:
		r.names[rd] = name
		e.printf("%s: waits for a ReadIndex round\n", name)
	}
}

// refusalNames are the refusals as transcripts print them.
var refusalNames = map[refusal]string{
	refuseFrozen:     "frozen for a merge",
	refuseNotLeader:  "not leader",
	refuseHandover:   "handing leadership over",
	refuseCatchingUp: "has not applied an entry of its term",
	refuseSplitting:  "splitting",
}

// request runs the checks of the driver's serve, in its order, without
// evaluating or proposing anything.
func (e *coreEnv) request(t testing.TB, d *datadriven.TestData) {
	r := e.replica(t, d, "n")
	var opName, key string
	d.ScanArgs(t, "op", &opName)
	d.MaybeScanArgs(t, "key", &key)
	op, ok := map[string]Op{"get": OpGet, "put": OpPut, "freeze": OpFreeze}[opName]
	if !ok {
		d.Fatalf(t, "op=%s: get, put or freeze", opName)
	}
	st := r.core.rn.BasicStatus()
	why := r.core.admitsRequest(op, st)
	if why == accepted && op.isRead() {
		e.printf("%s %s: accepted (a read)\n", opName, key)
		return
	}
	if why == accepted {
		why = r.core.evaluates(st)
	}
	if why == accepted && r.core.splitting([]byte(key)) {
		why = refuseSplitting
	}
	if why != accepted {
		e.printf("%s %s: refused: %s\n", opName, key, refusalNames[why])
		return
	}
	e.printf("%s %s: accepted (a write)\n", opName, key)
}

// ready carries out r's next Ready as Store.cycle does, printing the plan.
func (e *coreEnv) ready(r *coreReplica) {
	c := r.core
	if c.hasUnbatchedReads() {
		e.nextID++
		c.batchReads(e.nextID, e.at)
		e.printf("%s: reads batched into ReadIndex round %d\n", r.name(), e.nextID)
	}
	if !c.rn.HasReady() {
		return
	}
	p := c.ready()
	e.printf("%s: ready", r.name())
	if p.mustSync {
		e.printf(" (sync)")
	}
	e.printf("\n")
	if !raft.IsEmptySnap(p.rd.Snapshot) {
		e.printf("  persist snapshot %d/%d\n", p.rd.Snapshot.Metadata.Index, p.rd.Snapshot.Metadata.Term)
		if err := r.storage.ApplySnapshot(p.rd.Snapshot); err != nil {
			panic(err)
		}
	}
	if len(p.rd.Entries) > 0 {
		e.printf("  persist entries %s\n", e.describeEntries(p.rd.Entries))
		if err := r.storage.Append(p.rd.Entries); err != nil {
			panic(err)
		}
	}
	if !raft.IsEmptyHardState(p.hardState) {
		e.printf("  persist hard state term %d vote %d commit %d\n", p.hardState.Term, p.hardState.Vote, p.hardState.Commit)
		if err := r.storage.SetHardState(p.hardState); err != nil {
			panic(err)
		}
	}
	for _, early := range []bool{true, false} {
		if early != p.early {
			continue
		}
		when := "after the sync"
		switch {
		case !p.mustSync:
			when = "(no sync)"
		case early:
			when = "before the sync"
		}
		for _, m := range p.rd.Messages {
			if m.To == 0 {
				continue
			}
			e.printf("  send %s %s\n", when, raft.DescribeMessage(m, e.entryText))
			// A message for a replica its node has not opened yet (it
			// has not applied the split) is lost; Raft sends it again.
			to := e.find(r.rangeID, m.To)
			if to != nil && !to.down && !e.isolated[m.From] && !e.isolated[m.To] {
				to.inbox = append(to.inbox, m)
			}
		}
	}
	for _, m := range p.snapshots {
		e.printf("  stream snapshot to %d\n", m.To)
	}
	if p.granted {
		e.printf("  granted a vote to %d in term %d\n", p.hardState.Vote, p.hardState.Term)
	}
	e.apply(r, p.rd.CommittedEntries)
	c.readIndexesAnswered(p.rd.ReadStates)
	for _, rs := range p.rd.ReadStates {
		e.printf("  ReadIndex round %d answered: index %d\n", binary.BigEndian.Uint64(rs.RequestCtx), rs.Index)
	}
	if ss := p.rd.SoftState; ss != nil {
		var waiting []string
		for _, id := range e.proposals {
			if c.waiting[id] != nil {
				waiting = append(waiting, e.named[id])
			}
		}
		rc := c.changeRole(*ss, e.at)
		e.printf("  role: %s (lead %d)", ss.RaftState, ss.Lead)
		for _, f := range []struct {
			on   bool
			name string
		}{{rc.won, "won"}, {rc.lost, "lost"}, {rc.handedOver, "handed over"}} {
			if f.on {
				e.printf(", %s", f.name)
			}
		}
		e.printf("\n")
		if ss.RaftState != raft.StateLeader && len(waiting) > 0 {
			slices.Sort(waiting)
			e.printf("  proposals abandoned (their clients time out: outcome unknown): %s\n", strings.Join(waiting, " "))
		}
		if ss.RaftState != raft.StateLeader && len(r.names) > 0 {
			var dropped []string
			for _, name := range r.names {
				dropped = append(dropped, name)
			}
			slices.Sort(dropped)
			e.printf("  reads dropped (their clients retry): %s\n", strings.Join(dropped, " "))
			clear(r.names)
		}
	}
	for _, rd := range c.readsDue(r.applied) {
		e.printf("  read %s served at %d (applied %d)\n", r.names[rd], rd.readAt, r.applied)
		delete(r.names, rd)
	}
	c.rn.Advance(p.rd)
}

// apply applies committed entries: a write's effects to the replica's
// data (applyWrite), nothing for the other proposals (the core does not
// see their state machine), the configuration for membership changes.
func (e *coreEnv) apply(r *coreReplica, ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	e.printf("  apply %s\n", e.describeEntries(ents))
	for _, ent := range ents {
		if id, ok := e.proposals[string(ent.Data)]; ok && e.writes[id] && ent.Type == raftpb.EntryNormal {
			e.applyWrite(r, id, ent.Data)
		} else if ok && ent.Type == raftpb.EntryNormal && len(ent.Data) > 0 {
			switch r.core.chainApplied(r.desc(), id) {
			case overlayDrop:
				e.printf("  chain applied: overlay dropped\n")
			case overlayRebuild:
				e.printf("  chain: overlay rebuilt\n")
			}
			if reply := r.core.answer(id); reply != nil {
				reply(Response{}, nil)
			}
		}
		if t, ok := e.splits[string(ent.Data)]; ok && ent.Type == raftpb.EntryNormal {
			e.split(r, t)
		}
		if gen, ok := e.freezes[string(ent.Data)]; ok && ent.Type == raftpb.EntryNormal {
			e.freeze(r, gen)
		}
		if m, ok := e.merges[string(ent.Data)]; ok && ent.Type == raftpb.EntryNormal {
			e.merge(r, m)
		}
		if ent.Type == raftpb.EntryConfChangeV2 {
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(ent.Data); err != nil {
				panic(err)
			}
			cs, _ := r.core.applyConfChange(r.data, r.desc(), r.conf, cc)
			r.conf = cs
			// Persisted with it, as the driver's apply batch does
			// (LogStore.SetConfState): a restart must come back in it.
			if _, err := r.storage.CreateSnapshot(ent.Index, &cs, nil); err != nil {
				panic(err)
			}
			e.printf("  configuration now voters %v\n", cs.Voters)
		}
	}
	r.applied = ents[len(ents)-1].Index
	r.core.appliedThrough(ents[len(ents)-1])
}

// spanText is d's span and generation as transcripts print them.
func spanText(d Descriptor) string {
	end := "end"
	if d.End != nil {
		end = strconv.Quote(string(d.End))
	}
	return fmt.Sprintf("[%q, %s) generation %d", d.Start, end, d.Generation)
}

// desc is r's range's descriptor as r applied it.
func (r *coreReplica) desc() Descriptor {
	d, ok := storedDescriptor(r.data, r.rangeID)
	if !ok {
		panic(fmt.Sprintf("%s: no descriptor", r.name()))
	}
	return d
}

// entryName names an effects entry for transcripts: by its write's name,
// "none" for 0.
func (e *coreEnv) entryName(id uint64) string {
	if id == 0 {
		return "none"
	}
	if n, ok := e.named[id]; ok {
		return n
	}
	return fmt.Sprintf("entry %d", id)
}

// write evaluates a put, delete or compare-and-set on n's core, as the
// driver's serve does once the request is admitted, and proposes it
// (with lost, loses it on the way instead, as the simulator's dropped
// proposals are lost). seq= repeats an earlier write's sequence number
// (a client's retry).
func (e *coreEnv) write(t testing.TB, d *datadriven.TestData) {
	r := e.replica(t, d, "n")
	var name, opName, key, value, expect string
	d.ScanArgs(t, "name", &name)
	d.ScanArgs(t, "op", &opName)
	d.ScanArgs(t, "key", &key)
	d.MaybeScanArgs(t, "value", &value)
	d.MaybeScanArgs(t, "expect", &expect)
	op, ok := map[string]Op{"put": OpPut, "delete": OpDelete, "cas": OpCAS}[opName]
	if !ok {
		d.Fatalf(t, "op=%s: put, delete or cas", opName)
	}
	if !r.desc().Contains([]byte(key)) {
		// The driver's routing refuses it (RangeMismatchError).
		e.printf("%s: %q is not in %s's range\n", name, key, r.name())
		return
	}
	seq := e.seq + 1
	d.MaybeScanArgs(t, "seq", &seq)
	e.seq = max(e.seq, seq)
	req := Request{Client: 1, Seq: seq, Op: op, Key: []byte(key), Value: []byte(value), Expect: []byte(expect)}
	e.nextID++
	id := e.nextID
	ev, err := r.core.evaluate(r.desc(), id, func(w writeState) error {
		_, err := applyRequest(w, r.desc(), req, nil)
		return err
	})
	if err != nil {
		d.Fatalf(t, "evaluate: %v", err)
	}
	ev.client = req.Client
	data := encodeEffects(id, ev)
	e.proposals[string(data)], e.named[id], e.writes[id] = id, name, true
	e.printf("%s: evaluated after %s: %s\n", name, e.entryName(ev.prev), describeMemEffects(ev.writes))
	if d.HasArg("lost") {
		r.core.chainLost(id, ev.writes)
		e.printf("  lost on the way\n")
		return
	}
	if err := r.core.propose(data); err != nil {
		r.core.rebuildOverlay(r.desc())
		e.printf("  not proposed: %v\n", err)
		return
	}
	r.core.chain(id, ev.writes)
	r.core.await(id, func(resp Response, err error) {
		switch {
		case err != nil:
			e.printf("  %s answered: %v\n", name, err)
		case op == OpCAS && !resp.OK:
			e.printf("  %s answered: not swapped\n", name)
		default:
			e.printf("  %s answered: ok\n", name)
		}
	})
}

// describeMemEffects lists a write's effects: its data writes, then the
// range-local records it sets, by name.
func describeMemEffects(effects []byte) string {
	var parts []string
	err := visitEffects(effects, func(kind byte, f []string) {
		switch kind {
		case 's':
			parts = append(parts, "set "+f[0]+"="+f[1])
		case 'd':
			parts = append(parts, "delete "+f[0])
		case 'r':
			parts = append(parts, "delete ["+f[0]+", "+f[1]+")")
		case 'l':
			key, _, _ := strings.Cut(f[1], "/")
			parts = append(parts, "record "+key)
		}
	})
	if err != nil {
		return err.Error()
	}
	return strings.Join(parts, ", ")
}

// applyWrite applies a write's entry to r as the driver's applyEffects
// does: rejected unless it follows the last effects entry r applied,
// otherwise its effects, and the reply its client-table record holds.
func (e *coreEnv) applyWrite(r *coreReplica, id uint64, data []byte) {
	p, err := decodeProposal(data)
	if err != nil || p.effects == nil {
		e.t.Fatalf("write %s: %v", e.named[id], err)
	}
	ev := p.effects
	reply := r.core.answer(id)
	if !follows(r.data, r.rangeID, ev) {
		e.printf("  %s rejected: evaluated after %s, but %s applied last\n", e.named[id], e.entryName(ev.prev), e.entryName(lastEffect(r.data, r.rangeID)))
		if r.core.inChain(id) {
			e.printf("  the chain is broken: overlay dropped\n")
		}
		r.core.rejected(id)
		if reply != nil {
			reply(Response{}, errStaleEvaluation)
		}
		return
	}
	if err := r.data.apply(ev.writes); err != nil {
		e.t.Fatalf("write %s: %v", e.named[id], err)
	}
	rec, ok := lastApplied(r.data, r.rangeID, ev.client)
	if !ok {
		e.t.Fatalf("write %s applied without a client-table record", e.named[id])
	}
	switch r.core.chainApplied(r.desc(), id) {
	case overlayDrop:
		e.printf("  chain applied: overlay dropped\n")
	case overlayRebuild:
		e.printf("  chain: overlay rebuilt\n")
	}
	if reply != nil {
		reply(Response{OK: rec.ok, Value: rec.reply}, nil)
	}
}

// deliver steps r's waiting messages as the driver's handle does.
func (e *coreEnv) deliver(r *coreReplica) {
	msgs := r.inbox
	r.inbox = nil
	for _, m := range msgs {
		if !r.core.admits(m, e.at) {
			e.printf("%s: dropped %s (quiet after a start)\n", r.name(), raft.DescribeMessage(m, e.entryText))
			continue
		}
		r.core.step(m, e.at)
	}
}

// quietLogger is Raft's logger for core transcripts: silent, but fatal
// stays fatal.
var quietLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

// describeEntries is entries on one line.
func (e *coreEnv) describeEntries(ents []raftpb.Entry) string {
	var parts []string
	for _, ent := range ents {
		parts = append(parts, raft.DescribeEntry(ent, e.entryText))
	}
	return strings.Join(parts, ", ")
}

// entryText is an entry's data as transcripts print it: a write's by its
// name.
func (e *coreEnv) entryText(b []byte) string {
	if id, ok := e.proposals[string(b)]; ok && e.writes[id] {
		return "write " + e.named[id]
	}
	return strconv.Quote(string(b))
}

// TestCoreConfigIsTheStores pins down that the core transcripts run the
// Raft configuration the store runs (raftConfig is shared; this guards
// the leases' dependence on CheckQuorum and ReadOnlySafe).
func TestCoreConfigIsTheStores(t *testing.T) {
	o := Options{}
	o.EnsureDefaults()
	c := o.raftConfig(1, raft.NewMemoryStorage(), 0, 0, quietLogger)
	if !c.CheckQuorum || !c.PreVote || c.ReadOnlyOption != raft.ReadOnlySafe || !c.StepDownOnRemoval {
		t.Fatalf("config %+v: leases need CheckQuorum, PreVote, ReadOnlySafe and StepDownOnRemoval", c)
	}
}

// TestPacedElections: a follower's election timer runs at
// base/(base + 2×quorumRTT) once its quorum round trip exceeds a quarter
// of the election timeout (replicaCore.tick), so a node whose votes take
// longer to come back than its timeout stops campaigning on every
// timeout (TestAvailability seed 11). Raft randomizes the timeout in
// [base, 2×base), so the bounds are checked, over many draws.
func TestPacedElections(t *testing.T) {
	o := Options{}
	o.EnsureDefaults()
	base := time.Duration(o.ElectionTicks) * o.TickInterval
	ticksToCampaign := func(rtt time.Duration) int {
		st := raft.NewMemoryStorage()
		if err := st.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 1, Term: 1,
			ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}); err != nil {
			t.Fatal(err)
		}
		rn, err := raft.NewRawNode(o.raftConfig(1, st, 1, 0, quietLogger))
		if err != nil {
			t.Fatal(err)
		}
		c := newReplicaCore(1, rn, o.coreConfig(), moment{}, newMemState().overlay)
		c.quorumRTT = rtt
		for n := 1; n <= 1000; n++ {
			c.tick()
			if rn.Status().RaftState != raft.StateFollower {
				return n
			}
		}
		t.Fatalf("rtt %v: no campaign in 1000 ticks", rtt)
		return 0
	}
	for _, tc := range []struct {
		rtt      time.Duration
		min, max int // driver ticks, inclusive
	}{
		{0, o.ElectionTicks, 2 * o.ElectionTicks},
		{base / 4, o.ElectionTicks, 2 * o.ElectionTicks}, // not paced
		{370 * time.Millisecond, 47, 94},                 // 200 ms of 940: 10 Raft ticks in 47 driver ticks
	} {
		for range 50 {
			if n := ticksToCampaign(tc.rtt); n < tc.min || n > tc.max {
				t.Fatalf("quorum round trip %v: campaigned after %d ticks, want %d–%d", tc.rtt, n, tc.min, tc.max)
			}
		}
	}
}
