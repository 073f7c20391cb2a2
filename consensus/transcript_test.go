package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/sim"
	"github.com/orbitkernel/orbit/storage"
)

// Transcript tests of the driver's decisions, in the manner of etcd Raft's
// interaction_test.go: each file under testdata/transcripts scripts a small
// cluster of real Stores (three nodes, one range, on the simulator, over a
// calm network with a fixed 1 ms latency) through proposals, partitions,
// crashes and restarts, and pins down what the driver persists, sends and
// answers. The same seed gives the same transcript; refresh the expected
// output with
//
//	go test ./consensus -run TestTranscripts -rewrite
//
// Commands (n= is the node that runs the command; nodes 1..N are servers,
// node 10 is a client-only node with a router of its own):
//
//	cluster [nodes=3] [seed=1] [slow-apply=(1,20ms)]
//	                              a new cluster; every server holds range 1
//	                              except nodes beyond the third (spares);
//	                              slow-apply makes node 1's state machine
//	                              slow (Options.SlowApply: one committed
//	                              entry a Ready, 20 ms a cycle that applies)
//	elect n=1                     make n campaign now (a TimeoutNow) and run
//	                              until it leads
//	put|get|cas|delete n=1 key=k [value=v] [expect=e] [client=name]
//	                   [timeout=2s] [bound=1s] [name=w async]
//	                              one operation through consensus.Client on
//	                              node n (client "c" by default); with async
//	                              it starts and the transcript goes on
//	                              (await name=w prints its outcome)
//	put|get|cas|delete n=1 to=2 client=7 seq=1 key=k ...
//	                              a raw request (one attempt, the given
//	                              client ID and sequence number) from n to
//	                              node to: a client's retry, by hand
//	split n=10 to=1 key=m [id=2] ...
//	                              a raw split at m, the new range's ID
//	                              given (Client.Split allocates it
//	                              through a read the driver serves only
//	                              once its leader has applied everything)
//	burst n=10 to=1 count=100     count raw puts (keys b0000..., clients
//	                              1000...) from n to node to, all at once,
//	                              not awaited
//	add-replica|remove-replica n=10 node=4 [timeout=2s]
//	split n=10 key=m              split the range holding m at m
//	                              (Client.Split), printing the range
//	                              that starts there
//	ranges                        per server, the ranges it holds
//	                              (descriptors with generation and
//	                              replicas)
//	await name=w [for=3s]         run until the async operation ends
//	partition a=(1,2) b=(3) | isolate n=1 | drop from=1 to=2 |
//	clog from=1 to=2 for=100ms | heal
//	crash n=1 | restart n=1 | pause n=1 | resume n=1
//	crash n=2 when-holds=2        run until the node holds that range (a
//	                              split made it), then crash it at once
//	disk-errors n=2 write=1       fail that share of the node's disk writes
//	tick [ticks=1] | run for=100ms
//	stabilize [max=10s]           run until every node's state holds still
//	                              for 500 ms
//	status [range=1]              per server: role, term, leader, commit,
//	                              applied, last index
//	log n=2 [range=1]             the node's persisted Raft state: hard
//	                              state, log bounds and the last entries
//	members n=1                   the range's configuration as n applied it
//	leader                        the leader with the highest term
//
// Commands about one range's replicas (status, log, elect) take range=
// for a range split off range 1.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "transcripts"), func(t *testing.T, path string) {
		runTranscript(t, path)
	})
}

// runTranscript runs one transcript file against a fresh harness.
func runTranscript(t testing.TB, path string) {
	h := &harness{}
	defer h.close()
	datadriven.RunTestAny(t, path, h.handle)
}

const (
	transcriptRange               = storage.RangeID(1)
	clientNode      kernel.NodeID = 10
)

// harness is one transcript's world. The simulator runs only inside the
// harness's commands, on the test goroutine, so between commands every
// driver is idle and its state can be read directly.
type harness struct {
	sim     *sim.Sim
	layout  Layout
	servers []kernel.NodeID
	stores  map[kernel.NodeID]*Store
	routers map[kernel.NodeID]*Router
	// clients by node and name, for the node's current incarnation.
	clients map[tcClientKey]*Client
	raw     map[kernel.NodeID]*kernel.RPC
	rts     map[kernel.NodeID]kernel.Runtime // the incarnation clients and raw belong to
	ops     map[string]*transcriptOp
	opCount int
	// rangeID is the range the current command is about (range=).
	rangeID storage.RangeID
	// leased counts, per node, the reads its leaders served under a lease
	// since the last `leased` command.
	leased map[kernel.NodeID]int
	// slowApply is Options.SlowApply per node (cluster slow-apply=).
	slowApply map[kernel.NodeID]time.Duration
}

