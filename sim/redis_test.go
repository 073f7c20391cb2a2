package sim

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/node"
)

// The Redis scenario (issue 4, point 7): the kv scenario's cluster and
// faults, with Redis commands instead of key-value requests, run by the same
// pure code that `orbit serve` runs. Each server node opens storage and
// consensus with the Redis state machine of a session.Server, as
// cmd/orbit/serve.go does; each client node has its own session.Server (one
// consensus client in its pool) and one connection on it, and sends Redis
// commands as [][]byte through session.Conn.Do, exactly as the RESP wire
// does. The range a command goes to, the encoding through the log, MULTI/EXEC
// and WATCH, and the error replies for unknown outcomes are therefore the
// production ones.
//
// The checks: Porcupine against a model of Redis string keys (GET, SET,
// SET NX/XX, DEL, INCR, GETSET, WATCH/MULTI/EXEC compare-and-set) and of
// the seed's command families (redis_families_test.go: every type, with
// deletes, emptying, type changes, TTLs judged by the leader-stamped time,
// MULTI blocks with failing commands, WATCH on every type; every reply
// checked by the mini-Redis of redis_mini_test.go); a list and a set
// invariant for RPUSH and SADD; keys set with SET PX gone from every
// replica by the end (active expiry through the log); every range's
// replicas equal after quiescence; every range back on every node; every
// client served after the heal; election safety; no reply of an unexpected
// shape; no crash loop after the heal.

// Sync latency and disk errors as the plan draws them. Bit flips
// (FaultCorrupt) are not taken yet: the crash-loop check after the heal
// would need to tell a damaged node waiting to be rebuilt from a loop.
var redisScenario = Scenario{
	Name:         "redis",
	Setup:        func(s *Sim) Workload { return setupRedis(s, redisCorrect) },
	Adjust:       adjustRedisPlan,
	FaultTime:    5 * time.Second,
	ProgressTime: 30 * time.Second,
	QuiesceTime:  3 * time.Second,
}

// adjustRedisPlan keeps clocks within 500 ppm and steps within 120 ms:
// the expiry check wants keys set with a TTL gone within 3 s of the
// clients stopping, and a leader whose clock was stepped back 5 s stamps
// time that stands still that long. And leaders stamp with their hybrid
// logical clock's physical part, which does not follow a step of more
// than half the maximum offset (kernel/hlc), while the model bounds each
// stamp by the servers' wall-clock readings (stampClock): two steps of at
// most 120 ms between two readings stay within what the clock follows.
func adjustRedisPlan(p *Plan) {
	p.ClockRatePPM = min(p.ClockRatePPM, 500)
	p.ClockStep = min(p.ClockStep, 120*time.Millisecond)
}

// redisBroken selects a deliberately broken variant, to prove the checks
// bite.
type redisBroken int

const (
	redisCorrect redisBroken = iota
	// redisLyingClient: every 3rd SET of each client is answered OK
	// without being sent.
	redisLyingClient
	// redisNoWatch: the compare-and-set transaction is sent without its
	// WATCH, so EXEC always runs.
	redisNoWatch
	// redisDroppingReplica: node 3's state machine runs every 10th write it
	// applies without storing its effects.
	redisDroppingReplica
)

func brokenRedisScenario(b redisBroken, name string) Scenario {
	sc := redisScenario
	sc.Name = name
	sc.Setup = func(s *Sim) Workload { return setupRedis(s, b) }
	return sc
}

const redisFirstClient kernel.NodeID = 101

const (
	redisClients = 6
	redisRanges  = 4
)

// The hot keys, spread over the four ranges (slot/4096: a 3, b 0, c 1, d 2,
// w1 3, w2 0, l1 2, l2 1, s1 3, s2 0). The w keys take only writes of values
// never written before, so WATCH/MULTI/EXEC on them is a compare-and-set
// (see rCAS); the others also take DEL and INCR.
var (
	redisMixedKeys = []string{"a", "b", "c", "d"}
	redisCASKeys   = []string{"w1", "w2"}
	redisListKeys  = []string{"l1", "l2"}
	redisSetKeys   = []string{"s1", "s2"}
	// redisTTLKeys (t1 range 2, t3 range 0) are set with a TTL of tens of
	// milliseconds: active expiry must have removed them from every replica
	// by the end (checkExpired), through the log (checkConvergence).
	redisTTLKeys = []string{"t1", "t3"}
)

// collOp is one RPUSH or SADD: its element, when it was called and
// returned (the history's logical clock), its reply, and its outcome.
type collOp struct {
	client    int
	elem      string
	call, ret int64
	reply     int64
	status    outcome
}

