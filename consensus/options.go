package consensus

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Options configure a Store. The zero value is valid: Open fills in the
// defaults (EnsureDefaults) and refuses what does not hold together
// (Validate).
//
// What is not here is fixed for the whole cluster, because every node must
// agree on it: the message bounds (MaxProposalBytes, MaxBatchBytes and the
// Raft flow-control limits in store.go) and the log entry envelope
// (wire.go).
type Options struct {
	// Keyspaces are the spans whose keys a state machine owns, in key
	// order (statemachine.go, docs/consensus.md "Keyspaces"): OpCommand
	// and OpQuery go to the one holding their key, and are refused where
	// none does.
	Keyspaces []Keyspace
	// Join starts the node without bootstrapping the layout's initial
	// replicas: it holds only what membership changes add to it. A node
	// that joins a running cluster, or comes back with a wiped disk, must
	// start this way: bootstrapping again would bring back its old replicas
	// (the same Raft IDs) with their votes forgotten.
	Join bool
	// BecameLeader, if set, hears of every replica here that wins an
	// election (tests, metrics). It runs on the driver and must not block.
	BecameLeader func(id storage.RangeID, term uint64)
	// LostLeadership, if set, hears of every replica here that stops
	// leading (it stepped down, or it was removed). Same rules.
	LostLeadership func(id storage.RangeID, term uint64)
	// Router, if set, is the node's router (the one its clients use): it
	// learns every leader change a replica here sees, the moment it sees
	// it, so that clients stop waiting on a lost leader.
	Router *Router

	// Timing, in ticks (STYLE.md: logical time in the core, durations at
	// the edge). TickInterval is the driver's clock; a follower that hears
	// from no leader for ElectionTicks to 2×ElectionTicks ticks (Raft
	// randomizes it) campaigns; a leader sends heartbeats every
	// HeartbeatTicks. Defaults: 20 ms, 10 (200 ms), 2 (40 ms).
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int

	// Leader leases (lease.go): a leader a quorum confirmed lately serves
	// reads alone, without a ReadIndex round. MaxClockDrift is the most
	// any node's clock may run fast or slow against true time, as a
	// fraction (0.05: 5%); a lease lasts (ElectionTicks-1) tick intervals
	// shrunk by (1-MaxClockDrift)/(1+MaxClockDrift). Clock steps do not
	// matter (leases read the monotonic clock). DisableLeases sends every
	// read through a ReadIndex round, for clocks that cannot promise the
	// bound. Default: leases on, 0.05 (real clocks drift by 0.01% or
	// less; the margin costs only a shorter lease, renewed every
	// heartbeat or so).
	DisableLeases bool
	MaxClockDrift float64
	// Clock, if set, is the node's hybrid logical clock (kernel/hlc).
	// A leader stamps commands with its physical part (CommandMeta.
	// NowMillis: what Redis expirations are measured against), which
	// does not follow a step of the wall clock, so a clock stepped by a
	// minute does not expire keys a minute early; and the clock-offset
	// check (clockoffset.go) measures it against the peers' and fences it
	// while it is too far from most of them (its MaxOffset is the
	// bound). Nil: commands are stamped with the runtime's Now, and
	// nothing is checked.
	Clock *hlc.Clock
	// Applied, if set, hears of every write a replica here applies (on
	// every replica, leader or not), with its leader's stamp (0 for a
	// plain put, delete or CAS): what wakes clients blocked on a key, and
	// what the applied-write metrics count. Same rules as BecameLeader.
	Applied func(id storage.RangeID, nowMillis int64)
	// Synced, if set, hears of every synced write of a Ready cycle: how
	// long the sync took and how many bytes the batch wrote. Every write
	// on the node waits for it (etcd's wal_fsync_duration_seconds; in the
	// simulator it reads 0). Same rules as BecameLeader.
	Synced func(took time.Duration, bytes int)
	// LeasedRead, if set, hears of every read a leader serves under its
	// lease, at the moment it decides to (the simulator's lease-safety
	// check). Same rules as BecameLeader.
	LeasedRead func(id storage.RangeID, term uint64)

	// Adaptive group commit (Store.drive): a cycle that proposed
	// GroupCommitBusyWrites or more writes makes the next one wait
	// GroupCommitWait before taking its events, so that one synced write
	// carries more. Reads never count: they need no sync to share, and a
	// wait only delays them; a lone client never waits. Nor do writes to
	// a range whose only voter is this node: its own sync commits them,
	// and the writes that arrive while it runs join the next cycle anyway
	// (on one node the wait cost 10–25% of SET throughput at 50 clients,
	// docs/performance.md; on three it gains). Defaults: 500 µs, 8. A
	// negative wait turns it off.
	GroupCommitWait       time.Duration
	GroupCommitBusyWrites int

	// SplitBytes, if positive, splits a range whose user data (keys and
	// values) exceeds it, in bytes: its leader measures the range after
	// every SplitBytes/4 of writes and splits it at the key that halves it
	// (split.go), or at a key the StateMachine picks near it if it is a
	// SplitKeyer. It needs Router (the split goes through a client made
	// from it). Default 0: no automatic splits.
	SplitBytes int64
	// SplitQPS, if positive, splits a range whose leader serves more than
	// SplitQPS requests a second (reads and writes, over 2 s windows) at
	// a key that divides its requests about evenly (load.go), as
	// CockroachDB's load-based splitting does. It needs Router. Default
	// 0: no load-based splits.
	SplitQPS int
	// MergeBytes, if positive, merges small cold neighbours (merge.go): a
	// leader whose range (not the first) took no write for
	// mergeCheckTicks and holds at most MergeBytes of user data merges
	// it into its left neighbour if that holds at most MergeBytes too. At
	// most MaxMergeBytes, and at most SplitBytes/4 (a merged range must be
	// far from splitting again). Needs SplitBytes (the splitter task does
	// the measuring). Default 0: no automatic merges.
	MergeBytes int64
	// MetaInterval is how often a leader hands its ranges' descriptors to
	// the node's meta task, which publishes to the meta range those that
	// changed (meta.go); at most every tick. It needs Router. Default
	// 1 s; negative: never (tests that pin a log's every entry).
	MetaInterval time.Duration

	// SlowApply, for tests only (orbit serve leaves it zero), makes
	// every replica a slow state machine on purpose: Raft hands out one
	// committed entry per Ready, and each cycle that applies one waits
	// this long first. A leader with a backlog then lags its commit
	// index, and its followers, for as long as the backlog lasts: what a
	// leader catching up on more than MaxCommittedSizePerReady goes
	// through, and what the transcripts use to put a split past a page
	// (testdata/transcripts/11_paged_split.txt). The simulator's
	// consensus.paged-apply perturbation does the same to a replica now
	// and then, with a random wait of 1–20 ms.
	SlowApply time.Duration
}