type tcClientKey struct {
	node kernel.NodeID
	name string
}

// transcriptOp is one operation a transcript started.
type transcriptOp struct {
	kind  string
	node  kernel.NodeID
	rt    kernel.Runtime
	bound time.Duration
	start time.Duration
	end   time.Duration
	done  bool
	out   string // the outcome, once done
}

func (h *harness) close() {
	if h.sim != nil {
		h.sim.Close()
		h.sim = nil
	}
}

func (h *harness) handle(t testing.TB, d *datadriven.TestData) string {
	if d.Cmd != "cluster" && h.sim == nil {
		d.Fatalf(t, "no cluster yet")
	}
	h.rangeID = transcriptRange
	if d.HasArg("range") {
		var id uint64
		d.ScanArgs(t, "range", &id)
		h.rangeID = storage.RangeID(id)
	}
	switch d.Cmd {
	case "cluster":
		nodes, seed := 3, 1
		d.MaybeScanArgs(t, "nodes", &nodes)
		d.MaybeScanArgs(t, "seed", &seed)
		h.close()
		h.slowApply = map[kernel.NodeID]time.Duration{}
		if d.HasArg("slow-apply") {
			var n int
			var wait string
			d.ScanArgs(t, "slow-apply", &n, &wait)
			w, err := time.ParseDuration(wait)
			if err != nil {
				d.Fatalf(t, "slow-apply: %v", err)
			}
			h.slowApply[kernel.NodeID(n)] = w
		}
		h.start(uint64(seed), nodes)
		return ""
	case "elect":
		return h.elect(t, d, argNode(t, d, "n"))
	case "put", "get", "cas", "delete", "add-replica", "remove-replica", "split", "merge", "transfer-leader":
		return h.operation(t, d)
	case "burst":
		// count raw puts at once, each one attempt of a client of its own.
		var count int
		d.ScanArgs(t, "count", &count)
		arg := func(k string, v any) datadriven.CmdArg {
			return datadriven.CmdArg{Key: k, Vals: []string{fmt.Sprint(v)}}
		}
		for i := range count {
			h.operation(t, &datadriven.TestData{Pos: d.Pos, Cmd: "put", CmdArgs: []datadriven.CmdArg{
				arg("n", argNode(t, d, "n")), arg("to", argNode(t, d, "to")), arg("client", 1000+i), arg("seq", 1),
				arg("key", fmt.Sprintf("b%04d", i)), arg("value", "x"), arg("name", fmt.Sprintf("burst%d", i)), {Key: "async"}}})
		}
		return ""
	case "leased":
		// The reads each node served alone under its lease since the
		// last `leased`.
		var b strings.Builder
		for _, n := range h.servers {
			fmt.Fprintf(&b, "n%d: %d\n", n, h.leased[n])
		}
		h.leased = map[kernel.NodeID]int{}
		return b.String()
	case "ranges":
		var b strings.Builder
		for _, n := range h.servers {
			if !h.up(n) {
				fmt.Fprintf(&b, "n%d: down\n", n)
				continue
			}
			var parts []string
			for _, desc := range h.stores[n].Descriptors() {
				parts = append(parts, desc.String())
			}
			fmt.Fprintf(&b, "n%d: %s\n", n, strings.Join(parts, " "))
		}
		return b.String()
	case "await":
		var name string
		d.ScanArgs(t, "name", &name)
		op := h.ops[name]
		if op == nil {
			d.Fatalf(t, "no operation %q", name)
		}
		wait := 5 * time.Second
		if d.HasArg("for") {
			wait = argDuration(t, d, "for")
		}
		return h.await(t, op, wait)
	case "partition":
		a, b := argNodes(t, d, "a"), argNodes(t, d, "b")
		h.sim.Net().Partition(a, b)
		return ""
	case "isolate":
		h.sim.Net().Isolate(argNode(t, d, "n"))
		return ""
	case "drop":
		h.sim.Net().PartitionOneWay([]kernel.NodeID{argNode(t, d, "from")}, []kernel.NodeID{argNode(t, d, "to")})
		return ""
	case "clog":
		h.sim.Net().Clog(argNode(t, d, "from"), argNode(t, d, "to"), argDuration(t, d, "for"))
		return ""
	case "heal":
		h.sim.Net().Heal()
		return ""
	case "disk-errors":
		// Injected I/O errors on writes to the node's disk (1: every
		// write).
		var rate float64
		d.ScanArgs(t, "write", &rate)
		h.sim.Node(argNode(t, d, "n")).Disk().SetErrorRates(rate, 0)
		return ""
	case "crash":
		n := argNode(t, d, "n")
		if d.HasArg("when-holds") {
			// Crash n the moment its store holds range when-holds (a
			// replica a split or a snapshot made), before its next step.
			var id uint64
			d.ScanArgs(t, "when-holds", &id)
			holds := func() bool { return h.up(n) && h.stores[n].replicas[storage.RangeID(id)] != nil }
			if !h.runUntil(t, holds, 10*time.Second) {
				d.Fatalf(t, "n%d never held range %d (it holds %v)", n, id, h.stores[n].Descriptors())
			}
		}
		h.sim.Node(n).Crash()
		return ""
	case "restart":
		n := argNode(t, d, "n")
		old := h.stores[n]
		h.sim.Node(n).Restart()
		h.runUntil(t, func() bool { return h.stores[n] != old }, time.Second)
		return ""
	case "pause":
		h.sim.Node(argNode(t, d, "n")).Pause()
		return ""
	case "resume":
		h.sim.Node(argNode(t, d, "n")).Resume()
		return ""
	case "tick":
		ticks := 1
		d.MaybeScanArgs(t, "ticks", &ticks)
		h.runFor(t, time.Duration(ticks)*DefaultTickInterval)
		return ""
	case "run":
		h.runFor(t, argDuration(t, d, "for"))
		return ""
	case "stabilize":
		limit := 10 * time.Second
		if d.HasArg("max") {
			limit = argDuration(t, d, "max")
		}
		return h.stabilize(t, limit)
	case "status":
		var b strings.Builder
		for _, n := range h.servers {
			fmt.Fprintf(&b, "%s\n", h.status(n))
		}
		return b.String()
	case "log":
		return h.log(argNode(t, d, "n"))
	case "members":
		n := argNode(t, d, "n")
		r := h.replica(n)
		if r == nil {
			return fmt.Sprintf("n%d: no replica", n)
		}
		cs := r.log.ConfState()
		return fmt.Sprintf("n%d: voters=%s learners=%s", n, replicaList(cs.Voters), replicaList(cs.Learners))
	case "leader":
		n, term := h.leader()
		if n == 0 {
			return "none"
		}
		return fmt.Sprintf("n%d term=%d", n, term)
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

// start builds the world: servers 1..nodes (the range on the first three)
// and the client-only node.
func (h *harness) start(seed uint64, nodes int) {
	h.sim = sim.New(seed)
	h.sim.Net().LatencyMin, h.sim.Net().LatencyMean = time.Millisecond, 0
	h.servers = nil
	for i := 1; i <= nodes; i++ {
		h.servers = append(h.servers, kernel.NodeID(i))
	}
	layout, err := NewLayout(nil, h.servers, 3)
	if err != nil {
		panic(err)
	}
	h.layout = layout
	h.stores, h.routers = map[kernel.NodeID]*Store{}, map[kernel.NodeID]*Router{}
	h.clients, h.raw, h.rts = map[tcClientKey]*Client{}, map[kernel.NodeID]*kernel.RPC{}, map[kernel.NodeID]kernel.Runtime{}
	h.ops = map[string]*transcriptOp{}
	h.leased = map[kernel.NodeID]int{}
	initial := layout.Ranges()[0].Replicas
	for _, id := range h.servers {
		h.sim.AddNode(id, func(rt kernel.Runtime) {
			eng := openNodeEngine(rt)
			router := NewRouter(rt, h.layout)
			// No meta publishing: the transcripts pin every entry of the logs.
			st, err := Open(rt, eng, h.layout, Options{Router: router, Join: !slices.Contains(initial, rt.NodeID()), MetaInterval: -1,
				LeasedRead: func(storage.RangeID, uint64) { h.leased[rt.NodeID()]++ }, SlowApply: h.slowApply[rt.NodeID()]})
			if err != nil {
				kernel.Crash("open consensus: %v", err)
			}
			h.stores[rt.NodeID()], h.routers[rt.NodeID()] = st, router
		})
	}
	h.sim.AddNode(clientNode, func(rt kernel.Runtime) {
		h.routers[rt.NodeID()] = NewRouter(rt, h.layout)
	})
}

func (h *harness) runFor(t testing.TB, d time.Duration) {
	if err := h.sim.RunFor(d); err != nil {
		t.Fatalf("simulation failed: %v", err)
	}
}

// runUntil runs until done or max passes, and reports whether done holds.
func (h *harness) runUntil(t testing.TB, done func() bool, max time.Duration) bool {
	err := h.sim.RunUntil(done, max)
	var dl *sim.DeadlockError
	switch {
	case err == nil:
		return true
	case errors.Is(err, sim.ErrTimeout), errors.As(err, &dl):
		return false
	}
	t.Fatalf("simulation failed: %v", err)
	return false
}

// up reports whether server n runs (possibly paused) with its store open.
func (h *harness) up(n kernel.NodeID) bool {
	node := h.sim.Node(n)
	return node != nil && node.Up() && h.stores[n] != nil && h.stores[n].rt == node.Runtime()
}

func (h *harness) replica(n kernel.NodeID) *replica {
	if !h.up(n) {
		return nil
	}
	return h.stores[n].replicas[h.rangeID]
}

func stateName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateFollower:
		return "follower"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	}
	return s.String()
}