type outcome int

const (
	definite   outcome = iota
	notApplied         // TRYAGAIN: definitely not applied
	unknownOut         // "ERR write outcome unknown": maybe applied
)

type redisCluster struct {
	*serverSet
	s      *Sim
	broken redisBroken
	// walks: the seed's clients run KEYS, SCAN, DBSIZE and RANDOMKEY now
	// and then, and the final checks compare them (redis_walks_test.go);
	// half the seeds, so that the other half's traces stay put.
	walks bool
	drops map[kernel.NodeID]int // redisDroppingReplica: writes applied

	opTimeout                        time.Duration
	hist                             *redisHistory
	stopped                          bool
	healed                           int64
	served                           []int64 // per client: virtual time of its last definite answer
	running                          int     // client loops not yet finished
	ok, unknown, refused, cas, casOK int
	// anomalies are replies no correct server gives (a wrong shape, an
	// unexpected error); any fails the check.
	anomalies []string
	colls     map[string][]*collOp
	final     map[string][]string // the final LRANGE / SMEMBERS
	finalDone bool
	stoppedAt time.Duration
	// abandoned are the lists whose blocked reader went away
	// (redis_blocked_test.go).
	abandoned []abandonedList
	// unblocked are the lists whose blocked reader was unblocked
	// (redis_blocked_test.go).
	unblocked []unblockedList
	// dbWrites are keys written in databases other than 0, and dbFinal
	// their final reads there and in database 0 (redis_databases_test.go).
	dbWrites []dbWrite
	dbFinal  map[string][2]string
	ttlSets  int

	// The seed's command families (redis_families_test.go).
	mix                          redisMix
	stamps                       *stampClock
	familyOps, blocks, blocksRan int
	// watchIDs numbers the clients' WATCHes (redisInput.WatchID).
	watchIDs int
	// splitBytes is the stores' Options.SplitBytes (0: no splits, and
	// no merges); merges counts the merges done.
	splitBytes int64
	merges     int
	// boots counts each server's restarts after the heal from a crash in
	// apply (see boot).
	boots map[kernel.NodeID]int
}

// openWrites are a client's writes with unknown outcomes, by settleUnit.
type openWrites map[string][]int

// settleUnit is what a client's answered write settles its open writes
// by: the session's single consensus client numbers its writes, and a
// range refuses a number below the last it applied for the client, so
// once a later write to the range is answered the open ones of the range
// cannot apply. With splits, only for the same key: a range that split
// before the answered write applied gave its right-hand half a copy of
// the client table without that write's number, and an open write to a
// key there (a request the network still holds) may apply after it.
func (c *redisCluster) settleUnit(key string) string {
	if c.splitBytes > 0 {
		return "key " + key
	}
	return fmt.Sprintf("range %d", c.rangeOf(key).ID)
}

// redisSplitBytes is the split size of the seeds that split (a quarter):
// small enough that a run's writes split its ranges many times.
const redisSplitBytes = 300

// crashLoopBoots is how many restarts of one node after the heal from a
// crash in apply make a crash loop. The disks work again then, so a command
// whose apply fails fails for a bug (a corrupt record), on every replica.
const crashLoopBoots = 5

func setupRedis(s *Sim, broken redisBroken) Workload {
	servers := []kernel.NodeID{1, 2, 3}
	layout, err := consensus.NewLayout(redis.SlotSplits(redisRanges), servers, 3)
	if err != nil {
		panic(err)
	}
	c := &redisCluster{s: s, broken: broken, drops: map[kernel.NodeID]int{},
		opTimeout: time.Second, healed: -1, served: make([]int64, redisClients),
		colls: map[string][]*collOp{}, mix: drawMix(s.Seed()), stamps: &stampClock{}, boots: map[kernel.NodeID]int{}}
	c.hist = &redisHistory{s: s, stamps: c.stamps}
	c.walks = aimedSeed(s.Seed(), "redis.walks", nil)
	// Half the seeds split their ranges as they grow (at slot boundaries,
	// a few hundred bytes each), so that commands, walks (KEYS, SCAN,
	// DBSIZE, FLUSHALL), WATCH and blocking waits meet ranges that split
	// under them, with faults. (Odd seeds run without leases: the two
	// choices cross.)
	if s.Seed()%4 >= 2 {
		c.splitBytes = redisSplitBytes
	}
	c.serverSet = newServerSet(s, servers, layout, c.boot)
	if c.splitBytes > 0 {
		// And ranges merge back while the faults last, so that the same
		// commands meet ranges that vanish under them too.
		s.AddNode(splitterNode, func(rt kernel.Runtime) {
			rt.Go("merger", func(ctx context.Context) { c.mergeRanges(ctx, rt) })
		})
	}
	c.running = redisClients
	for i := range redisClients {
		s.AddNode(redisFirstClient+kernel.NodeID(i), func(rt kernel.Runtime) {
			rt.Go("redis client", func(ctx context.Context) { c.client(ctx, rt, i) })
		})
	}
	return c
}

