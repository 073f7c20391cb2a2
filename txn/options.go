package txn

import (
	"errors"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// Options configure the transactional keyspace's machine and its
// clients. The zero value is valid: NewMachine and NewDB fill in the
// defaults.
type Options struct {
	// HeartbeatInterval is how often a coordinator tells its record's
	// range that its transaction is alive; HeartbeatExpiry is how long a
	// record may go unheard of before a transaction that meets one of
	// its intents aborts it. Defaults 1 s and 2 s (docs/txn.md, step 6).
	HeartbeatInterval time.Duration
	HeartbeatExpiry   time.Duration
	// CoordinatorSilence: a pending transaction whose record has not
	// been heartbeaten for CoordinatorSilence, and whose coordinator's
	// node the record's leaseholder has heard nothing from for as long
	// (NodeSilence), is aborted by whoever pushes it, without waiting
	// for HeartbeatExpiry. A paused or cut-off coordinator held up
	// every transaction that met its intents until its heartbeat
	// expired (Jepsen sql-bank: other nodes' clients waited 2.1–2.7 s
	// after a pause); its node falls silent sooner, as CockroachDB's
	// pushers act on the coordinator's node liveness. Aborting a
	// pending transaction is always safe: the record is the one point
	// of decision, and the coordinator's commit then fails with a
	// retry. Default 500 ms (five missed health pings); negative: off,
	// only the heartbeat expiry counts.
	CoordinatorSilence time.Duration
	// NodeSilence says how long this node has heard nothing from node
	// (consensus.Store.Silence), false if it cannot tell. kernel/node
	// sets it; nil: no node is ever taken for silent.
	NodeSilence func(node kernel.NodeID) (time.Duration, bool)
	// CacheSpans bounds each range's timestamp cache (spans kept before
	// its low-water mark rises). Default 10,000.
	CacheSpans int
	// MaxRetries bounds how often DB.Txn runs its function again after a
	// retryable conflict. Default 20.
	MaxRetries int
	// GCTTL is how long old versions stay readable: garbage collection
	// (DB.CollectGarbage) removes every version a read at now − GCTTL
	// would not see, and the records of transactions settled before then
	// whose coordinators did not clean up; a read below now − GCTTL plus
	// the clock's maximum offset is refused (ErrRetry). Default 25 h, as
	// CockroachDB's.
	GCTTL time.Duration
	// GCInterval is how often a node collects the garbage of the ranges
	// it leads (kernel/node). Default 10 minutes; negative: never.
	GCInterval time.Duration
	// WoundAfter is how long an older transaction waits for a younger one
	// that holds a key it needs before it wounds (aborts) it. Wounding at
	// once prevents deadlocks but aborts a holder that was about to
	// commit: on a hot key every newcomer that took the lock was wounded
	// by an older waiter (half the attempts failed). Waiting first lets
	// short holds finish; a deadlock still ends within WoundAfter (as
	// PostgreSQL's deadlock_timeout). Default 50 ms; negative: at once.
	WoundAfter time.Duration
	// BatchBytes bounds one command's share of a large transaction: a
	// coordinator writes its intents in batches of about this many bytes
	// (keys and values, one range each), and a leaseholder resolves about
	// this many bytes of intents per command, so that a transaction of
	// any size (a COPY of a million rows) never needs a proposal beyond
	// consensus.MaxProposalBytes. Default 1 MiB.
	BatchBytes int
	// RecordKeyBytes bounds the keys a transaction record lists: past it
	// the record keeps one span per range instead (as CockroachDB
	// condenses its lock spans), resolved by scanning the span. Default
	// 64 KiB.
	RecordKeyBytes int
	// RowPrefix, if set, groups keys into rows that a split never divides:
	// for a caller's key it returns the prefix every key of its row
	// shares, or nil if the key stands alone. An object stored as several
	// keys (an actor's directory entry, state and callers' records:
	// actor.RecordPrefix) then stays in one range, so a transaction on it
	// commits in one phase however the keyspace splits, by size or by
	// load (a load split of a hot object would otherwise cut it at its
	// busiest keys). kernel/node sets it; nil: any key may start a range.
	RowPrefix func(key []byte) []byte
	// PendingResolutions bounds how many of a DB's commits may still have
	// intents to resolve while it answers and goes on: a commit answers
	// once its decision is durable, and a task of the DB resolves its
	// intents after (docs/txn.md, "Asynchronous resolution"). Past the
	// bound a commit resolves before it answers. Default 1 (a commit's
	// resolution overlaps the DB's next transaction); negative: never
	// asynchronously.
	PendingResolutions int
	// Settling is the finalized-transaction cache the node's DBs share
	// (NewSettling): the outcomes of their commits still being resolved,
	// which their requests carry. kernel/node sets one per node; nil:
	// each DB keeps its own.
	Settling *Settling
}

// The defaults of Options.
const (
	DefaultHeartbeatInterval  = time.Second
	DefaultHeartbeatExpiry    = 2 * time.Second
	DefaultCoordinatorSilence = 500 * time.Millisecond
	DefaultCacheSpans         = 10_000
	DefaultMaxRetries         = 20
	DefaultGCTTL              = 25 * time.Hour
	DefaultGCInterval         = 10 * time.Minute
	DefaultWoundAfter         = 50 * time.Millisecond
	DefaultBatchBytes         = 1 << 20
	DefaultRecordKeyBytes     = 64 << 10
	DefaultPendingResolutions = 1
)

// maxPendingResolutions bounds Options.PendingResolutions (and so a
// command's finalized list).
const maxPendingResolutions = 256

// minCoordinatorSilence is the least CoordinatorSilence: three health
// pings' intervals.
const minCoordinatorSilence = 300 * time.Millisecond

// ErrInvalidOptions wraps every problem Validate reports.
var ErrInvalidOptions = errors.New("txn: invalid options")

// EnsureDefaults fills in every unset field and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.HeartbeatExpiry == 0 {
		o.HeartbeatExpiry = DefaultHeartbeatExpiry
	}
	if o.CoordinatorSilence == 0 {
		o.CoordinatorSilence = DefaultCoordinatorSilence
	}
	if o.CacheSpans == 0 {
		o.CacheSpans = DefaultCacheSpans
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.GCTTL == 0 {
		o.GCTTL = DefaultGCTTL
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.WoundAfter == 0 {
		o.WoundAfter = DefaultWoundAfter
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.RecordKeyBytes == 0 {
		o.RecordKeyBytes = DefaultRecordKeyBytes
	}
	if o.PendingResolutions == 0 {
		o.PendingResolutions = DefaultPendingResolutions
	}
	return o
}

// Validate reports every problem with o at once. Call it after
// EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	if o.HeartbeatInterval <= 0 || o.HeartbeatExpiry < 2*o.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("%w: HeartbeatExpiry %v must be at least twice HeartbeatInterval %v (one lost heartbeat must not abort a live transaction)", ErrInvalidOptions, o.HeartbeatExpiry, o.HeartbeatInterval))
	}
	if o.CoordinatorSilence > 0 && o.CoordinatorSilence < minCoordinatorSilence {
		errs = append(errs, fmt.Errorf("%w: CoordinatorSilence %v must be at least %v (health pings come every 100 ms; one late ping must not abort a live transaction)", ErrInvalidOptions, o.CoordinatorSilence, minCoordinatorSilence))
	}
	if o.CacheSpans < 1 {
		errs = append(errs, fmt.Errorf("%w: CacheSpans %d must be positive", ErrInvalidOptions, o.CacheSpans))
	}
	if o.GCTTL < time.Second {
		errs = append(errs, fmt.Errorf("%w: GCTTL %v must be at least a second", ErrInvalidOptions, o.GCTTL))
	}
	if o.BatchBytes < 1 || o.BatchBytes > consensus.MaxProposalBytes/4 {
		errs = append(errs, fmt.Errorf("%w: BatchBytes %d must be positive and at most a quarter of a proposal (%d)", ErrInvalidOptions, o.BatchBytes, consensus.MaxProposalBytes/4))
	}
	if o.RecordKeyBytes < 1 || o.RecordKeyBytes > consensus.MaxProposalBytes/4 {
		errs = append(errs, fmt.Errorf("%w: RecordKeyBytes %d must be positive and at most a quarter of a proposal (%d)", ErrInvalidOptions, o.RecordKeyBytes, consensus.MaxProposalBytes/4))
	}
	if o.PendingResolutions > maxPendingResolutions {
		errs = append(errs, fmt.Errorf("%w: PendingResolutions %d must be at most %d (the requests of the node's DBs carry their outcomes)", ErrInvalidOptions, o.PendingResolutions, maxPendingResolutions))
	}
	if o.MaxRetries < 1 {
		errs = append(errs, fmt.Errorf("%w: MaxRetries %d must be positive", ErrInvalidOptions, o.MaxRetries))
	}
	return errors.Join(errs...)
}