func (h *harness) status(n kernel.NodeID) string {
	if !h.sim.Node(n).Up() {
		return fmt.Sprintf("n%d: down", n)
	}
	r := h.replica(n)
	if r == nil {
		return fmt.Sprintf("n%d: no replica", n)
	}
	st := r.rn.BasicStatus()
	last, _ := r.log.LastIndex()
	paused := ""
	if h.sim.Node(n).Paused() {
		paused = " (paused)"
	}
	return fmt.Sprintf("n%d: %s term=%d lead=%s commit=%d applied=%d last=%d%s",
		n, stateName(st.RaftState), st.Term, nodeName(nodeOf(st.Lead)), st.Commit, r.log.Applied(), last, paused)
}

func nodeName(n kernel.NodeID) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("n%d", n)
}

// replicaName names a replica by its node, and its generation when a
// membership change made it.
func replicaName(id uint64) string {
	if g := genOf(id); g > 0 {
		return fmt.Sprintf("n%d#%d", nodeOf(id), g)
	}
	return fmt.Sprintf("n%d", nodeOf(id))
}

func replicaList(ids []uint64) string {
	ids = slices.Sorted(slices.Values(ids))
	var names []string
	for _, id := range ids {
		names = append(names, replicaName(id))
	}
	return "[" + strings.Join(names, " ") + "]"
}