// mergeRanges merges a range drawn among those there are (the first
// excepted) into its left neighbour every few hundred milliseconds, while
// the faults last.
func (c *redisCluster) mergeRanges(ctx context.Context, rt kernel.Runtime) {
	cl := consensus.NewClient(consensus.NewRouter(rt, c.layout), "merger")
	rng := rt.Rand()
	for !c.faultsOver {
		if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(300*time.Millisecond))) != nil {
			return
		}
		if mergeRandomRange(ctx, rt, cl) == nil {
			c.merges++
		}
	}
}

// boot is a server node as orbit serve builds it (serverSet.bootNode):
// storage, the Redis session layer as its ranges' state machine,
// consensus, and the cluster manager.
func (c *redisCluster) boot(rt kernel.Runtime) {
	// A node that crashes as it starts (an entry whose apply fails on
	// every replica: a corrupt record) is restarted within milliseconds
	// after the heal, again and again, for the whole progress time: hours
	// of wall time and gigabytes of disk images. Stop the run as the
	// failure it is.
	if c.faultsOver && strings.Contains(c.s.crashReason, ": apply command: ") {
		c.boots[rt.NodeID()]++
		if n := c.boots[rt.NodeID()]; n == crashLoopBoots && c.s.failure == nil {
			c.s.failure = fmt.Errorf("crash loop: node %d restarted %d times after a crash in apply since the heal (at %v); its last crash: %s",
				rt.NodeID(), n, c.s.Elapsed(), c.s.crashReason)
		}
	}
	rt = stampRuntime{Runtime: rt, s: c.s, clock: c.stamps}
	// No client connects to a server node here (the clients run their own
	// sessions), so the session's pool serves its start-up and active
	// expiry only. The harness moves replicas itself (serverSet.membership):
	// no rebalancer.
	opts := node.Options{
		Consensus: consensus.Options{SplitBytes: c.splitBytes, MergeBytes: c.splitBytes / 4},
		Cluster:   cluster.Options{RebalanceInterval: -1},
		Redis:     &session.Options{Clients: 4},
	}
	if c.broken == redisDroppingReplica && rt.NodeID() == 3 {
		opts.WrapRedis = func(sm *redis.StateMachine) consensus.StateMachine {
			return &droppingStateMachine{inner: sm, count: func() int { c.drops[3]++; return c.drops[3] }}
		}
	}
	c.bootNode(rt, c.openEngine(rt), c.nodes, opts)
}

// droppingStateMachine is broken on purpose: every 10th write applies
// without storing its effects (its reply is computed as usual).
type droppingStateMachine struct {
	inner consensus.StateMachine
	count func() int
}

func (d *droppingStateMachine) Apply(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta) ([]byte, error) {
	if d.count()%10 == 0 {
		data = discardWrites{data}
	}
	return d.inner.Apply(data, cmd, meta)
}

// SplitKey keeps Redis's split points (slot boundaries) under the broken
// apply.
func (d *droppingStateMachine) SplitKey(start, end, halving []byte) []byte {
	return (&redis.StateMachine{}).SplitKey(start, end, halving)
}

func (d *droppingStateMachine) Query(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta) ([]byte, error) {
	return d.inner.Query(data, cmd, meta)
}

type discardWrites struct{ consensus.RangeData }

func (discardWrites) Set(key, value []byte) error         { return nil }
func (discardWrites) Delete(key []byte) error             { return nil }
func (discardWrites) DeleteRange(start, end []byte) error { return nil }

// redisConn is one client's connection: Do with a deadline.
type redisConn struct {
	c    *redisCluster
	rt   kernel.Runtime
	ctx  context.Context
	conn *session.Conn
}

func (rc redisConn) do(args ...string) redis.Reply {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	ctx, cancel := rc.rt.WithTimeout(rc.ctx, rc.c.opTimeout)
	defer cancel()
	replies, _ := rc.conn.Do(ctx, b)
	if len(replies) != 1 {
		rc.c.anomaly("%q: %d replies", args, len(replies))
		return redis.Error("ERR harness: no reply")
	}
	return replies[0]
}

