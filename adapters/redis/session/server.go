// Package session is the connection layer of Orbit's Redis adapter: what a
// Redis server does between the socket and the data. It owns each
// connection's state (protocol version, name, MULTI queue, WATCHed keys,
// subscriptions), answers the connection and server commands itself, and
// sends every data command to the range that holds its keys through a pool
// of consensus clients: writes through the Raft log, reads at the leader
// (under its lease, or at a ReadIndex).
//
// It is pure in the DESIGN.md sense: no sockets, no wall clock, no bare
// goroutines. Time, tasks and randomness come from the kernel.Runtime, so
// the simulator can drive it as well as the production wire
// (adapters/respwire), which calls Conn.Do for each command and writes the
// replies in the connection's protocol.
//
// What differs from a single redis-server:
//
//   - A multi-key command (MSET, SINTERSTORE, RENAME, ...) and a MULTI/EXEC
//     transaction are atomic whatever ranges their keys lie in: over one
//     range (keys sharing a {hash tag} always share one) it is one
//     command of that range; over several, a cross-range transaction
//     (txn.go; docs/txn.md, step 7) that decides in the transactional
//     keyspace (Options.NewDB; without it the reply is Redis Cluster's
//     "CROSSSLOT Keys in request don't hash to the same slot", for a
//     transaction at EXEC, and nothing runs). A command naming a key such
//     a transaction holds waits for it, up to LockTimeout, and then
//     settles it.
//   - Inside MULTI every command is queued, as in Redis. The keyed ones
//     (blocking commands do not block there, as in Redis) run at EXEC as
//     one atomic command on their range; a server or keyspace-wide
//     command (CONFIG SET, FLUSHALL, SELECT, ...) runs where it stands in
//     the queue, between atomic runs of the keyed commands, so such a
//     transaction is atomic only piecewise.
//   - WATCH remembers a digest of each key's records and EXEC checks it
//     atomically with the queued commands: a key changed and changed back
//     to an identical value, type and TTL does not abort the transaction.
//   - PUBLISH reaches the subscribers of every node, as in Redis Cluster:
//     the node that receives it delivers to its own subscribers and
//     forwards the message on the network (port PubSubPort) to every other
//     node, which delivers to its subscribers of the channel and of the
//     matching patterns. As in Redis Cluster, the reply counts the clients
//     of the receiving node only, and delivery to the other nodes is best
//     effort: a message the network drops (a node down or partitioned, a
//     full inbox) is not retried, and messages published through different
//     nodes may arrive in different orders on different nodes. A node
//     delivers a forwarded message at most once: duplicates the network
//     makes are dropped by (origin node, incarnation, sequence number),
//     within a window of the last 1024 messages from each origin. PUBSUB
//     CHANNELS, NUMSUB and NUMPAT count this node's subscriptions only,
//     as in Redis Cluster.
//   - Blocked clients (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//     BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK) are woken by writes
//     applied on this node and otherwise retry on a short poll
//     (BlockPoll), so a push through another node is seen within a poll.
//     A blocked client that goes away (Conn.Gone) stops waiting and takes
//     nothing. A blocked XREAD waits for entries after the IDs its first
//     step read, "$" resolved then (redis.RetryArgs), and is served with
//     COUNT 1000 when it gave none, as Redis serves a blocked client; when
//     entries arrive on several of its keys at once it gets all of them
//     (Redis: the first key served), and a blocked XREADGROUP whose group
//     or stream goes away gets XREADGROUP's NOGROUP error (Redis: "NOGROUP
//     the consumer group this client was blocked on no longer exists", or
//     "UNBLOCKED the stream key no longer exists"). An entry added and
//     deleted while an XREAD waits does not wake it (Redis wakes it with
//     no entries).
//   - SELECT takes databases 0 to 15, as Redis does by default; a
//     connection's database goes with every command it sends
//     (redis.InDB).
package session

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Version is the Redis version Orbit reports (HELLO, INFO): the one whose
// replies it reproduces.
const Version = "7.0.15"