// log prints what the node's LogStore has committed to the engine: the
// hard state and the log's bounds, then its last few entries.
func (h *harness) log(n kernel.NodeID) string {
	r := h.replica(n)
	if r == nil {
		return h.status(n)
	}
	hs, _, _ := r.log.InitialState()
	first, _ := r.log.FirstIndex()
	last, _ := r.log.LastIndex()
	var b strings.Builder
	fmt.Fprintf(&b, "n%d: term=%d vote=%s commit=%d applied=%d first=%d last=%d\n",
		n, hs.Term, voteName(hs.Vote), hs.Commit, r.log.Applied(), first, last)
	lo := max(first, last-min(last, 5)+1)
	if last >= lo {
		ents, err := r.log.Entries(lo, last+1, 1<<20)
		if err != nil {
			return fmt.Sprintf("n%d: entries: %v", n, err)
		}
		for _, e := range ents {
			fmt.Fprintf(&b, "  %d/%d %s\n", e.Index, e.Term, describeEntry(e))
		}
	}
	return b.String()
}

func voteName(v uint64) string {
	if v == 0 {
		return "none"
	}
	return replicaName(v)
}

func describeEntry(e raftpb.Entry) string {
	switch e.Type {
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if e.Type == raftpb.EntryConfChange {
			var v1 raftpb.ConfChange
			if err := v1.Unmarshal(e.Data); err != nil {
				return "conf change (undecodable)"
			}
			cc = v1.AsV2()
		} else if err := cc.Unmarshal(e.Data); err != nil {
			return "conf change (undecodable)"
		}
		var parts []string
		for _, c := range cc.Changes {
			parts = append(parts, fmt.Sprintf("%s %s", strings.TrimPrefix(c.Type.String(), "ConfChange"), replicaName(c.NodeID)))
		}
		return "conf " + strings.Join(parts, ", ")
	}
	if len(e.Data) == 0 {
		return "empty"
	}
	p, err := decodeProposal(e.Data)
	if err != nil {
		return "undecodable"
	}
	if p.split != nil {
		return fmt.Sprintf("split at %s: r%d, from generation %d", p.split.key, p.split.newID, p.split.generation)
	}
	if p.freeze != nil {
		return fmt.Sprintf("freeze, from generation %d", *p.freeze)
	}
	if p.merge != nil {
		var keys []string
		for _, kv := range p.merge.data {
			keys = append(keys, fmt.Sprintf("%q=%q", kv.Key, kv.Value))
		}
		return fmt.Sprintf("merge of %v: %s; %d range-local entries", p.merge.right, strings.Join(keys, " "), len(p.merge.local))
	}
	if p.effects == nil {
		return describeRequest(p.req)
	}
	return describeEffects(p.effects.writes)
}