// outcomeOf tells the session's replies for commands consensus could not
// run (session.failure) from the command's own replies.
func outcomeOf(r redis.Reply) outcome {
	if r.Kind == redis.KindError {
		switch s := string(r.Str); {
		case strings.HasPrefix(s, "TRYAGAIN "):
			return notApplied
		case strings.HasPrefix(s, "ERR write outcome unknown"):
			return unknownOut
		}
	}
	return definite
}

func (c *redisCluster) anomaly(format string, args ...any) {
	if len(c.anomalies) < 20 {
		c.anomalies = append(c.anomalies, fmt.Sprintf("at %v: ", c.s.Elapsed())+fmt.Sprintf(format, args...))
	}
}

func (c *redisCluster) rangeOf(key string) consensus.Descriptor {
	return c.layout.Lookup(redis.RouteKey([]byte(key)))
}

// client is one simulated Redis client: its own session server with one
// consensus client, one connection, and a loop of commands.
func (c *redisCluster) client(ctx context.Context, rt kernel.Runtime, i int) {
	sess, err := session.New(session.Options{Runtime: rt, Layout: c.layout, Clients: 1, CommandTimeout: c.opTimeout, ExpirePeriod: -1})
	if err != nil {
		panic(err) // the harness's own options
	}
	conn := sess.NewConn(fmt.Sprintf("client-%d", i), nil)
	defer conn.Close()
	rc := redisConn{c: c, rt: rt, ctx: ctx, conn: conn}
	rng := rt.Rand()
	open := openWrites{}
	settle := func(key string, ret int64) {
		u := c.settleUnit(key)
		for _, op := range open[u] {
			c.hist.Bound(op, ret)
		}
		delete(open, u)
	}
	sets := 0
	for n := 0; !c.stopped; n++ {
		var served bool
		family := rng.IntN(100) < c.mix.share
		walk := c.walks && rng.IntN(100) == 0
		switch r := rng.IntN(100); {
		case walk:
			served = c.walkOp(rc, rng)
		case family:
			served = c.familyOp(rc, i, n, rng, open, settle)
		case r < 2 && rng.IntN(2) == 0:
			served = c.goneBlocker(rt, sess, rc, i, n)
		case r < 2:
			served = c.unblockRace(rt, sess, rc, rng, i, n)
		case r < 4:
			served = c.dbWriteOp(sess, rc, i, n)
		case r < 12:
			served = c.push(rc, i, n, redisListKeys[rng.IntN(len(redisListKeys))], "rpush", settle)
		case r < 20:
			served = c.push(rc, i, n, redisSetKeys[rng.IntN(len(redisSetKeys))], "sadd", settle)
		case r < 35:
			served = c.casOp(rc, i, n, redisCASKeys[rng.IntN(len(redisCASKeys))], open, settle)
		case r < 40:
			served = c.setTTL(rc, i, n, redisTTLKeys[rng.IntN(len(redisTTLKeys))], 20+rng.IntN(80), settle)
		default:
			keys := redisMixedKeys
			if rng.IntN(3) == 0 {
				keys = redisCASKeys
			}
			key := keys[rng.IntN(len(keys))]
			in := c.nextString(rng.IntN(100), i, n, key, keys[0] == redisCASKeys[0])
			if in.Op == rSet {
				sets++
			}
			if c.broken == redisLyingClient && in.Op == rSet && sets%3 == 0 {
				c.hist.Call(i, in).Return(redisOutput{}) // "OK", never sent
				served = true
				break
			}
			served = c.stringOp(rc, i, in, open, settle)
		}
		if served {
			c.served[i] = c.s.now
		}
		rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)))
	}
	c.running--
	if i == 0 {
		c.finalReads(rc)
		if c.walks {
			c.finalWalks(rc)
		}
		c.finalDBReads(rc, sess)
	}
}

// nextString draws a string command on key. Values are integers (so INCR
// has something to increment) or text; on CAS keys every value is new.
func (c *redisCluster) nextString(r, client, n int, key string, casKey bool) redisInput {
	val := fmt.Sprintf("c%d.%d", client, n)
	if !casKey && n%3 != 0 {
		val = strconv.Itoa((client+1)*1_000_000 + n)
	}
	// Every fourth command of a client goes as a script that runs it.
	in := redisInput{Key: key, Value: val, rangeNo: int(c.rangeOf(key).ID), script: n%4 == 3}
	switch {
	case r < 40:
		in.Op = rGet
	case r < 55:
		in.Op = rSet
	case r < 63:
		in.Op = rSetNX
	case r < 71:
		in.Op = rSetXX
	case r < 80:
		in.Op = rGetSet
	case casKey:
		in.Op = rSet
	case r < 88:
		in.Op = rDel
	default:
		in.Op = rIncr
	}
	return in
}