// Options configure a Server.
type Options struct {
	// Runtime is the node's runtime. Required.
	Runtime kernel.Runtime
	// Wall, if set, is the clock cross-range transactions' decisions are
	// dated by (DecisionTTL is measured on it). Default: the runtime's
	// Now. A node passes its hybrid logical clock's physical part
	// (kernel/hlc), which does not follow a step of the wall clock, so a
	// clock stepped a minute ahead does not collect decisions a minute
	// early.
	Wall func() time.Time
	// Layout is the cluster's ranges at bootstrap (the range cache's
	// first guess and the default Peers). Required.
	Layout consensus.Layout
	// Router is the node's router, shared with its consensus.Store
	// (consensus.Options.Router) so that every pooled client learns a new
	// leader the moment the node does. Default: a router of the server's
	// own, fed only by its clients' replies.
	Router *consensus.Router
	// Clients is the most consensus clients in the pool, so the most
	// commands in flight at once from this node's connections (each client
	// has one request in flight: its sequence numbers are how the range
	// applies a retried write once). The first min(Clients,
	// InitialClients) are made at start, the others as the load needs
	// them. Default 1024: 64 left a pipelining load queued in the pool
	// with the driver idle half the time (redis-benchmark -c 50 -P 16:
	// 12 k SET/s with 64, 22 k with 512, docs/performance.md).
	Clients int
	// CommandTimeout bounds one command's trip through consensus. Default
	// 10 s.
	CommandTimeout time.Duration
	// BlockPoll is how often a blocked client re-checks its keys when no
	// write applied on this node woke it. Default 100 ms.
	BlockPoll time.Duration
	// ExpirePeriod is how often active expiry sweeps one of the ranges led
	// from this node (in turn) for expired keys; ExpireBatch bounds the
	// keys one sweep visits, so the node visits at most that many a period
	// (expireLoop says why). Defaults 100 ms and 200. A negative period
	// turns active expiry off.
	ExpirePeriod time.Duration
	ExpireBatch  int
	// Info adds "name:value" lines to INFO's server section (the wire's
	// address, the process ID, ...), in order.
	Info []string
	// HostInfo, if set, gives the lines of INFO's sections that describe
	// the process rather than the data: "memory" and "cpu" (the session
	// layer is pure and cannot read them itself).
	HostInfo func(section string) []string
	// Ranges, if set, returns the ranges this node holds replicas of now
	// (consensus.Store.Ranges): active expiry sweeps those it leads, and
	// INFO lists them. Default: the range cache (a server with no store
	// of its own, in tests).
	Ranges func() []consensus.Descriptor
	// RangeInfo, if set, adds fields to a range's INFO line (after
	// "leader=..."), e.g. what the node applied of it. It must not block.
	RangeInfo func(id storage.RangeID) string
	// Network, if set, carries PUBLISHed messages to the other nodes
	// (Peers), and brings theirs, on port PubSubPort. Nil: PUBLISH reaches
	// this node's subscribers only.
	Network kernel.Network
	// Peers returns every node of the cluster now (this one may be listed;
	// it is skipped): nodes join and leave. Default: the layout's nodes.
	Peers func() []kernel.NodeID
	// NewDB, if set, makes clients of the transactional keyspace
	// (kernel/node's Node.NewDB), where commands and MULTI/EXEC blocks
	// whose keys lie in more than one range decide their outcome
	// (txn.go). Unset: such a command gets CROSSSLOT, as from Redis
	// Cluster.
	NewDB func(name string) (*txn.DB, error)
	// Transactions is the most cross-range transactions deciding at once
	// (the DBs made with NewDB). Default 16.
	Transactions int
	// LockTimeout is how long a command waits on a cross-range
	// transaction's lock before it decides that transaction itself
	// (aborted, unless it committed). Default 1 s.
	LockTimeout time.Duration
	// LockSweepPeriod is how often each range led from this node is
	// searched for locks older than LockTimeout, which are then settled
	// as a command meeting them would (txn.go): a transaction whose
	// coordinator died keeps a lock on a key nobody touches again
	// otherwise. Default 5 s; negative: never.
	LockSweepPeriod time.Duration
	// DecisionTTL is how old the decision of a cross-range transaction
	// whose coordinator died before deleting it must be before it is
	// collected, every DecisionGCInterval, on every node (txn.go,
	// collectDecisions). It must be far longer than a coordinator may
	// take to decide (twice CommandTimeout; Validate asks for at least
	// four times CommandTimeout). Defaults 1 h and 10 min;
	// DecisionGCInterval negative: never.
	DecisionTTL        time.Duration
	DecisionGCInterval time.Duration
	// Config adds fixed parameters to what CONFIG GET reports, or changes
	// a default (config.go lists the parameters and what CONFIG SET may do
	// with each).
	Config map[string]string
}