// The defaults of Options.
const (
	DefaultTickInterval          = 20 * time.Millisecond
	DefaultElectionTicks         = 10
	DefaultHeartbeatTicks        = 2
	DefaultGroupCommitWait       = 500 * time.Microsecond
	DefaultGroupCommitBusyWrites = 8
	DefaultMaxClockDrift         = 0.05
	DefaultMetaInterval          = time.Second
)

// ErrInvalidOptions wraps every problem Validate reports.
var ErrInvalidOptions = errors.New("consensus: invalid options")

// EnsureDefaults fills in every unset field and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.TickInterval == 0 {
		o.TickInterval = DefaultTickInterval
	}
	if o.ElectionTicks == 0 {
		o.ElectionTicks = DefaultElectionTicks
	}
	if o.HeartbeatTicks == 0 {
		o.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if o.GroupCommitWait == 0 {
		o.GroupCommitWait = DefaultGroupCommitWait
	}
	if o.GroupCommitBusyWrites == 0 {
		o.GroupCommitBusyWrites = DefaultGroupCommitBusyWrites
	}
	if o.MaxClockDrift == 0 {
		o.MaxClockDrift = DefaultMaxClockDrift
	}
	if o.MetaInterval == 0 {
		o.MetaInterval = DefaultMetaInterval
	}
	return o
}