// stringOp sends one string command, records it, and reports whether the
// answer was definite (served).
func (c *redisCluster) stringOp(rc redisConn, i int, in redisInput, open openWrites, settle func(string, int64)) bool {
	var args []string
	switch in.Op {
	case rGet:
		args = []string{"GET", in.Key}
	case rSet:
		args = []string{"SET", in.Key, in.Value}
	case rSetNX:
		args = []string{"SET", in.Key, in.Value, "NX"}
	case rSetXX:
		args = []string{"SET", in.Key, in.Value, "XX"}
	case rDel:
		args = []string{"DEL", in.Key}
	case rIncr:
		args = []string{"INCR", in.Key}
	case rGetSet:
		args = []string{"GETSET", in.Key, in.Value}
	}
	if in.script {
		args = redisScript(args)
	}
	p := c.hist.Call(i, in)
	r := rc.do(args...)
	if unanswered, goOn := c.unanswered(p, in.Key, r, open); unanswered {
		return goOn
	}
	var out redisOutput
	bad := false
	switch in.Op {
	case rGet, rGetSet:
		out.State, bad = stateOf(r)
	case rSet:
		bad = !isOK(r)
	case rSetNX, rSetXX:
		out.OK, bad = isOK(r), !isOK(r) && r.Kind != redis.KindNull
	case rDel:
		out.Int, bad = r.Int, r.Kind != redis.KindInt
	case rIncr:
		out.Int = r.Int
		out.Err = r.Kind == redis.KindError && string(r.Str) == "ERR value is not an integer or out of range"
		bad = r.Kind != redis.KindInt && !out.Err
	}
	if bad {
		c.anomaly("client %d: %s: unexpected reply %s", i, in, describeReply(r))
		return true
	}
	ret := p.Return(out)
	if in.Op != rGet {
		settle(in.Key, ret)
	}
	c.ok++
	return true
}

// redisScript is a command on one key as a Lua script that runs it and
// returns its reply unchanged (an error reply too, through redis.pcall):
// EVAL_RO for a read, EVAL for a write.
func redisScript(args []string) []string {
	eval := "EVAL"
	if strings.EqualFold(args[0], "GET") {
		eval = "EVAL_RO"
	}
	return append([]string{eval, "return redis.pcall(ARGV[1], KEYS[1], unpack(ARGV, 2))", "1", args[1], args[0]}, args[2:]...)
}

// casOp is WATCH k; GET k; MULTI; SET k v; EXEC. The GET is recorded as a
// read, the EXEC as rCAS expecting what the GET read.
func (c *redisCluster) casOp(rc redisConn, i, n int, key string, open openWrites, settle func(string, int64)) bool {
	rn := int(c.rangeOf(key).ID)
	watch := []string{"WATCH", key}
	if c.broken == redisNoWatch {
		watch = []string{"PING"}
	}
	if r := rc.do(watch...); !isOK(r) && (r.Kind != redis.KindSimple || string(r.Str) != "PONG") {
		if outcomeOf(r) != notApplied {
			c.anomaly("client %d: WATCH %s: %s", i, key, describeReply(r))
		}
		c.refused++
		return outcomeOf(r) == notApplied
	}
	g := c.hist.Call(i, redisInput{Op: rGet, Key: key, rangeNo: rn})
	r := rc.do("GET", key)
	expect, bad := stateOf(r)
	if outcomeOf(r) != definite || bad {
		if bad && outcomeOf(r) == definite {
			c.anomaly("client %d: GET %s in a transaction: %s", i, key, describeReply(r))
		}
		rc.do("UNWATCH")
		c.refused++
		return outcomeOf(r) == notApplied
	}
	g.Return(redisOutput{State: expect})
	val := fmt.Sprintf("c%d.%d", i, n)
	if r := rc.do("MULTI"); !isOK(r) {
		c.anomaly("client %d: MULTI: %s", i, describeReply(r))
		return true
	}
	if r := rc.do("SET", key, val); r.Kind != redis.KindSimple || string(r.Str) != "QUEUED" {
		c.anomaly("client %d: SET in MULTI: %s", i, describeReply(r))
		rc.do("DISCARD")
		return true
	}
	c.cas++
	p := c.hist.Call(i, redisInput{Op: rCAS, Key: key, Value: val, Expect: expect, rangeNo: rn})
	r = rc.do("EXEC")
	switch outcomeOf(r) {
	case notApplied:
		c.refused++
		return true
	case unknownOut:
		c.unknown++
		if op := p.Unknown(); op >= 0 {
			u := c.settleUnit(key)
			open[u] = append(open[u], op)
		}
		return false
	}
	var out redisOutput
	switch {
	case r.Kind == redis.KindNullArray:
	case r.Kind == redis.KindArray && len(r.Elems) == 1 && isOK(r.Elems[0]):
		out.OK = true
		c.casOK++
	default:
		c.anomaly("client %d: EXEC: %s", i, describeReply(r))
		return true
	}
	settle(key, p.Return(out))
	c.ok++
	return true
}