// describeEffects lists an entry's writes to user data ("no writes" for a
// CAS that did not swap, say); range-local bookkeeping is left out.
func describeEffects(writes []byte) string {
	var parts []string
	err := storage.VisitEffects(writes, func(op storage.EffectOp) {
		switch {
		case op.Local:
		case op.Kind == "set":
			parts = append(parts, fmt.Sprintf("set %s=%s", printable(op.Key), printable(op.Value)))
		case op.Kind == "delete":
			parts = append(parts, fmt.Sprintf("delete %s", printable(op.Key)))
		default:
			parts = append(parts, fmt.Sprintf("delete [%s, %s)", printable(op.Key), printable(op.End)))
		}
	})
	if err != nil {
		return "undecodable effects"
	}
	if len(parts) == 0 {
		return "no writes"
	}
	return strings.Join(parts, ", ")
}

// printable is b as it is if it is printable ASCII, or quoted.
func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return strconv.Quote(string(b))
		}
	}
	return string(b)
}

func describeRequest(req Request) string {
	switch req.Op {
	case OpPut:
		return fmt.Sprintf("put %s=%s", req.Key, req.Value)
	case OpDelete:
		return fmt.Sprintf("delete %s", req.Key)
	case OpCAS:
		return fmt.Sprintf("cas %s %q->%s", req.Key, req.Expect, req.Value)
	}
	return fmt.Sprintf("op %d %s", req.Op, req.Key)
}

// leader is the up server that leads the range in the highest term.
func (h *harness) leader() (kernel.NodeID, uint64) {
	var best kernel.NodeID
	var term uint64
	for _, n := range h.servers {
		r := h.replica(n)
		if r == nil {
			continue
		}
		if st := r.rn.BasicStatus(); st.RaftState == raft.StateLeader && st.Term > term {
			best, term = n, st.Term
		}
	}
	return best, term
}

// elect makes n campaign at once, as a leadership transfer does (a
// TimeoutNow: no pre-vote, and voters do not hold to their leader), and
// runs until n leads and has committed its term's first entry.
func (h *harness) elect(t testing.TB, d *datadriven.TestData, n kernel.NodeID) string {
	r := h.replica(n)
	if r == nil {
		d.Fatalf(t, "n%d holds no replica", n)
	}
	m := raftpb.Message{Type: raftpb.MsgTimeoutNow, To: r.id, From: r.id}
	h.sim.Node(n).Runtime().Net().Send(n, raftPort, encodeRaftBatch([]outMsg{{h.rangeID, m}}))
	ok := h.runUntil(t, func() bool {
		r := h.replica(n)
		if r == nil {
			return false
		}
		// Leading, with its term's first entry committed and applied.
		st := r.rn.BasicStatus()
		last, _ := r.log.LastIndex()
		return st.RaftState == raft.StateLeader && st.Commit == last && r.log.Applied() == last
	}, 3*time.Second)
	if !ok {
		return fmt.Sprintf("n%d did not become leader", n)
	}
	return fmt.Sprintf("n%d leads term %d", n, h.replica(n).rn.BasicStatus().Term)
}