// ErrInvalidOptions wraps every problem Validate reports.
var ErrInvalidOptions = errors.New("session: invalid options")

const (
	// DefaultClients is Options.Clients' default.
	DefaultClients = 1024
	// InitialClients is how many of the pool's clients are made at start.
	InitialClients = 64
)

// EnsureDefaults fills in every unset field (see each field's default) and
// returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Clients <= 0 {
		o.Clients = DefaultClients
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 10 * time.Second
	}
	if o.BlockPoll <= 0 {
		o.BlockPoll = 100 * time.Millisecond
	}
	if o.ExpirePeriod == 0 {
		o.ExpirePeriod = 100 * time.Millisecond
	}
	if o.Peers == nil {
		o.Peers = o.Layout.Nodes
	}
	if o.ExpireBatch <= 0 {
		o.ExpireBatch = 200
	}
	if o.Transactions <= 0 {
		o.Transactions = 16
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.LockSweepPeriod == 0 {
		o.LockSweepPeriod = 5 * time.Second
	}
	if o.DecisionTTL <= 0 {
		o.DecisionTTL = time.Hour
	}
	if o.Wall == nil && o.Runtime != nil {
		o.Wall = o.Runtime.Now
	}
	if o.DecisionGCInterval == 0 {
		o.DecisionGCInterval = 10 * time.Minute
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
	if o.Runtime == nil {
		bad("Runtime is nil")
	}
	if len(o.Layout.Ranges()) == 0 {
		bad("Layout has no ranges")
	}
	for _, k := range sortedKeys(o.Config) {
		if msg := validConfig(k, o.Config[k]); msg != "" {
			bad("Config[%q] = %q: %s", k, o.Config[k], msg)
		}
	}
	if o.BlockPoll < time.Millisecond {
		bad("BlockPoll %v must be at least 1ms", o.BlockPoll)
	}
	if o.CommandTimeout < time.Millisecond {
		bad("CommandTimeout %v must be at least 1ms", o.CommandTimeout)
	}
	if o.LockTimeout < 8*time.Millisecond {
		bad("LockTimeout %v must be at least 8ms", o.LockTimeout)
	}
	if o.DecisionTTL < 4*o.CommandTimeout {
		bad("DecisionTTL %v must be at least 4 times CommandTimeout %v (a coordinator decides within twice CommandTimeout)", o.DecisionTTL, o.CommandTimeout)
	}
	if o.LockSweepPeriod > 0 && o.LockSweepPeriod < time.Millisecond {
		bad("LockSweepPeriod %v must be at least 1ms (or negative: off)", o.LockSweepPeriod)
	}
	if o.ExpirePeriod > 0 && o.ExpirePeriod < time.Millisecond {
		bad("ExpirePeriod %v must be at least 1ms (or negative: off)", o.ExpirePeriod)
	}
	return errors.Join(errs...)
}

// Server is the state shared by a node's Redis connections.
type Server struct {
	opts   Options
	rt     kernel.Runtime
	router *consensus.Router // the range cache, shared with the pool's clients
	// pool holds the idle consensus clients; made counts the clients made
	// (guarded by mu), at most opts.Clients (client).
	pool  *kernel.Mailbox[*consensus.Client]
	made  int
	dbs   *kernel.Mailbox[*txn.DB] // nil: no transactional keyspace (txn.go)
	sm    *redis.StateMachine
	start time.Time

	mu      sync.Mutex // guards what follows; never held across a blocking call
	nextID  int64
	conns   map[int64]*Conn
	cursors *redis.CursorTable
	// channels and patterns map a pub/sub name to its subscribers.
	channels, patterns map[string]map[*Conn]bool
	// writes counts writes applied on this node; wake broadcasts on it.
	writes  uint64
	wake    kernel.Cond
	blocked int
	// led is, per range, the term in which a replica on this node last won
	// an election (0: never seen).
	led map[storage.RangeID]uint64
	// ready is set once a write went through every range.
	ready bool
	stats *cmdStats // INFO's counters; its own lock
	// slowlog is SLOWLOG's (slowlog.go); its own lock.
	slowlog slowLog
	// monitors are MONITOR's (monitor.go); their own lock.
	monitors monitors
	config   *configTable // CONFIG GET/SET; under mu
	// pubEpoch names this incarnation of the server and pubSeq numbers the
	// messages it forwarded (pubsub.go).
	pubEpoch, pubSeq uint64
	// scripts are the Lua scripts this node has seen (scripts.go).
	scripts scriptCache
	// functions is the parsed libraries of the record last read
	// (functions.go).
	functions functionIndexCache
	// notify is notify-keyspace-events' classes (notifyFlags).
	notify atomic.Uint32
	// acl is the users of the ACL record last read (acl.go).
	acl aclCache
	// dbsMade numbers the DBs made for cross-range transactions.
	dbsMade int
}

// New returns a server; call Start to warm up and begin active expiry.
func New(opts Options) (*Server, error) {
	if err := opts.EnsureDefaults().Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, rt: opts.Runtime, router: opts.Router,
		pool:  kernel.NewMailbox[*consensus.Client](opts.Runtime, "redis client pool", opts.Clients),
		start: opts.Runtime.Now(),
		conns: map[int64]*Conn{}, cursors: redis.NewCursorTable(4096),
		channels: map[string]map[*Conn]bool{}, patterns: map[string]map[*Conn]bool{},
		led: map[storage.RangeID]uint64{}, stats: newCmdStats(), config: newConfigTable(opts.Config),
	}
	s.notify.Store(uint32(s.config.notifyFlags()))
	s.configureSlowlog()
	s.wake = s.rt.NewCond(&s.mu, "redis: blocked clients")
	s.sm = &redis.StateMachine{}
	if s.router == nil {
		s.router = consensus.NewRouter(opts.Runtime, opts.Layout)
	}
	if s.opts.Ranges == nil {
		s.opts.Ranges = s.router.Ranges
	}
	for range min(opts.Clients, InitialClients) {
		c, _ := s.grow()
		s.pool.Send(c)
	}
	if opts.NewDB != nil {
		// Empty slots: a DB is made the first time its slot is taken
		// (txn.go), so a node that never runs a cross-range command
		// makes none.
		s.dbs = kernel.NewMailbox[*txn.DB](opts.Runtime, "redis transactions", opts.Transactions)
		for range opts.Transactions {
			s.dbs.Send(nil)
		}
	}
	if opts.Network != nil {
		s.pubEpoch = s.rt.Rand().Uint64()
		inbox := opts.Network.Listen(PubSubPort)
		s.rt.Go("redis pubsub receiver", func(ctx context.Context) { s.receivePubsub(ctx, inbox) })
	}
	return s, nil
}