// Validate reports every problem with o at once, each wrapping
// ErrInvalidOptions. Call it after EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.TickInterval < time.Millisecond || o.TickInterval > time.Second {
		bad("TickInterval %v must be in [1ms, 1s]", o.TickInterval)
	}
	if o.HeartbeatTicks < 1 {
		bad("HeartbeatTicks %d must be at least 1", o.HeartbeatTicks)
	}
	// Raft's own rule, and room for a heartbeat to be lost and the next
	// to arrive before anyone campaigns.
	if o.ElectionTicks <= 2*o.HeartbeatTicks {
		bad("ElectionTicks %d must exceed twice HeartbeatTicks (%d)", o.ElectionTicks, o.HeartbeatTicks)
	}
	if o.GroupCommitWait > 10*time.Millisecond {
		bad("GroupCommitWait %v must be at most 10ms (it delays every write of a busy cycle)", o.GroupCommitWait)
	}
	if o.SlowApply < 0 || o.SlowApply > time.Second {
		bad("SlowApply %v must be in [0, 1s]", o.SlowApply)
	}
	if o.GroupCommitBusyWrites < 1 {
		bad("GroupCommitBusyWrites %d must be at least 1", o.GroupCommitBusyWrites)
	}
	if !(o.MaxClockDrift > 0 && o.MaxClockDrift <= 0.2) {
		bad("MaxClockDrift %v must be in (0, 0.2]", o.MaxClockDrift)
	}
	for _, p := range validateKeyspaces(o.Keyspaces) {
		bad("%s", p)
	}
	if o.SplitBytes < 0 {
		bad("SplitBytes %d must not be negative (0: no automatic splits)", o.SplitBytes)
	}
	if o.SplitQPS < 0 {
		bad("SplitQPS %d must not be negative (0: no load-based splits)", o.SplitQPS)
	}
	if (o.SplitBytes > 0 || o.SplitQPS > 0) && o.Router == nil {
		bad("SplitBytes and SplitQPS need a Router: automatic splits go through a client")
	}
	if o.MergeBytes < 0 || o.MergeBytes > MaxMergeBytes {
		bad("MergeBytes %d must be in [0, %d] (0: no automatic merges; a merge carries the range in one log entry)", o.MergeBytes, MaxMergeBytes)
	}
	if o.MergeBytes > 0 && (o.SplitBytes <= 0 || o.MergeBytes > o.SplitBytes/4) {
		bad("MergeBytes %d needs SplitBytes at least 4 times as large (it is %d): merged ranges would split again", o.MergeBytes, o.SplitBytes)
	}
	return errors.Join(errs...)
}

// String renders the tunable fields, one "name=value" per line under a
// [Consensus] header (what a failing simulator seed prints).
func (o *Options) String() string {
	var b strings.Builder
	b.WriteString("[Consensus]\n")
	fmt.Fprintf(&b, "  join=%t\n", o.Join)
	for _, k := range o.Keyspaces {
		fmt.Fprintf(&b, "  keyspace=%s [%q, %q)\n", k.Name, k.Start, k.End)
	}
	fmt.Fprintf(&b, "  tick_interval=%v\n", o.TickInterval)
	fmt.Fprintf(&b, "  election_ticks=%d\n", o.ElectionTicks)
	fmt.Fprintf(&b, "  heartbeat_ticks=%d\n", o.HeartbeatTicks)
	fmt.Fprintf(&b, "  group_commit_wait=%v\n", o.GroupCommitWait)
	fmt.Fprintf(&b, "  group_commit_busy_writes=%d\n", o.GroupCommitBusyWrites)
	fmt.Fprintf(&b, "  leases=%t\n", !o.DisableLeases)
	fmt.Fprintf(&b, "  max_clock_drift=%v (lease %v)\n", o.MaxClockDrift, o.leaseDuration())
	fmt.Fprintf(&b, "  split_bytes=%d\n", o.SplitBytes)
	fmt.Fprintf(&b, "  split_qps=%d\n", o.SplitQPS)
	fmt.Fprintf(&b, "  merge_bytes=%d\n", o.MergeBytes)
	fmt.Fprintf(&b, "  meta_interval=%v\n", o.MetaInterval)
	fmt.Fprintf(&b, "  max_proposal_bytes=%d (fixed)\n", MaxProposalBytes)
	fmt.Fprintf(&b, "  max_batch_bytes=%d (fixed)\n", MaxBatchBytes)
	return b.String()
}