// stabilize runs until the servers' states hold still for quiet.
func (h *harness) stabilize(t testing.TB, limit time.Duration) string {
	const step, quiet = 20 * time.Millisecond, 500 * time.Millisecond
	snapshot := func() string {
		var b strings.Builder
		for _, n := range h.servers {
			b.WriteString(h.status(n))
		}
		return b.String()
	}
	prev, still := snapshot(), time.Duration(0)
	for ran := time.Duration(0); ran < limit; ran += step {
		h.runFor(t, step)
		cur := snapshot()
		if cur != prev {
			prev, still = cur, 0
			continue
		}
		if still += step; still >= quiet {
			return ""
		}
	}
	return fmt.Sprintf("not stable after %v", limit)
}

// operation starts a client operation and, unless async, waits for its
// outcome.
func (h *harness) operation(t testing.TB, d *datadriven.TestData) string {
	n := argNode(t, d, "n")
	node := h.sim.Node(n)
	if node == nil || !node.Up() {
		return fmt.Sprintf("n%d is down", n)
	}
	rt := node.Runtime()
	if h.rts[n] != rt {
		h.rts[n] = rt
		for k := range h.clients {
			if k.node == n {
				delete(h.clients, k)
			}
		}
		delete(h.raw, n)
	}
	req := Request{Key: []byte(argString(d, "key", ""))}
	req.Value = []byte(argString(d, "value", ""))
	req.Expect = []byte(argString(d, "expect", ""))
	switch d.Cmd {
	case "put":
		req.Op = OpPut
	case "get":
		req.Op = OpGet
	case "cas":
		req.Op = OpCAS
	case "delete":
		req.Op = OpDelete
	case "split":
		req.Op = OpSplit
	}
	timeout := 2 * time.Second
	if d.HasArg("timeout") {
		timeout = argDuration(t, d, "timeout")
	}
	h.opCount++
	name := argString(d, "name", fmt.Sprintf("op%d", h.opCount))
	op := &transcriptOp{kind: d.Cmd, node: n, rt: rt, start: h.sim.Elapsed()}
	if d.HasArg("bound") {
		op.bound = argDuration(t, d, "bound")
	}
	h.ops[name] = op
	finish := func(out string) {
		op.out, op.done, op.end = out, true, h.sim.Elapsed()
	}
	var run func(ctx context.Context)
	if d.HasArg("seq") || d.HasArg("to") {
		// A raw request: one attempt with the given identity.
		var seq uint64 = 1
		d.MaybeScanArgs(t, "seq", &seq)
		client, err := strconv.ParseUint(argString(d, "client", "1"), 10, 64)
		if err != nil {
			d.Fatalf(t, "raw requests need a numeric client ID: %v", err)
		}
		req.Client, req.Seq = client, seq
		if req.Op == OpSplit {
			// The new range's ID, as Client.Split allocates it.
			var id uint64 = 2
			d.MaybeScanArgs(t, "id", &id)
			req.Value = append(binary.BigEndian.AppendUint64(nil, id), 1)
		}
		to := n
		if d.HasArg("to") {
			to = argNode(t, d, "to")
		}
		rpc := h.raw[n]
		if rpc == nil {
			rpc = kernel.NewRPC(rt, "transcript-raw")
			h.raw[n] = rpc
		}
		run = func(ctx context.Context) {
			b, err := rpc.Call(ctx, to, kvPort, req.encode())
			if err != nil {
				finish(describeError(err))
				return
			}
			resp, err := decodeResponse(b)
			if err != nil {
				finish(describeError(err))
				return
			}
			finish(describeResponse(req.Op, resp))
		}
	} else {
		key := tcClientKey{n, argString(d, "client", "c")}
		cl := h.clients[key]
		if cl == nil {
			cl = NewClient(h.routers[n], key.name)
			h.clients[key] = cl
		}
		var target kernel.NodeID
		if d.Cmd == "add-replica" || d.Cmd == "remove-replica" || d.Cmd == "transfer-leader" {
			target = argNode(t, d, "node")
		}
		run = func(ctx context.Context) {
			var resp Response
			var err error
			switch d.Cmd {
			case "split":
				var id storage.RangeID
				if id, err = cl.Split(ctx, req.Key); err == nil {
					finish(fmt.Sprintf("r%d starts at %s", id, req.Key))
					return
				}
			case "merge":
				if err = cl.Merge(ctx, req.Key); err == nil {
					finish(fmt.Sprintf("merged at %s", req.Key))
					return
				}
			case "add-replica":
				err = cl.AddReplica(ctx, req.Key, target)
			case "remove-replica":
				err = cl.RemoveReplica(ctx, req.Key, target)
			case "transfer-leader":
				err = cl.TransferLeadership(ctx, req.Key, target)
			default:
				resp, err = cl.Do(ctx, req)
			}
			if err != nil {
				finish(describeError(err))
				return
			}
			finish(fmt.Sprintf("%s (leader %s)", describeResponse(req.Op, resp), nodeName(cl.router.Leader(cl.router.Lookup(req.Key).ID))))
		}
	}
	rt.Go("transcript "+name, func(ctx context.Context) {
		actx, cancel := rt.WithTimeout(ctx, timeout)
		defer cancel()
		run(actx)
	})
	if d.HasArg("async") {
		return ""
	}
	return h.await(t, op, timeout+time.Second)
}