// StateMachine is what the node's consensus.Store must run
// (consensus.Options.StateMachine).
func (s *Server) StateMachine() *redis.StateMachine { return s.sm }

// BecameLeader is for consensus.Options.BecameLeader: it records which
// ranges this node leads (INFO, active expiry).
func (s *Server) BecameLeader(id storage.RangeID, term uint64) {
	s.mu.Lock()
	s.led[id] = term
	s.mu.Unlock()
}

// LostLeadership is for consensus.Options.LostLeadership: the replica here
// stopped leading the range (stepped down, or was removed).
func (s *Server) LostLeadership(id storage.RangeID, term uint64) {
	s.mu.Lock()
	if s.led[id] <= term {
		delete(s.led, id)
	}
	s.mu.Unlock()
}

// Leading returns the ranges a replica on this node leads now, with the
// term it won, in range ID order.
func (s *Server) Leading() []RangeTerm {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RangeTerm
	for id, t := range s.led {
		out = append(out, RangeTerm{Range: id, Term: t})
	}
	slices.SortFunc(out, func(a, b RangeTerm) int { return cmp.Compare(a.Range, b.Range) })
	return out
}

// RangeTerm is a range led from this node and the term it was won in.
type RangeTerm struct {
	Range storage.RangeID
	Term  uint64
}