// push is RPUSH or SADD of a new element; collections are checked at the
// end (checkCollections).
func (c *redisCluster) push(rc redisConn, i, n int, key, cmd string, settle func(string, int64)) bool {
	op := &collOp{client: i, elem: fmt.Sprintf("c%d.%d", i, n), call: c.hist.tick()}
	c.colls[key] = append(c.colls[key], op)
	r := rc.do(cmd, key, op.elem)
	op.status = outcomeOf(r)
	switch op.status {
	case notApplied:
		c.refused++
		return true
	case unknownOut:
		c.unknown++
		return false
	}
	if r.Kind != redis.KindInt {
		c.anomaly("client %d: %s %s %s: %s", i, cmd, key, op.elem, describeReply(r))
		op.status = unknownOut
		return true
	}
	op.ret, op.reply = c.hist.tick(), r.Int
	settle(key, op.ret)
	c.ok++
	return true
}

// setTTL is SET key value PX ms: outside the model (whether a read sees
// the key depends on the leader's clock), checked by checkExpired.
func (c *redisCluster) setTTL(rc redisConn, i, n int, key string, ms int, settle func(string, int64)) bool {
	r := rc.do("SET", key, fmt.Sprintf("c%d.%d", i, n), "PX", strconv.Itoa(ms))
	switch outcomeOf(r) {
	case notApplied:
		c.refused++
		return true
	case unknownOut:
		c.unknown++
		return false
	}
	if !isOK(r) {
		c.anomaly("client %d: SET %s PX %d: %s", i, key, ms, describeReply(r))
		return true
	}
	settle(key, c.hist.tick())
	c.ok++
	c.ttlSets++
	return true
}

// finalReads reads every list and set once the other clients are done,
// retrying refusals.
func (c *redisCluster) finalReads(rc redisConn) {
	for c.running > 0 {
		if rc.rt.Sleep(rc.ctx, 10*time.Millisecond) != nil {
			return
		}
	}
	read := func(args ...string) ([]string, bool) {
		for rc.ctx.Err() == nil {
			r := rc.do(args...)
			if outcomeOf(r) != definite {
				continue
			}
			if r.Kind != redis.KindArray && r.Kind != redis.KindSet {
				c.anomaly("final %q: %s", args, describeReply(r))
				return nil, false
			}
			var out []string
			for _, e := range r.Elems {
				out = append(out, string(e.Str))
			}
			return out, true
		}
		return nil, false
	}
	c.final = map[string][]string{}
	for _, k := range redisListKeys {
		if v, ok := read("LRANGE", k, "0", "-1"); ok {
			c.final[k] = v
		}
	}
	for _, k := range redisSetKeys {
		if v, ok := read("SMEMBERS", k); ok {
			c.final[k] = v
		}
	}
	for _, a := range c.abandoned {
		if v, ok := read("LRANGE", a.key, "0", "-1"); ok {
			c.final[a.key] = v
		}
	}
	for _, u := range c.unblocked {
		if v, ok := read("LRANGE", u.key, "0", "-1"); ok {
			c.final[u.key] = v
		}
	}
	c.finalDone = true
}

func isOK(r redis.Reply) bool { return r.Kind == redis.KindSimple && string(r.Str) == "OK" }

// stateOf reads a bulk-or-null reply as a model state; bad if it is
// neither.
func stateOf(r redis.Reply) (string, bool) {
	switch r.Kind {
	case redis.KindNull:
		return "", false
	case redis.KindBulk:
		return present(string(r.Str)), false
	}
	return "", true
}

func describeReply(r redis.Reply) string {
	var b []byte
	b = redis.AppendRESP2(b, r)
	return strconv.Quote(string(b))
}

func (c *redisCluster) Targets() []kernel.NodeID { return c.nodes }
func (c *redisCluster) Healed()                  { c.healed, c.faultsOver = c.s.now, true }
func (c *redisCluster) Stop()                    { c.stopped, c.stoppedAt = true, c.s.Elapsed() }