func (h *harness) await(t testing.TB, op *transcriptOp, wait time.Duration) string {
	gone := func() bool { return h.sim.Node(op.node).Runtime() != op.rt }
	h.runUntil(t, func() bool { return op.done || gone() }, wait)
	switch {
	case op.done:
	case gone():
		return "no answer: the client's node crashed"
	default:
		return fmt.Sprintf("no answer after %v", wait)
	}
	out := op.out
	if op.bound > 0 {
		if took := op.end - op.start; took <= op.bound {
			out += fmt.Sprintf(", within %v", op.bound)
		} else {
			out += fmt.Sprintf(", took %v (over %v)", took, op.bound)
		}
	}
	return out
}

func describeResponse(op Op, resp Response) string {
	switch op {
	case OpGet:
		if !resp.Found {
			return "not found"
		}
		return fmt.Sprintf("value=%s", resp.Value)
	case OpCAS:
		if resp.OK {
			return "swapped"
		}
		return "not swapped"
	}
	return "ok"
}

func describeError(err error) string {
	if nl, ok := AsNotLeader(err); ok {
		return fmt.Sprintf("not leader (hint %s, term %d)", nodeName(nl.Leader), nl.Term)
	}
	if rm, ok := AsRangeMismatch(err); ok {
		return fmt.Sprintf("range mismatch for %s: ranges now %v", rm.Key, rm.Ranges)
	}
	switch {
	case errors.Is(err, ErrIndeterminate):
		return "error: outcome unknown (ErrIndeterminate)"
	case errors.Is(err, ErrNotApplied):
		return "error: not applied (ErrNotApplied)"
	case errors.Is(err, context.DeadlineExceeded):
		return "no reply before the deadline"
	}
	return "error: " + err.Error()
}

func argString(d *datadriven.TestData, key, def string) string {
	if a, ok := d.Arg(key); ok && len(a.Vals) > 0 {
		return a.Vals[0]
	}
	return def
}

func argNode(t testing.TB, d *datadriven.TestData, key string) kernel.NodeID {
	var n uint64
	d.ScanArgs(t, key, &n)
	return kernel.NodeID(n)
}

func argNodes(t testing.TB, d *datadriven.TestData, key string) []kernel.NodeID {
	a, ok := d.Arg(key)
	if !ok {
		d.Fatalf(t, "missing argument %s", key)
	}
	var out []kernel.NodeID
	for _, v := range a.Vals {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			d.Fatalf(t, "%s: %v", key, err)
		}
		out = append(out, kernel.NodeID(n))
	}
	return out
}

func argDuration(t testing.TB, d *datadriven.TestData, key string) time.Duration {
	v, err := time.ParseDuration(argString(d, key, ""))
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return v
}