// Probe reads from every range at a ReadIndex, which needs the range's
// leader and a quorum behind it: it answers nil when every range can
// serve right now, else the first that could not. ctx bounds it.
func (s *Server) Probe(ctx context.Context) error {
	return s.walk(ctx, true, nil, func(pos []byte) []byte { return redis.SweepCommand(pos, nil, 1) }, nil)
}

// Applied is for consensus.Options.Applied: it runs on the consensus
// driver after every write a replica here applies, and wakes the clients
// blocked here. It must not block.
func (s *Server) Applied(storage.RangeID, int64) {
	s.mu.Lock()
	s.writes++
	if s.blocked > 0 {
		s.wake.Broadcast()
	}
	s.mu.Unlock()
}

// Start writes through every range (a sweep) until each has answered, then
// marks the server ready and starts active expiry. It returns when ready or
// when ctx ends.
func (s *Server) Start(ctx context.Context) error {
	for {
		err := s.walk(ctx, false, nil, func(pos []byte) []byte { return redis.SweepCommand(pos, nil, 1) }, nil)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for every range: %w", err)
		}
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	if s.opts.ExpirePeriod > 0 {
		s.rt.Go("redis expiry", s.expireLoop)
	}
	if s.opts.LockSweepPeriod > 0 && s.dbs != nil {
		s.rt.Go("redis lock sweeper", s.lockSweepLoop)
	}
	if s.opts.DecisionGCInterval > 0 && s.dbs != nil {
		s.rt.Go("redis decision gc", s.decisionLoop)
	}
	if s.dbs != nil {
		s.rt.Go("redis acl", s.aclLoop)
	}
	return nil
}

// Ready reports whether every range has served a write.
func (s *Server) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// expireLoop is active expiry: every period, one range this node leads
// (Options.Ranges, led per BecameLeader), the next in key order after the
// last one swept, is asked by a read whether the next batch of its keys
// holds expired ones, and only then a sweep is proposed (so an idle range
// costs no log writes). A range whose batch held expired keys is swept
// again the next period before the turn moves on, as Redis's active
// expiry repeats while it keeps finding them. Each range resumes where its
// last sweep stopped; the sweep is routed by that position, so a range
// that split meanwhile is swept where the position now lies.
//
// One range a period, not every range: the node then visits at most
// ExpireBatch keys a period however many ranges its keys have split into.
// A batch from every led range each period made the sweeps' key visits
// grow with the data: a fifth of the CPU of GETs at three million keys in
// 32 ranges, every key visited every 1.6 s (docs/performance.md,
// "Millions of keys"). Expired keys a sweep has not reached yet are invisible
// to every command meanwhile (they expire when read), as in Redis.
func (s *Server) expireLoop(ctx context.Context) {
	resume := map[storage.RangeID][]byte{}
	var turn sweepTurn
	for s.rt.Sleep(ctx, s.opts.ExpirePeriod) == nil {
		d, ok := turn.next(s.ledRanges())
		if !ok {
			continue
		}
		pos := resume[d.ID]
		if pos == nil || !d.Contains(pos) || bytes.Compare(pos, redis.KeyspaceEnd) >= 0 {
			pos = d.Start
		}
		delete(resume, d.ID)
		cmd := redis.SweepCommand(pos, nil, s.opts.ExpireBatch)
		r, err := s.command(ctx, pos, cmd, true)
		if err != nil || len(r.Elems) != 2 {
			continue
		}
		if r.Elems[0].Int > 0 {
			if r, err = s.command(ctx, pos, cmd, false); err != nil || len(r.Elems) != 2 {
				continue
			}
			turn.again = true
		}
		if r.Elems[1].Kind == redis.KindBulk {
			resume[d.ID] = r.Elems[1].Str
		}
	}
}