// Progressed: every client served since the heal, every range back on
// every node.
func (c *redisCluster) Progressed() bool { return c.progressed(c.served, c.healed) }

// Status tells who waits for what when progress fails.
func (c *redisCluster) Status() string { return c.status(c.served, c.healed) }

// Check: election safety, replies of the right shape, linearizability of
// the string keys, the collections' invariants, and convergence.
// Settled reports, for a seed that splits (and merges), whether no merge
// is under way and the ranges agree.
func (c *redisCluster) Settled() bool { return c.splitBytes == 0 || c.rangesSettled() }

func (c *redisCluster) Check(vizPath string) error {
	if c.safetyError != nil {
		return c.safetyError
	}
	if len(c.anomalies) > 0 {
		return fmt.Errorf("unexpected replies:\n  %s", strings.Join(c.anomalies, "\n  "))
	}
	if c.ok == 0 {
		return fmt.Errorf("no operation completed: the history is empty")
	}
	if err := checkRedisLinearizable(c.hist, vizPath); err != nil {
		return err
	}
	if err := c.checkCollections(); err != nil {
		return err
	}
	if err := c.checkAbandoned(); err != nil {
		return err
	}
	if err := c.checkUnblocked(); err != nil {
		return err
	}
	if err := c.checkDatabases(); err != nil {
		return err
	}
	if testing.Verbose() {
		fmt.Printf("redis seed %d: %d ops recorded (%d acknowledged, %d unknown, %d refused), %d/%d transactions ran; lists %d+%d, sets %d+%d elements; %s: %d commands, %d/%d blocks ran; %d blocked clients left, %d unblocked (%d took their element); %d writes in other databases\n",
			c.s.Seed(), c.hist.Len(), c.ok, c.unknown, c.refused, c.casOK, c.cas,
			len(c.final[redisListKeys[0]]), len(c.final[redisListKeys[1]]), len(c.final[redisSetKeys[0]]), len(c.final[redisSetKeys[1]]),
			c.mix, c.familyOps, c.blocksRan, c.blocks, len(c.abandoned), len(c.unblocked), unblockedTook(c.unblocked), len(c.dbWrites))
	}
	if err := c.checkExpired(); err != nil {
		return err
	}
	if c.splitBytes > 0 {
		if testing.Verbose() {
			fmt.Printf("redis seed %d: %d ranges at the end (split at %d bytes, %d merges)\n", c.s.Seed(), len(c.newestRanges()), c.splitBytes, c.merges)
		}
		// The ranges as they split: tiling, agreement, convergence.
		return c.checkRanges()
	}
	return c.checkConvergence()
}

// checkExpired: every key set with a TTL expired long before the end, so
// active expiry (a sweep through the log by each range's leader) must have
// deleted its records on every replica; lazy expiry alone would leave them.
func (c *redisCluster) checkExpired() error {
	for _, k := range redisTTLKeys {
		rk := redis.RouteKey([]byte(k))
		end := slices.Clone(rk)
		end[len(end)-1]++ // a route key ends 0x00 0x01: this ends its records
		for _, id := range c.nodes {
			kvs, _, err := c.engines[id].Scan(rk, end, 10)
			if err != nil {
				return fmt.Errorf("expiry: node %d: %w", id, err)
			}
			if len(kvs) > 0 {
				return fmt.Errorf("expiry: node %d still holds %q of %s, set with a TTL of at most 100 ms, %v after the clients stopped (%d SET PX acknowledged)",
					id, kvs[0].Key, k, c.s.Elapsed()-c.stoppedAt, c.ttlSets)
			}
		}
	}
	return nil
}