// sweepTurn is whose turn it is in active expiry.
type sweepTurn struct {
	started bool   // a range was swept already
	last    []byte // the start of the range swept last
	again   bool   // it had expired keys: sweep it again
}

// next picks the Redis range to sweep now from led (in any order) and
// records it as the last: the one swept last again if again, else the
// first starting after it in key order, wrapping around to the first. ok
// is false when no led range holds Redis keys.
func (t *sweepTurn) next(led []consensus.Descriptor) (d consensus.Descriptor, ok bool) {
	var first, next *consensus.Descriptor
	for i := range led {
		c := &led[i]
		if bytes.Compare(c.Start, redis.KeyspaceEnd) >= 0 {
			continue // the system keyspace: not Redis's
		}
		cmp := bytes.Compare(c.Start, t.last)
		if t.started && t.again && cmp == 0 {
			next = c
			break
		}
		if first == nil || bytes.Compare(c.Start, first.Start) < 0 {
			first = c
		}
		if (!t.started || cmp > 0) && (next == nil || bytes.Compare(c.Start, next.Start) < 0) {
			next = c
		}
	}
	if next == nil {
		next = first
	}
	if next == nil {
		return consensus.Descriptor{}, false
	}
	t.started, t.last, t.again = true, next.Start, false
	return *next, true
}

// ledRanges are the ranges this node leads (Options.Ranges, led per
// BecameLeader; every range on a single node).
func (s *Server) ledRanges() []consensus.Descriptor {
	ranges := s.opts.Ranges()
	s.mu.Lock()
	defer s.mu.Unlock()
	var led []consensus.Descriptor
	for _, d := range ranges {
		if s.led[d.ID] != 0 || len(s.opts.Layout.Nodes()) == 1 {
			led = append(led, d)
		}
	}
	return led
}

// lockSweepLoop settles, every LockSweepPeriod, the locks older than
// LockTimeout in the Redis ranges this node leads (Options.LockSweepPeriod
// says why).
func (s *Server) lockSweepLoop(ctx context.Context) {
	for s.rt.Sleep(ctx, s.opts.LockSweepPeriod) == nil {
		for _, d := range s.ledRanges() {
			if bytes.Compare(d.Start, redis.KeyspaceEnd) < 0 {
				s.sweepLocks(ctx, d)
			}
		}
	}
}

// maxSweptLocks bounds the locks one sweep of a range looks at.
const maxSweptLocks = 1000

// sweepLocks walks range d's locks in key order and settles each one
// older than LockTimeout; a range found without a lock and without the
// certificate that it holds none is sent one to take (adapters/redis,
// locks.go: while the certificate stands its commands skip their lock
// reads). A failure ends the sweep; the next one tries again.
func (s *Server) sweepLocks(ctx context.Context, d consensus.Descriptor) {
	var after []byte
	for range maxSweptLocks {
		r, err := s.command(ctx, d.Start, redis.LockScanCommand(d.Start, after), true)
		if err == nil && after == nil && redis.LockScanWantsCertificate(r) {
			_, _ = s.command(ctx, d.Start, redis.CertifyCommand(d.Start), false) // the next sweep tries again
			return
		}
		id, rk, age, ok := redis.ParseLockScan(r)
		if err != nil || !ok {
			return
		}
		unit := time.Millisecond
		if mutation.On(MutSweepAgeInMicros) {
			unit = time.Microsecond
		}
		if time.Duration(age)*unit >= s.opts.LockTimeout {
			if s.settleLock(ctx, id, rk) != nil {
				return
			}
		}
		after = rk
	}
}

// walk runs cmd on every range of the Redis keyspace from from (nil: its
// first key) to KeyspaceEnd, in key order: cmd(pos) routed by pos, then
// again at the end of the range that ran it, as that range's reply says.
// So each key is covered once however the ranges split meanwhile, without
// trusting the range cache; a walk is not a snapshot across ranges (as a
// Redis Cluster client's walk over nodes is not). each, if set, sees every
// reply and the position it ran at, and returns false to stop. A failure of consensus is returned.
func (s *Server) walk(ctx context.Context, read bool, from []byte, cmd func(pos []byte) []byte, each func(pos []byte, r redis.Reply) bool) error {
	pos := from
	if pos == nil {
		pos = []byte{}
	}
	for bytes.Compare(pos, redis.KeyspaceEnd) < 0 {
		r, d, err := s.commandAt(ctx, pos, cmd(pos), read)
		if err != nil {
			return err
		}
		if each != nil && !each(pos, r) {
			return nil
		}
		if d.End == nil {
			return nil
		}
		pos = d.End
	}
	return nil
}

// command runs one state-machine command on the range holding route: a
// read (Query) or a write (Command), with a client from the pool.
func (s *Server) command(ctx context.Context, route, cmd []byte, read bool) (redis.Reply, error) {
	r, _, err := s.commandAt(ctx, route, cmd, read)
	return r, err
}

// commandAt is command, and also returns the range that ran it. A
// command that meets a key a cross-range transaction locks waits for
// the lock to go, and once the lock is older than LockTimeout settles
// the transaction itself (txn.go).
func (s *Server) commandAt(ctx context.Context, route, cmd []byte, read bool) (redis.Reply, consensus.Descriptor, error) {
	ctx, cancel := s.rt.WithTimeout(ctx, s.opts.CommandTimeout)
	defer cancel()
	wait := time.Millisecond
	for {
		r, d, err := s.commandOnce(ctx, route, cmd, read)
		id, rk, age, locked := redis.LockedBy(r)
		if err != nil || !locked {
			return r, d, err
		}
		if time.Duration(age)*time.Millisecond >= s.opts.LockTimeout {
			err = s.settleLock(ctx, id, rk)
		}
		if err == nil {
			err = s.rt.Sleep(ctx, wait)
			wait = min(2*wait, s.opts.LockTimeout/8)
		}
		if err != nil {
			return redis.Reply{}, consensus.Descriptor{}, errors.Join(consensus.ErrNotApplied, err)
		}
	}
}

// commandOnce sends cmd once (the consensus client retries it as its
// contract says).
func (s *Server) commandOnce(ctx context.Context, route, cmd []byte, read bool) (redis.Reply, consensus.Descriptor, error) {
	c, err := s.client(ctx)
	if err != nil {
		return redis.Reply{}, consensus.Descriptor{}, errors.Join(consensus.ErrNotApplied, err)
	}
	defer s.pool.Send(c)
	op := consensus.OpCommand
	if read {
		op = consensus.OpQuery
	}
	notify := s.notifyFlags()
	resp, err := c.Do(ctx, consensus.Request{Op: op, Key: route, Value: redis.WithNotify(notify, cmd)})
	if err != nil {
		return redis.Reply{}, consensus.Descriptor{}, err
	}
	if resp.Range.ID == 0 || !resp.Range.Contains(route) {
		// An older server's reply, or a bug: a walk cannot go on from it.
		return redis.Reply{}, consensus.Descriptor{}, fmt.Errorf("session: the reply names range %v, which does not hold %q", resp.Range, route)
	}
	r, err := redis.DecodeReply(resp.Value)
	r.Events = s.publishEvents(notify, r.Events)
	return r, resp.Range, err
}

// client takes an idle client from the pool, makes one if none is idle
// and fewer than Options.Clients exist, and otherwise waits for one. Put
// it back with s.pool.Send.
func (s *Server) client(ctx context.Context) (*consensus.Client, error) {
	if c, ok := s.pool.TryRecv(); ok {
		return c, nil
	}
	if c, ok := s.grow(); ok {
		return c, nil
	}
	return s.pool.Recv(ctx)
}

// grow makes one more of the pool's clients, unless Options.Clients exist.
func (s *Server) grow() (*consensus.Client, bool) {
	s.mu.Lock()
	i := s.made
	if i >= s.opts.Clients {
		s.mu.Unlock()
		return nil, false
	}
	s.made++
	s.mu.Unlock()
	return consensus.NewClient(s.router, fmt.Sprintf("redis-%d", i)), true
}