// checkCollections: the final LRANGE of a list holds every acknowledged
// RPUSH once, at the position its reply gave (only appends happen), in an
// order that respects real time, and nothing that was refused or never
// pushed; the final SMEMBERS of a set holds every acknowledged SADD (each
// answered 1: every member is new) and nothing else but unknown ones.
func (c *redisCluster) checkCollections() error {
	if !c.finalDone {
		return fmt.Errorf("collections: the final reads did not finish during quiescence")
	}
	for _, k := range append(slices.Clone(redisListKeys), redisSetKeys...) {
		isList := slices.Contains(redisListKeys, k)
		final, ok := c.final[k]
		if !ok {
			return fmt.Errorf("collections: no final read of %s", k)
		}
		at := map[string]int{}
		for i, e := range final {
			if _, dup := at[e]; dup {
				return fmt.Errorf("collections: %s holds %q twice: %q", k, e, final)
			}
			at[e] = i
		}
		ops := map[string]*collOp{}
		for _, op := range c.colls[k] {
			ops[op.elem] = op
		}
		for e := range at {
			if op, ok := ops[e]; !ok || op.status == notApplied {
				return fmt.Errorf("collections: %s holds %q, which was never pushed or was refused (TRYAGAIN)", k, e)
			}
		}
		var acked []*collOp
		for _, op := range c.colls[k] {
			if op.status != definite {
				continue
			}
			i, ok := at[op.elem]
			switch {
			case !ok:
				return fmt.Errorf("collections: %s lost %q, acknowledged at %d by client %d", k, op.elem, op.ret, op.client)
			case isList && int64(i) != op.reply-1:
				return fmt.Errorf("collections: %s holds %q at index %d, but RPUSH replied length %d", k, op.elem, i, op.reply)
			case !isList && op.reply != 1:
				return fmt.Errorf("collections: SADD %s %q replied %d for a new member", k, op.elem, op.reply)
			}
			acked = append(acked, op)
		}
		if !isList {
			continue
		}
		for _, a := range acked {
			for _, b := range acked {
				if a.ret < b.call && at[a.elem] > at[b.elem] {
					return fmt.Errorf("collections: %s holds %q (acknowledged at %d) after %q (called at %d)", k, a.elem, a.ret, b.elem, b.call)
				}
			}
		}
	}
	return nil
}

// TestRedisSim runs the Redis scenario: seeds 1–20 by default, or those the
// command line names (as TestSim).
func TestRedisSim(t *testing.T) {
	runScenario(t, redisScenario, seedRange(1, 20))
}

// TestRedisDeterminism: the same seed gives the same trace.
func TestRedisDeterminism(t *testing.T) {
	if replaying() {
		t.Skip("seeds named on the command line: TestRedisSim checks them")
	}
	seeds := []uint64{1, 2}
	if testing.Short() {
		seeds = seeds[:1] // make race
	}
	for _, seed := range seeds {
		a, b := Run(redisScenario, seed), Run(redisScenario, seed)
		if a.Trace != b.Trace || a.Events != b.Events {
			t.Errorf("redis seed %d is not reproducible: %s vs %s", seed, a.Line(), b.Line())
		}
	}
}

// TestBrokenRedisIsCaught: a client that acknowledges SETs it never sent
// and a compare-and-set sent without its WATCH must fail linearizability
// (with a visualization), and a replica that
// loses writes must fail a check (convergence or linearizability), each
// within a few seeds. Each variant is a subtest, so that a replay command
// names one.
func TestBrokenRedisIsCaught(t *testing.T) {
	for _, v := range []struct {
		sc     Scenario
		viz    bool // must be caught by Porcupine, with a visualization
		within int
	}{
		{brokenRedisScenario(redisLyingClient, "redis-lying-client"), true, 3},
		{brokenRedisScenario(redisNoWatch, "redis-no-watch"), true, 10},
		{brokenRedisScenario(redisDroppingReplica, "redis-dropping-replica"), false, 5},
	} {
		t.Run(v.sc.Name, func(t *testing.T) { brokenRedisIsCaught(t, v.sc, v.viz, v.within) })
	}
}

// brokenRedisIsCaught requires sc to fail a check within the first `within`
// seeds (or the seeds named on the command line); viz: a linearizability
// failure with a visualization.
func brokenRedisIsCaught(t *testing.T, sc Scenario, viz bool, within int) {
	seeds := chosenSeeds(seedRange(1, within))
	for _, seed := range seeds {
		r := Run(sc, seed)
		if r.Err == nil {
			if replaying() {
				fmt.Println(r.Scenario + " " + r.Line() + " (not caught)")
			}
			continue
		}
		fmt.Printf("%s caught at seed %d: %s: %v\nreplay: %s\n", sc.Name, seed, r.Phase, firstLine(r.Err), replayCommand(t.Name(), seed))
		if testing.Verbose() {
			fmt.Println(indent(r.Scenario + " " + r.Line()))
			fmt.Println(indent(r.Report(replayCommand(t.Name(), seed))))
		}
		if r.Phase != "check" {
			t.Errorf("%s: caught in %s, not by a check: %v", sc.Name, r.Phase, r.Err)
		}
		if viz {
			if r.Viz == "" {
				t.Errorf("%s: caught, but not as a linearizability failure with a visualization: %v", sc.Name, r.Err)
			} else if _, err := os.Stat(r.Viz); err != nil {
				t.Errorf("%s: visualization %q missing: %v", sc.Name, r.Viz, err)
			}
		}
		return
	}
	t.Errorf("%s passed %d seed(s): the checks do not bite", sc.Name, len(seeds))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