// failure is the reply to a command consensus could not run.
func failure(err error) redis.Reply {
	switch {
	case errors.Is(err, consensus.ErrCrossRange):
		// The keys were in one range as this node's range cache had it,
		// but not at the range's leader (a split the cache had not seen).
		return redis.Error(redis.ErrCrossSlot)
	case errors.Is(err, consensus.ErrTooLarge):
		return redis.Error(fmt.Sprintf("ERR the command's write is larger than a replicated write may be (%d bytes)", consensus.MaxProposalBytes))
	case errors.Is(err, consensus.ErrIndeterminate):
		return redis.Error("ERR write outcome unknown (the range leader did not confirm it in time); read the key to find out")
	case errors.Is(err, consensus.ErrNotApplied):
		return redis.Error("TRYAGAIN the range has no leader right now; the command was not applied")
	case errors.Is(err, txn.ErrClockOffset):
		// This node's clock is fenced (not checked against its peers'
		// yet, or beyond the bound from them), or a leaseholder refused
		// its clock: another node, or this one once its clock is
		// checked, takes the command.
		return redis.Error("TRYAGAIN " + err.Error())
	}
	return redis.Error("ERR internal error: " + err.Error())
}

// rangeOf returns the range holding every key, or ok false if they span
// ranges. No keys: the first range.
func (s *Server) rangeOf(keys [][]byte) (d consensus.Descriptor, route []byte, ok bool) {
	if len(keys) == 0 {
		d = s.router.Lookup(nil)
		return d, d.Start, true
	}
	route = redis.RouteKey(keys[0])
	d = s.router.Lookup(route)
	for _, k := range keys[1:] {
		if !d.Contains(redis.RouteKey(k)) {
			return d, nil, false
		}
	}
	return d, route, true
}

// slotSpan names a range's slots for INFO.
func slotSpan(d consensus.Descriptor) string {
	first, last := 0, redis.SlotCount-1
	if len(d.Start) >= 2 {
		first = int(d.Start[0])<<8 | int(d.Start[1])
	}
	if len(d.End) >= 2 {
		last = (int(d.End[0])<<8 | int(d.End[1])) - 1
	}
	return fmt.Sprintf("%d-%d", first, last)
}

// Stats are counters for INFO and metrics.
type Stats struct {
	Connections, Blocked, PubSubChannels, PubSubPatterns int
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Connections: len(s.conns), Blocked: s.blocked, PubSubChannels: len(s.channels), PubSubPatterns: len(s.patterns)}
}

// publish delivers msg to this node's subscribers of channel and of the
// patterns matching it, forwards it to the other nodes, and returns how
// many clients of this node received it.
// publishEvents publishes the keyspace events of a command that ran,
// on the channels flags name (redis.Event.Messages), to every node's
// subscribers, and returns nil: the events are done with.
func (s *Server) publishEvents(flags uint16, events []redis.Event) []redis.Event {
	for _, e := range events {
		for _, m := range e.Messages(flags) {
			s.publish(m[0], m[1])
		}
	}
	return nil
}

func (s *Server) publish(channel, msg []byte) int64 {
	n := s.deliver(channel, msg)
	s.forward(channel, msg)
	return n
}

// deliver delivers msg to this node's subscribers of channel and of the
// patterns matching it, and returns how many received it.
func (s *Server) deliver(channel, msg []byte) int64 {
	type delivery struct {
		c *Conn
		r []redis.Reply
	}
	var out []delivery
	s.mu.Lock()
	for _, c := range sortedConns(s.channels[string(channel)]) {
		out = append(out, delivery{c, []redis.Reply{redis.BulkString("message"), redis.Bulk(channel), redis.Bulk(msg)}})
	}
	for _, p := range sortedKeys(s.patterns) {
		if !redis.GlobMatch([]byte(p), channel) {
			continue
		}
		for _, c := range sortedConns(s.patterns[p]) {
			out = append(out, delivery{c, []redis.Reply{redis.BulkString("pmessage"), redis.BulkString(p), redis.Bulk(channel), redis.Bulk(msg)}})
		}
	}
	s.mu.Unlock()
	for _, d := range out {
		if d.c.push != nil {
			d.c.push(redis.Push(d.r...))
		}
	}
	return int64(len(out))
}

func sortedConns(m map[*Conn]bool) []*Conn {
	out := make([]*Conn, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Conn) int { return int(a.id - b.id) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
