package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/mutation"
)

// Conn is one client connection's state. Do is called by one task at a time
// (the connection's); push, Proto and other connections' CLIENT LIST may
// be called from other tasks.
//
// Invariant: another task reads nothing of a Conn but its immutable fields
// (s, id, addr, push, created) and shown, under shownMu. The owning task
// keeps shown up to date whenever a field it mirrors changes.
type Conn struct {
	s    *Server
	id   int64
	addr string
	// push delivers a pub/sub message out of band (the wire queues it
	// behind the replies already written). It must not block for long.
	push    func(redis.Reply)
	created time.Time

	// What follows is owned by the connection's task: only it reads or
	// writes these (subs and psubs change under s.mu as well, together
	// with the server's subscriber index).
	proto int
	db    int // SELECTed database (mirrored in shown)
	// CLIENT REPLY: replyOff mutes every reply until ON; skipNext mutes
	// the next command's; mute mutes the command running now.
	replyOff, skipNext, mute bool
	multi                    bool
	dirty                    bool // an error while queuing: EXEC aborts
	queue                    [][][]byte
	watches                  []redis.Watch
	subs                     map[string]bool // channels
	psubs                    map[string]bool // patterns

	// shownMu guards shown and is never held across anything but copying
	// it: a leaf lock, taken with no other lock held.
	shownMu sync.Mutex
	shown   clientInfo

	// goneMu guards gone and stopWait (a leaf lock too): Gone is called by
	// the wire's reading task while the connection's task is blocked.
	goneMu   sync.Mutex
	gone     bool
	stopWait context.CancelFunc // ends the blocked command's wait; nil when none
	// blocked is set while a blocking command runs; unblock is what a
	// CLIENT UNBLOCK asked of it (unblock.go), and stopBlock ends the
	// wait between its steps (nil while a step runs). Under goneMu too.
	blocked   bool
	unblock   unblockHow
	stopBlock context.CancelFunc

	// kill closes the client's connection (SetKill; nil: CLIENT KILL
	// cannot reach it), and closeAfterReply asks the wire to close it
	// once the reply of the command running is sent (a CLIENT KILL that
	// matched its own client).
	kill            func()
	closeAfterReply bool

	// The ACL user (acl.go), owned by the connection's task and mirrored
	// in shown: authInit is set on the first command, when authed takes
	// its start value (Redis sets it as the client connects).
	user             string
	authInit, authed bool

	// monitoring is set by MONITOR (monitor.go); execing while EXEC runs
	// the queued commands. Both owned by the connection's task.
	monitoring, execing bool
}

// SetKill gives the connection the way to close its client's connection,
// for CLIENT KILL from another connection: the wire's close, after which
// it calls Gone and Close as for a client that left. Call it before the
// connection runs its first command.
func (c *Conn) SetKill(kill func()) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.kill = kill
}

// SetLocalAddr tells the connection the address its client connected to
// (CLIENT LIST's laddr, CLIENT KILL LADDR). Call it before the connection
// runs its first command.
func (c *Conn) SetLocalAddr(laddr string) { c.show(func(i *clientInfo) { i.laddr = laddr }) }

// clientInfo is what other tasks may read of a connection: the fields of
// its CLIENT LIST line that change, and its protocol for encoding pushes.
// The connection's own name lives here only.
type clientInfo struct {
	name    string
	laddr   string // the address the client connected to (SetLocalAddr; "": not known)
	proto   int    // mirrors Conn.proto
	db      int    // mirrors Conn.db
	lastCmd string // the last known command run (a pipeline's concurrent commands set it too)
	// queued is the number of commands queued in MULTI; -1 outside MULTI.
	// It mirrors Conn.multi and len(Conn.queue).
	queued int
	// subs and psubs mirror len(Conn.subs) and len(Conn.psubs).
	subs, psubs int
	user        string // mirrors Conn.user
	// lastAt is when the connection's last command began (CLIENT LIST's
	// idle); monitoring, blocked and noEvict mirror MONITOR, a blocking
	// command under way and CLIENT NO-EVICT (its flags).
	lastAt                       time.Time
	monitoring, blocked, noEvict bool
}

// show applies f to the shown state, under shownMu.
func (c *Conn) show(f func(*clientInfo)) {
	c.shownMu.Lock()
	f(&c.shown)
	c.shownMu.Unlock()
}

// info returns a copy of the shown state.
func (c *Conn) info() clientInfo {
	c.shownMu.Lock()
	defer c.shownMu.Unlock()
	return c.shown
}

// setProto sets the connection's protocol, and shows it.
func (c *Conn) setProto(proto int) {
	c.proto = proto
	c.show(func(i *clientInfo) { i.proto = proto })
}

// selectDB makes db the connection's database, and shows it.
func (c *Conn) selectDB(db int) {
	c.db = db
	c.show(func(i *clientInfo) { i.db = db })
}

// showQueue shows the MULTI state after it changed.
func (c *Conn) showQueue() {
	queued := -1
	if c.multi {
		queued = len(c.queue)
	}
	c.show(func(i *clientInfo) { i.queued = queued })
}

// NewConn registers a connection from addr. push delivers pub/sub messages
// (nil: the connection cannot receive them).
func (s *Server) NewConn(addr string, push func(redis.Reply)) *Conn {
	c := &Conn{s: s, addr: addr, push: push, created: s.rt.Now(), proto: 2,
		subs: map[string]bool{}, psubs: map[string]bool{}, user: "default",
		shown: clientInfo{proto: 2, queued: -1, user: "default"}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	c.id = s.nextID
	s.conns[c.id] = c
	s.stats.connected()
	return c
}

// Close forgets the connection and its subscriptions.
func (c *Conn) Close() {
	c.stopMonitoring()
	c.unsubscribeAll(false)
	c.unsubscribeAll(true)
	c.s.mu.Lock()
	delete(c.s.conns, c.id)
	c.s.mu.Unlock()
}

// Gone tells the connection that its client went away (the wire read EOF
// or a reset while a command ran). A blocked command stops waiting at once
// and never takes an element after this: the element stays for a client
// that is still there, as in Redis, which unblocks a client the moment it
// frees it. (A step already sent when the client left may still take one,
// as a pop in flight when a socket closes does in Redis: its reply is lost
// with the socket.) Any task may call it, more than once.
func (c *Conn) Gone() {
	c.goneMu.Lock()
	c.gone = true
	stop := c.stopWait
	c.goneMu.Unlock()
	if stop != nil && !mutation.On(MutBlockedIgnoresGone) {
		stop()
	}
}

// isGone reports whether Gone was called. A planted bug forgets it (and
// lets the wait go on).
func (c *Conn) isGone() bool {
	if mutation.On(MutBlockedIgnoresGone) {
		return false
	}
	c.goneMu.Lock()
	defer c.goneMu.Unlock()
	return c.gone
}

// waitContext is ctx, also ended by Gone, for a blocked command's wait.
func (c *Conn) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := c.s.rt.WithCancel(ctx)
	c.goneMu.Lock()
	c.stopWait = cancel
	c.goneMu.Unlock()
	return wctx, func() {
		c.goneMu.Lock()
		c.stopWait = nil
		c.goneMu.Unlock()
		cancel()
	}
}

// Proto is the connection's RESP version (2 or 3): how to encode replies.
// Any task may call it (the wire encodes pushes from other connections'
// tasks with it).
func (c *Conn) Proto() int { return c.info().proto }

// ID is the connection's CLIENT ID.
func (c *Conn) ID() int64 { return c.id }

func errorReply(s string) []redis.Reply { return []redis.Reply{redis.Error(s)} }
func one(r redis.Reply) []redis.Reply   { return []redis.Reply{r} }

func arityError(name string) redis.Reply {
	return redis.Error("ERR wrong number of arguments for '" + name + "' command")
}

// allowedSubscribed are the commands a RESP2 connection may send while
// subscribed.
var allowedSubscribed = []string{"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"}

// Do executes one command (args[0] is its name) and returns its replies,
// in order (several for SUBSCRIBE and friends), and whether the connection
// must close after sending them (QUIT). It counts the command for INFO.
func (c *Conn) Do(ctx context.Context, args [][]byte) (replies []redis.Reply, quit bool) {
	if len(args) == 0 {
		return nil, false
	}
	began := c.s.rt.Now()
	c.show(func(i *clientInfo) { i.lastAt = began })
	c.mute, c.skipNext = c.skipNext, false
	replies, quit, how := c.do(ctx, args)
	if how != queued {
		name := ""
		spec, ok := redis.Lookup(string(args[0]))
		if ok {
			name = spec.Name
		}
		now := c.s.rt.Now()
		c.s.stats.record(name, how == ran, now, now.Sub(began), replies)
		if how == ran && (ok || name == "" && strings.EqualFold(string(args[0]), "acl")) {
			c.noteSlow(spec, args, now.Sub(began), now) // ACL has no spec (acl.go)
			if self := c.feedMonitors(args, now); self.Kind != 0 && !c.execing {
				// A monitor's own line follows its reply; inside EXEC it
				// would land in EXEC's array, and is not shown.
				replies = append(replies, self)
			}
		}
	}
	if c.replyOff || c.mute {
		return nil, quit
	}
	return replies, quit
}

// How a command was handled, for INFO's counters.
type handled int

const (
	ran      handled = iota
	rejected         // refused before it ran (arity, the connection's state)
	queued           // queued in MULTI: counted when EXEC runs it
)

func (c *Conn) do(ctx context.Context, args [][]byte) ([]redis.Reply, bool, handled) {
	if strings.EqualFold(string(args[0]), "acl") {
		return c.aclDo(ctx, args) // not in the command table (acl.go)
	}
	spec, known := redis.Lookup(string(args[0]))
	if !known {
		c.dirty = c.dirty || c.multi
		return one(redis.Exec(nil, 0, 0, args)), false, rejected // "ERR unknown command ..."; touches no store
	}
	name := spec.Name
	shown, subOK, badSub := name, true, redis.Reply{}
	if spec.IsContainer() && len(args) > 1 {
		var sub string
		if sub, badSub, subOK = spec.Subcommand(args); subOK {
			shown = name + "|" + sub // as Redis 7 names it in CLIENT LIST
		}
	}
	c.show(func(i *clientInfo) { i.lastCmd = shown })
	if !spec.ArityOK(len(args)) {
		c.dirty = c.dirty || c.multi
		return one(arityError(name)), false, rejected
	}
	if spec.Where == redis.WhereServer && spec.IsContainer() {
		// Redis's processCommand refuses an unknown subcommand, or one
		// with the wrong number of arguments, before the command runs (not
		// counted as a call, not in the slow log).
		if !subOK {
			c.dirty = c.dirty || c.multi
			return one(badSub), false, rejected
		}
	}
	if r, quit := c.aclAdmit(ctx, args); r.Kind != 0 || quit {
		c.dirty = c.dirty || c.multi
		if quit {
			return nil, true, rejected
		}
		if name == "exec" {
			// Redis's rejectCommand aborts the transaction (execCommandAbort).
			c.discardMulti()
			return errorReply("EXECABORT Transaction discarded because of: " + string(r.Str)), false, rejected
		}
		return one(r), false, rejected
	}
	switch name {
	case "eval", "eval_ro", "evalsha", "evalsha_ro":
		if !c.multi { // queued ones when EXEC runs them
			name, args = c.s.scriptArgs(name, args)
			spec, _ = redis.Lookup(name)
		}
	case "fcall", "fcall_ro":
		if !c.multi && (c.proto != 2 || len(c.subs)+len(c.psubs) == 0) {
			var err error
			if args, err = c.s.fcallArgs(ctx, args); err != nil {
				return one(failure(err)), false, ran
			}
		}
	}
	if c.proto == 2 && len(c.subs)+len(c.psubs) > 0 && !slices.Contains(allowedSubscribed, name) {
		return errorReply(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", name)), false, rejected
	}
	if r, refused := c.monitorRefuses(spec, args); refused {
		c.dirty = c.dirty || c.multi
		return one(r), false, rejected
	}
	if c.multi {
		switch name {
		case "exec", "discard", "quit", "reset":
		case "multi":
			return errorReply("ERR MULTI calls can not be nested"), false, rejected
		case "watch":
			return errorReply("ERR WATCH inside MULTI is not allowed"), false, rejected
		default:
			r := c.enqueue(spec, args)
			if r.Kind == redis.KindError {
				return one(r), false, rejected
			}
			return one(r), false, queued
		}
	}
	switch spec.Where {
	case redis.WhereKeyed:
		if redis.Blocks(args) { // XREAD and XREADGROUP with BLOCK
			return one(c.blocking(ctx, spec, args)), false, ran
		}
		return one(c.keyed(ctx, spec, args)), false, ran
	case redis.WhereBlocking:
		return one(c.blocking(ctx, spec, args)), false, ran
	case redis.WhereRanges:
		return one(c.ranges(ctx, name, args)), false, ran
	}
	replies, quit := c.server(ctx, name, args)
	return replies, quit, ran
}

// Concurrent reports whether a command may run concurrently with the
// commands around it in a pipeline, and returns its keys: a known keyed
// data command with a valid arity, outside MULTI and outside RESP2's
// subscribed mode. The caller must still run commands whose keys overlap
// in order, and must ask only once every earlier command of the connection
// that is not concurrent has run (they may change the connection's state).
func (c *Conn) Concurrent(args [][]byte) (keys [][]byte, ok bool) {
	if len(args) == 0 || c.multi || c.replyOff || c.skipNext || c.monitoring || (c.proto == 2 && len(c.subs)+len(c.psubs) > 0) ||
		(c.s.dbs != nil && !c.authInit) { // aclAdmit must set up the connection first
		return nil, false
	}
	spec, known := redis.Lookup(string(args[0]))
	if !known || spec.Where != redis.WhereKeyed || !spec.ArityOK(len(args)) || redis.Blocks(args) {
		return nil, false
	}
	switch spec.Name {
	case "eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro":
		// They read and fill the script cache (scriptArgs), which a
		// later EVALSHA in the pipeline, on other keys, may need; FCALL
		// reads the libraries first (fcallArgs).
		return nil, false
	}
	keys = redis.Keys(args)
	return keys, len(keys) > 0
}

// DoConcurrent runs a command that Concurrent accepted. Unlike Do, several
// tasks may call it at once for one connection (a pipeline's independent
// commands), while no Do runs.
func (c *Conn) DoConcurrent(ctx context.Context, args [][]byte) redis.Reply {
	spec, _ := redis.Lookup(string(args[0]))
	began := c.s.rt.Now()
	c.show(func(i *clientInfo) { i.lastCmd, i.lastAt = spec.Name, began })
	r, _ := c.aclAdmit(ctx, args) // authInit is set (Concurrent): it writes nothing
	if r.Kind == 0 {
		r = c.keyed(ctx, spec, args)
	}
	now := c.s.rt.Now()
	c.s.stats.record(spec.Name, true, now, now.Sub(began), []redis.Reply{r})
	c.noteSlow(spec, args, now.Sub(began), now)
	c.feedMonitors(args, now) // never this connection's own: a monitor runs nothing concurrently
	return r
}

// keyed runs a command of Exec on the range of its keys.
func (c *Conn) keyed(ctx context.Context, spec *redis.Spec, args [][]byte) redis.Reply {
	_, route, ok := c.s.rangeOf(redis.Keys(args))
	if !ok {
		return c.s.across(ctx, c.db, nil, [][][]byte{args}, false).Reply
	}
	cmd := redis.InDB(c.db, redis.ExecCommand(args))
	if spec.Name == "object" {
		cmd = redis.WithObjectConfig(c.s.objectConfig(), cmd)
	}
	r, err := c.s.command(ctx, route, cmd, spec.ReadOnly())
	if c.s.splitApart(err) {
		// The range split since the router saw it: the keys are in two
		// ranges now (nothing ran).
		return c.s.across(ctx, c.db, nil, [][][]byte{args}, false).Reply
	}
	if err != nil {
		return failure(err)
	}
	return r
}

// blocking runs a blocking command (BLPOP and the others of
// redis.WhereBlocking, and those redis.Blocks names): the step as a write;
// when it is not ready, wait for a write applied here or a poll, probe with
// a read, and take the step again once the probe says it may be ready. No
// step is sent once the client is gone (Gone).
func (c *Conn) blocking(ctx context.Context, spec *redis.Spec, args [][]byte) redis.Reply {
	_, route, ok := c.s.rangeOf(redis.Keys(args))
	if !ok {
		return c.blockingAcross(ctx, spec, args)
	}
	ctx, stop := c.waitContext(ctx)
	defer stop()
	defer c.blockedSpan()()
	cmd := redis.InDB(c.db, redis.BlockingCommand(args))
	var deadline time.Time
	for first := true; ; first = false {
		if c.isGone() {
			return redis.TimeoutReply(spec.Name) // nobody reads it
		}
		if r, ok := c.unblocked(spec); ok {
			return r
		}
		r, err := c.s.command(ctx, route, cmd, false)
		if c.s.splitApart(err) {
			return c.blockingAcross(ctx, spec, args) // split since the router saw it
		}
		if err != nil {
			return c.unblockedStep(spec, err)
		}
		if len(r.Elems) != 2 || r.Kind != redis.KindArray {
			return r // an error reply
		}
		if r.Elems[0].Int != 0 {
			return r.Elems[1]
		}
		if retry := redis.RetryArgs(r.Elems[1]); retry != nil {
			// The step names the command to retry (XREAD's "$" fixed
			// to the ID it stood for at first).
			cmd = redis.InDB(c.db, redis.BlockingCommand(retry))
		}
		if first {
			if ms := redis.BlockTimeout(args); ms > 0 {
				deadline = c.s.rt.Now().Add(time.Duration(ms) * time.Millisecond)
			}
		}
		// Wait until the probe says the step may succeed.
		for {
			if !c.waitBlocked(ctx, deadline) {
				if r, ok := c.unblocked(spec); ok {
					return r
				}
				return redis.TimeoutReply(spec.Name)
			}
			p, err := c.s.command(ctx, route, cmd, true)
			if err == nil && p.Kind == redis.KindBool && p.Int != 0 {
				break
			}
		}
	}
}

// blockingAcross is blocking for keys in more than one range: each step
// is a cross-range transaction (txn.go), retried after a write applied
// here or a poll until it is ready or the timeout passes.
func (c *Conn) blockingAcross(ctx context.Context, spec *redis.Spec, args [][]byte) redis.Reply {
	ctx, stop := c.waitContext(ctx)
	defer stop()
	defer c.blockedSpan()()
	var deadline time.Time
	if ms := redis.BlockTimeout(args); ms > 0 {
		deadline = c.s.rt.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	for {
		if c.isGone() {
			return redis.TimeoutReply(spec.Name) // nobody reads it
		}
		if r, ok := c.unblocked(spec); ok {
			return r
		}
		run := c.s.across(ctx, c.db, nil, [][][]byte{args}, false)
		if run.Ready {
			return run.Reply
		}
		if retry := redis.RetryArgs(run.Reply); retry != nil {
			args = retry // XREAD's "$" fixed to the ID it stood for at first
		}
		if !c.waitBlocked(ctx, deadline) {
			if r, ok := c.unblocked(spec); ok {
				return r
			}
			return redis.TimeoutReply(spec.Name)
		}
	}
}

// splitApart reports whether a command sent to one range was refused
// because its keys are in two ranges now (a split the router had not
// seen; nothing ran), so that it goes again as a cross-range transaction.
func (s *Server) splitApart(err error) bool {
	return errors.Is(err, consensus.ErrCrossRange) && s.dbs != nil
}

// waitStep is a blocked client's wait before its next try: for a write
// applied here or BlockPoll, whichever comes first, but not past deadline
// (zero: none). False: the deadline passed, or ctx ended.
func (s *Server) waitStep(ctx context.Context, deadline time.Time) bool {
	wait := s.opts.BlockPoll
	if !deadline.IsZero() {
		left := deadline.Sub(s.rt.Now())
		if left <= 0 {
			return false
		}
		wait = min(wait, left)
	}
	return s.waitWrite(ctx, wait) == nil
}

// waitWrite waits up to d for a write to apply on this node.
func (s *Server) waitWrite(ctx context.Context, d time.Duration) error {
	wctx, cancel := s.rt.WithTimeout(ctx, d)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked++
	defer func() { s.blocked-- }()
	seen := s.writes
	for s.writes == seen {
		if err := s.wake.Wait(wctx); err != nil {
			return ctx.Err() // nil when only the poll interval passed
		}
	}
	return nil
}

// enqueue is a command sent inside MULTI: every command is queued, as in
// Redis (Do answers EXEC, DISCARD, QUIT, RESET, MULTI and WATCH itself).
// A keyed command whose keys span ranges is refused at once and aborts
// the transaction.
func (c *Conn) enqueue(spec *redis.Spec, args [][]byte) redis.Reply {
	if inRange(spec) && c.s.dbs == nil {
		if _, _, ok := c.s.rangeOf(redis.Keys(args)); !ok {
			c.dirty = true
			return redis.Error(redis.ErrCrossSlot)
		}
	}
	c.queue = append(c.queue, slices.Clone(args))
	c.showQueue()
	return redis.SimpleString("QUEUED")
}

// inRange reports whether a queued command runs inside the range's atomic
// transaction: keyed and blocking commands (which do not block there).
func inRange(spec *redis.Spec) bool {
	return spec.Where == redis.WhereKeyed || spec.Where == redis.WhereBlocking
}

// answeredHere reports whether a queued command is answered by the
// session without any state, so it may sit inside an atomic run.
func answeredHere(name string) bool { return name == "ping" || name == "echo" }

func (c *Conn) discardMulti() {
	c.multi, c.dirty, c.queue, c.watches = false, false, nil, nil
	c.showQueue()
}

// exec runs the queued commands. The keyed commands (all on one range)
// and the commands between them that need no state (PING, ECHO) run as
// one atomic command on the range, checked against the watches. A server
// or keyspace-wide command (CONFIG SET, FLUSHALL, SELECT, INFO, ...) runs
// where it stands in the queue, between atomic runs of the keyed ones: a
// transaction holding one is atomic only piecewise (the README lists this
// difference), but its commands run in order, once, as Redis runs them.
func (c *Conn) exec(ctx context.Context) redis.Reply {
	if !c.multi {
		return redis.Error("ERR EXEC without MULTI")
	}
	queue, watches, dirty := c.queue, c.watches, c.dirty
	c.discardMulti()
	if dirty {
		return redis.Error("EXECABORT Transaction discarded because of previous errors.")
	}
	c.execing = true
	defer func() { c.execing = false }()
	denied := c.aclExecDenials(ctx, queue)
	if len(denied) > 0 {
		var keep [][][]byte
		for i, q := range queue {
			if _, ok := denied[i]; !ok {
				keep = append(keep, q)
			}
		}
		r := c.execQueue(ctx, keep, watches)
		if r.Kind != redis.KindArray {
			return r
		}
		out := make([]redis.Reply, 0, len(queue))
		for i := range queue {
			if d, ok := denied[i]; ok {
				out = append(out, d)
			} else if len(r.Elems) > 0 {
				out, r.Elems = append(out, r.Elems[0]), r.Elems[1:]
			}
		}
		return redis.Array(append(out, r.Elems...)...)
	}
	return c.execQueue(ctx, queue, watches)
}

// execQueue runs EXEC's queued commands (exec).
func (c *Conn) execQueue(ctx context.Context, queue [][][]byte, watches []redis.Watch) redis.Reply {
	for i, q := range queue {
		// Scripts meet the cache as EXEC runs them, in order (an
		// EVAL's script is there for an EVALSHA after it).
		if spec, _ := redis.Lookup(string(q[0])); spec != nil {
			_, queue[i] = c.s.scriptArgs(spec.Name, q)
		}
	}
	if c.s.dbs == nil {
		// Without cross-range transactions, nothing runs unless every
		// keyed command shares one range.
		var keys [][]byte
		for _, w := range watches {
			keys = append(keys, w.Key)
		}
		for _, q := range queue {
			if spec, _ := redis.Lookup(string(q[0])); inRange(spec) {
				keys = append(keys, redis.Keys(q)...)
			}
		}
		if _, _, ok := c.s.rangeOf(keys); !ok {
			return redis.Error(redis.ErrCrossSlot)
		}
	}
	out := make([]redis.Reply, 0, len(queue))
	for start := 0; start < len(queue) || watches != nil; {
		end := start
		for end < len(queue) {
			spec, _ := redis.Lookup(string(queue[end][0]))
			if !inRange(spec) && !answeredHere(spec.Name) {
				break
			}
			end++
		}
		if end > start || watches != nil {
			// FCALL finds its library as the run starts (a FUNCTION LOAD
			// queued before it has run by then).
			var rs []redis.Reply
			var r redis.Reply
			var err error
			for i, q := range queue[start:end] {
				if spec, _ := redis.Lookup(string(q[0])); err == nil && (spec.Name == "fcall" || spec.Name == "fcall_ro") {
					queue[start+i], err = c.s.fcallArgs(ctx, q)
				}
			}
			if err == nil {
				rs, r = c.atomic(ctx, watches, queue[start:end])
			} else {
				r = failure(err) // the libraries could not be read: nothing of the run ran
			}
			if rs == nil && len(out) == 0 {
				return r // a null array (a watched key changed) or a failure: nothing ran
			}
			if rs == nil {
				// A later run failed (consensus could not run it): each of
				// its commands gets the failure.
				for range queue[start:end] {
					rs = append(rs, r)
				}
			}
			out = append(out, rs...)
			watches = nil
		}
		if end < len(queue) {
			replies, _ := c.Do(ctx, queue[end]) // not queued: c.multi is false
			out = append(out, replies...)
			end++
		}
		start = end
	}
	return redis.Array(out...)
}

// atomic runs cmds (keyed commands, PING and ECHO) as one transaction,
// checked against watches: one command on their range, or a cross-range
// transaction (txn.go). It returns a reply per command; or nil and the
// reply for the whole EXEC when it did not run (a watched key changed,
// or consensus could not run it).
func (c *Conn) atomic(ctx context.Context, watches []redis.Watch, cmds [][][]byte) ([]redis.Reply, redis.Reply) {
	var data [][][]byte // the commands the range runs
	var keys [][]byte
	for _, w := range watches {
		keys = append(keys, w.Key)
	}
	for _, q := range cmds {
		if spec, _ := redis.Lookup(string(q[0])); inRange(spec) {
			data = append(data, q)
			keys = append(keys, redis.Keys(q)...)
		}
	}
	var results []redis.Reply
	began := c.s.rt.Now()
	if len(data) > 0 || len(watches) > 0 {
		var r redis.Reply
		if _, route, ok := c.s.rangeOf(keys); ok {
			cmd := redis.InDB(c.db, redis.MultiCommand(watches, data))
			if slices.ContainsFunc(data, func(q [][]byte) bool { return strings.EqualFold(string(q[0]), "object") }) {
				cmd = redis.WithObjectConfig(c.s.objectConfig(), cmd)
			}
			var err error
			r, err = c.s.command(ctx, route, cmd, false)
			if c.s.splitApart(err) {
				r, err = c.s.across(ctx, c.db, watches, data, true).Reply, nil // split since the router saw it
			}
			if err != nil {
				return nil, failure(err)
			}
		} else {
			r = c.s.across(ctx, c.db, watches, data, true).Reply
		}
		if r.Kind != redis.KindArray {
			return nil, r // a null array (a watched key changed) or an error
		}
		results = r.Elems
	}
	out := make([]redis.Reply, 0, len(cmds))
	for _, q := range cmds {
		switch strings.ToLower(string(q[0])) {
		case "ping":
			out = append(out, pingReply(q, false))
		case "echo":
			out = append(out, redis.Bulk(q[1]))
		default:
			if len(results) == 0 {
				return nil, redis.Error("ERR internal error: transaction reply too short")
			}
			out, results = append(out, results[0]), results[1:]
		}
	}
	now := c.s.rt.Now()
	for i, q := range cmds {
		spec, _ := redis.Lookup(string(q[0]))
		share := now.Sub(began) / time.Duration(len(cmds))
		c.s.stats.record(spec.Name, true, now, share, out[i:i+1])
		c.noteSlow(spec, q, share, now)
		c.feedMonitors(q, now) // not its own line (Do's, below)
	}
	return out, redis.Reply{}
}

func (c *Conn) watch(ctx context.Context, keys [][]byte) redis.Reply {
	// Digests are read per range (each read is linearizable; EXEC checks
	// them all atomically, so they need not be read at one instant),
	// grouped by the range cache. A group that a split since divided is
	// refused (ErrCrossRange) with the range as it is, which the cache
	// learns: that group's keys go again, regrouped.
	digests := map[string][]byte{}
	pending := keys
	for tries := 0; len(pending) > 0; tries++ {
		byRange := map[string][][]byte{}
		var order []string
		for _, k := range pending {
			id := string(c.s.router.Lookup(redis.RouteKey(k)).Start)
			if _, ok := byRange[id]; !ok {
				order = append(order, id)
			}
			byRange[id] = append(byRange[id], k)
		}
		pending = nil
		for _, id := range order {
			ks := byRange[id]
			r, err := c.s.command(ctx, redis.RouteKey(ks[0]), redis.InDB(c.db, redis.DigestCommand(ks)), true)
			if errors.Is(err, consensus.ErrCrossRange) && tries < maxRegroups {
				pending = append(pending, ks...)
				continue
			}
			if err != nil {
				return failure(err)
			}
			if r.Kind != redis.KindArray || len(r.Elems) != len(ks) {
				return r
			}
			for i, k := range ks {
				digests[string(k)] = r.Elems[i].Str
			}
		}
	}
	for _, k := range keys {
		c.watches = append(c.watches, redis.Watch{Key: slices.Clone(k), Digest: digests[string(k)]})
	}
	return redis.OK()
}

// maxRegroups bounds how often WATCH regroups its keys after splits it
// had not seen (each time the range cache learns at least one range).
const maxRegroups = 8

func pingReply(args [][]byte, subscribed bool) redis.Reply {
	if len(args) > 2 {
		return arityError("ping") // pingCommand's own check: its table arity is -1
	}
	if subscribed {
		msg := []byte{}
		if len(args) > 1 {
			msg = args[1]
		}
		return redis.Array(redis.BulkString("pong"), redis.Bulk(msg))
	}
	if len(args) > 1 {
		return redis.Bulk(args[1])
	}
	return redis.SimpleString("PONG")
}

// server runs the connection and server commands.
func (c *Conn) server(ctx context.Context, name string, args [][]byte) ([]redis.Reply, bool) {
	switch name {
	case "ping":
		return one(pingReply(args, c.proto == 2 && len(c.subs)+len(c.psubs) > 0)), false
	case "echo":
		return one(redis.Bulk(args[1])), false
	case "quit":
		return one(redis.OK()), true
	case "select":
		n, err := strconv.ParseInt(string(args[1]), 10, 64)
		switch {
		case err != nil:
			return errorReply("ERR value is not an integer or out of range"), false
		case n < 0 || n >= redis.Databases:
			return errorReply("ERR DB index is out of range"), false
		}
		c.selectDB(int(n))
		return one(redis.OK()), false
	case "auth":
		return one(c.auth(ctx, args)), false
	case "hello":
		return one(c.hello(ctx, args)), false
	case "reset":
		c.stopMonitoring()
		c.discardMulti()
		c.unsubscribeAll(false)
		c.unsubscribeAll(true)
		c.setProto(2)
		c.selectDB(0)
		c.setUser("default")
		c.authInit = false // set again from the default user by the next command
		c.replyOff, c.skipNext = false, false
		c.show(func(i *clientInfo) { i.name = "" }) // NO-EVICT stays, as in Redis
		return one(redis.SimpleString("RESET")), false
	case "client":
		r := c.client(args)
		quit := c.closeAfterReply
		c.closeAfterReply = false
		return one(r), quit
	case "command":
		return one(redis.CommandReply(args)), false
	case "info":
		return one(c.s.info(ctx, args)), false
	case "config":
		return one(c.s.configCommand(args)), false
	case "wait":
		return one(c.s.wait(args)), false
	case "slowlog":
		return one(c.s.slowlog.command(args)), false
	case "monitor":
		return c.monitor(), false
	case "time":
		now := c.s.rt.Now()
		return one(redis.Array(redis.BulkString(strconv.FormatInt(now.Unix(), 10)),
			redis.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10)))), false
	case "multi":
		c.multi = true
		c.showQueue()
		return one(redis.OK()), false
	case "exec":
		return one(c.exec(ctx)), false
	case "discard":
		if !c.multi {
			return errorReply("ERR DISCARD without MULTI"), false
		}
		c.discardMulti()
		return one(redis.OK()), false
	case "watch":
		return one(c.watch(ctx, args[1:])), false
	case "unwatch":
		c.watches = nil
		return one(redis.OK()), false
	case "subscribe", "psubscribe":
		return c.subscribe(name == "psubscribe", args[1:]), false
	case "unsubscribe", "punsubscribe":
		return c.unsubscribe(name == "punsubscribe", args[1:]), false
	case "publish":
		return one(redis.Int(c.s.publish(args[1], args[2]))), false
	case "pubsub":
		return one(c.s.pubsub(args)), false
	case "script":
		return one(c.s.scriptCommand(args)), false
	case "function":
		return one(c.s.functionCommand(ctx, args)), false
	}
	return one(redis.Exec(nil, 0, 0, args)), false // unknown command
}

func (c *Conn) hello(ctx context.Context, args [][]byte) redis.Reply {
	proto := c.proto
	var user, pass []byte
	if len(args) > 1 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			return redis.Error("ERR Protocol version is not an integer or out of range")
		}
		if v < 2 || v > 3 {
			return redis.Error("NOPROTO unsupported protocol version")
		}
		proto = int(v)
		for i := 2; i < len(args); i++ {
			more := len(args) - 1 - i
			switch {
			case strings.EqualFold(string(args[i]), "auth") && more >= 2:
				user, pass = args[i+1], args[i+2]
				i += 2
			case strings.EqualFold(string(args[i]), "setname") && more >= 1:
				if r, ok := validName(args[i+1]); !ok {
					return r
				}
				// Set at once, as Redis 7.0 does: it stays set when a later
				// option fails.
				c.show(func(ci *clientInfo) { ci.name = string(args[i+1]) })
				i++
			default:
				return redis.Error("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
			}
		}
	}
	if user != nil {
		ok, err := c.authenticate(ctx, user, pass)
		switch {
		case err != nil:
			return failure(err)
		case !ok:
			return redis.Error("WRONGPASS invalid username-password pair or user is disabled.")
		}
	}
	if c.s.dbs != nil && c.authInit && !c.authed {
		return redis.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	c.setProto(proto)
	return redis.Map(
		redis.BulkString("server"), redis.BulkString("redis"),
		redis.BulkString("version"), redis.BulkString(Version),
		redis.BulkString("proto"), redis.Int(int64(proto)),
		redis.BulkString("id"), redis.Int(c.id),
		redis.BulkString("mode"), redis.BulkString("standalone"),
		redis.BulkString("role"), redis.BulkString("master"),
		redis.BulkString("modules"), redis.Array(),
	)
}

func validName(name []byte) (redis.Reply, bool) {
	for _, b := range name {
		if b < '!' || b > '~' {
			return redis.Error("ERR Client names cannot contain spaces, newlines or special characters."), false
		}
	}
	return redis.Reply{}, true
}

func (c *Conn) client(args [][]byte) redis.Reply {
	sub := strings.ToLower(string(args[1]))
	arity := map[string]int{"setname": 3, "getname": 2, "id": 2, "info": 2, "reply": 3}
	if n, ok := arity[sub]; ok && len(args) != n {
		return arityError("client|" + sub)
	}
	switch sub {
	case "reply":
		// As clientCommand: ON answers OK; OFF and SKIP answer nothing
		// (Do mutes them), and SKIP while OFF changes nothing.
		switch {
		case strings.EqualFold(string(args[2]), "on"):
			c.replyOff = false
			return redis.OK()
		case strings.EqualFold(string(args[2]), "off"):
			c.replyOff = true
		case strings.EqualFold(string(args[2]), "skip"):
			c.skipNext = !c.replyOff
			c.mute = true
		default:
			return redis.Error("ERR syntax error")
		}
		return redis.OK()
	case "setname":
		if r, ok := validName(args[2]); !ok {
			return r
		}
		c.show(func(i *clientInfo) { i.name = string(args[2]) })
		return redis.OK()
	case "getname":
		if name := c.info().name; name != "" {
			return redis.BulkString(name)
		}
		return redis.Null()
	case "id":
		return redis.Int(c.id)
	case "kill":
		return c.clientKill(args)
	case "unblock":
		return c.s.clientUnblock(args)
	case "help":
		return redis.HelpReply("CLIENT", clientHelp)
	case "no-evict":
		// Orbit never evicts a client for memory (there is no
		// maxmemory-clients): every connection is as NO-EVICT ON asks.
		if len(args) != 3 || !strings.EqualFold(string(args[2]), "on") && !strings.EqualFold(string(args[2]), "off") {
			return redis.Error("ERR syntax error")
		}
		on := strings.EqualFold(string(args[2]), "on")
		c.show(func(i *clientInfo) { i.noEvict = on })
		return redis.OK()
	case "caching", "getredir", "pause", "unpause", "tracking", "trackinginfo":
		return redis.Error("ERR CLIENT " + strings.ToUpper(sub) + " is not supported by Orbit")
	case "info":
		return redis.Verbatim("txt", c.s.clientLine(c)+"\n")
	case "list":
		conns, r := c.s.clientListed(args)
		if r.Kind != 0 {
			return r
		}
		var b strings.Builder
		for _, o := range conns {
			b.WriteString(c.s.clientLine(o))
			b.WriteByte('\n')
		}
		return redis.Verbatim("txt", b.String())
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try CLIENT HELP.")
}

// clientHelp is CLIENT HELP's text: Redis 7.0.15's, for the subcommands
// Orbit has.
var clientHelp = []string{
	"GETNAME",
	"    Return the name of the current connection.",
	"ID",
	"    Return the ID of the current connection.",
	"INFO",
	"    Return information about the current client connection.",
	"KILL <ip:port>",
	"    Kill connection made from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]",
	"    Kill connections. Options are:",
	"    * ADDR (<ip:port>|<unixsocket>:0)",
	"      Kill connections made from the specified address",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Kill connections by type.",
	"    * USER <username>",
	"      Kill connections authenticated by <username>.",
	"    * SKIPME (YES|NO)",
	"      Skip killing current connection (default: yes).",
	"LIST [options ...]",
	"    Return information about client connections. Options:",
	"    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
	"      Return clients of specified type.",
	"REPLY (ON|OFF|SKIP)",
	"    Control the replies sent to the current connection.",
	"SETNAME <name>",
	"    Assign the name <name> to the current connection.",
	"UNBLOCK <clientid> [TIMEOUT|ERROR]",
	"    Unblock the specified blocked client.",
	"NO-EVICT (ON|OFF)",
	"    Protect current client connection from eviction.",
}

// clientListed is the connections CLIENT LIST [TYPE type | ID id ...]
// lists, as Redis 7.0's clientCommand parses it, or the error reply:
// every connection in ID order; those of a type (normal: every one
// without subscriptions, monitors included; pubsub: those with some;
// replica and master: none, Orbit has no replication clients); or those
// of the IDs given, in their order.
func (s *Server) clientListed(args [][]byte) ([]*Conn, redis.Reply) {
	// The connections are read under s.mu, their lines made after it
	// (each connection's shown state has its own lock).
	s.mu.Lock()
	all := make([]*Conn, 0, len(s.conns))
	for _, o := range s.conns {
		all = append(all, o)
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
	switch {
	case len(args) == 2:
		return all, redis.Reply{}
	case len(args) == 4 && strings.EqualFold(string(args[2]), "type"):
		var subscribed bool
		switch strings.ToLower(string(args[3])) {
		case "normal":
		case "pubsub":
			subscribed = true
		case "slave", "replica", "master":
			return nil, redis.Reply{}
		default:
			return nil, redis.Error("ERR Unknown client type '" + string(args[3]) + "'")
		}
		return slices.DeleteFunc(all, func(o *Conn) bool { i := o.info(); return (i.subs+i.psubs > 0) != subscribed }), redis.Reply{}
	case len(args) > 3 && strings.EqualFold(string(args[2]), "id"):
		var out []*Conn
		for _, a := range args[3:] {
			id, err := strconv.ParseInt(string(a), 10, 64)
			if err != nil {
				return nil, redis.Error("ERR Invalid client ID")
			}
			if i, ok := slices.BinarySearchFunc(all, id, func(o *Conn, id int64) int { return cmp.Compare(o.id, id) }); ok {
				out = append(out, all[i])
			}
		}
		return out, redis.Reply{}
	}
	return nil, redis.Error("ERR syntax error")
}

// clientLine is a CLIENT LIST line (the fields Orbit knows, in Redis's
// order) for c, which may be another task's connection: it reads only
// what c shows.
func (s *Server) clientLine(c *Conn) string {
	now := s.rt.Now()
	i := c.info()
	last := i.lastAt
	if last.IsZero() {
		last = c.created
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s age=%d idle=%d flags=%s db=%d sub=%d psub=%d multi=%d cmd=%s user=%s resp=%d",
		c.id, c.addr, i.laddr, i.name, int64(now.Sub(c.created)/time.Second), int64(now.Sub(last)/time.Second), i.flags(),
		i.db, i.subs, i.psubs, i.queued, i.lastCmd, i.user, i.proto)
}

// flags are CLIENT LIST's, in Redis's order, of those Orbit knows: O a
// monitor, P subscribed, x in MULTI, b blocked, e NO-EVICT; N none. (Not
// known here: d, a watched key already changed, which EXEC finds out.)
func (i clientInfo) flags() string {
	var f []byte
	for _, x := range []struct {
		on   bool
		flag byte
	}{{i.monitoring, 'O'}, {i.subs+i.psubs > 0, 'P'}, {i.queued >= 0, 'x'}, {i.blocked, 'b'}, {i.noEvict, 'e'}} {
		if x.on {
			f = append(f, x.flag)
		}
	}
	if len(f) == 0 {
		return "N"
	}
	return string(f)
}

func (c *Conn) subscribe(pattern bool, names [][]byte) []redis.Reply {
	kind, set, index := "subscribe", c.subs, c.s.channels
	if pattern {
		kind, set, index = "psubscribe", c.psubs, c.s.patterns
	}
	var out []redis.Reply
	c.s.mu.Lock()
	for _, n := range names {
		if !set[string(n)] {
			set[string(n)] = true
			if index[string(n)] == nil {
				index[string(n)] = map[*Conn]bool{}
			}
			index[string(n)][c] = true
		}
		out = append(out, redis.Push(redis.BulkString(kind), redis.Bulk(n), redis.Int(int64(len(c.subs)+len(c.psubs)))))
	}
	c.s.mu.Unlock()
	c.showSubs()
	return out
}

// showSubs shows the subscription counts after they changed.
func (c *Conn) showSubs() {
	subs, psubs := len(c.subs), len(c.psubs)
	c.show(func(i *clientInfo) { i.subs, i.psubs = subs, psubs })
}

func (c *Conn) unsubscribe(pattern bool, names [][]byte) []redis.Reply {
	kind, set, index := "unsubscribe", c.subs, c.s.channels
	if pattern {
		kind, set, index = "punsubscribe", c.psubs, c.s.patterns
	}
	defer c.showSubs() // after s.mu is released: shownMu is a leaf lock
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if len(names) == 0 {
		for _, n := range sortedKeys(set) {
			names = append(names, []byte(n))
		}
		if len(names) == 0 {
			return one(redis.Push(redis.BulkString(kind), redis.Null(), redis.Int(int64(len(c.subs)+len(c.psubs)))))
		}
	}
	var out []redis.Reply
	for _, n := range names {
		if set[string(n)] {
			delete(set, string(n))
			delete(index[string(n)], c)
			if len(index[string(n)]) == 0 {
				delete(index, string(n))
			}
		}
		out = append(out, redis.Push(redis.BulkString(kind), redis.Bulk(n), redis.Int(int64(len(c.subs)+len(c.psubs)))))
	}
	return out
}

func (c *Conn) unsubscribeAll(pattern bool) { c.unsubscribe(pattern, nil) }

func (s *Server) pubsub(args [][]byte) redis.Reply {
	sub := strings.ToLower(string(args[1]))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case sub == "channels" && len(args) <= 3:
		var out []redis.Reply
		for _, ch := range sortedKeys(s.channels) {
			if len(args) == 2 || redis.GlobMatch(args[2], []byte(ch)) {
				out = append(out, redis.BulkString(ch))
			}
		}
		return redis.Array(out...)
	case sub == "numsub":
		var out []redis.Reply
		for _, ch := range args[2:] {
			out = append(out, redis.Bulk(ch), redis.Int(int64(len(s.channels[string(ch)]))))
		}
		return redis.Map(out...)
	case sub == "numpat" && len(args) == 2:
		return redis.Int(int64(len(s.patterns)))
	case sub == "channels" || sub == "numpat":
		return arityError("pubsub|" + sub)
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try PUBSUB HELP.")
}

func (s *Server) configCommand(args [][]byte) redis.Reply {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "get":
		if len(args) < 3 {
			return arityError("config|get")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return redis.Map(s.config.get(args[2:])...)
	case "set":
		if len(args) < 4 || len(args)%2 != 0 {
			return arityError("config|set")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.config.set(args[2:])
		s.notify.Store(uint32(s.config.notifyFlags()))
		s.configureSlowlog()
		return r
	case "resetstat":
		return redis.OK()
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try CONFIG HELP.")
}

// clientKill is CLIENT KILL addr (the old form: OK, or an error when no
// client matched) or CLIENT KILL filter value ... (ID, TYPE, USER, ADDR,
// SKIPME; the number killed). As in Redis, a client killing itself gets
// its reply before its connection closes. LADDR matches the address the
// client connected to (SetLocalAddr; never a connection without one).
func (c *Conn) clientKill(args [][]byte) redis.Reply {
	if len(args) < 3 {
		return arityError("client|kill")
	}
	var addr, laddr string
	var id int64
	typ, skipMe, user := "", true, ""
	hasAddr, hasLaddr := false, false
	switch {
	case len(args) == 3:
		addr, hasAddr, skipMe = string(args[2]), true, false
	case len(args) > 3:
		for i := 2; i < len(args); i += 2 {
			if i+1 >= len(args) {
				return redis.Error("ERR syntax error")
			}
			v := string(args[i+1])
			switch strings.ToLower(string(args[i])) {
			case "id":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1 {
					return redis.Error("ERR client-id should be greater than 0")
				}
				id = n
			case "type":
				switch t := strings.ToLower(v); t {
				case "normal", "pubsub":
					typ = t
				case "master", "slave", "replica":
					typ = "replica" // none here
				default:
					return redis.Error("ERR Unknown client type '" + v + "'")
				}
			case "addr":
				addr, hasAddr = v, true
			case "laddr":
				laddr, hasLaddr = v, true
			case "user":
				if !c.s.knownUser(v) {
					return redis.Error("ERR No such user '" + v + "'")
				}
				user = v
			case "skipme":
				switch strings.ToLower(v) {
				case "yes":
					skipMe = true
				case "no":
					skipMe = false
				default:
					return redis.Error("ERR syntax error")
				}
			default:
				return redis.Error("ERR syntax error")
			}
		}
	}
	var kills []func()
	killed := 0
	infos := c.s.connInfos() // before s.mu: a connection's user and laddr are read under its shownMu
	c.s.mu.Lock()
	for _, cid := range slices.Sorted(maps.Keys(c.s.conns)) {
		o := c.s.conns[cid]
		pubsub := len(o.subs)+len(o.psubs) > 0
		switch {
		case hasAddr && o.addr != addr, hasLaddr && infos[o].laddr != laddr, id != 0 && o.id != id, o == c && skipMe, user != "" && infos[o].user != user:
			continue
		case typ == "replica", typ == "pubsub" && !pubsub, typ == "normal" && pubsub:
			continue
		case o == c:
			c.closeAfterReply = true
		case o.kill == nil:
			continue // not reachable from here (no wire: tests, the simulator)
		default:
			kills = append(kills, o.kill)
		}
		killed++
	}
	c.s.mu.Unlock()
	for _, kill := range kills {
		kill()
	}
	if len(args) == 3 {
		if killed == 0 {
			return redis.Error("ERR No such client")
		}
		return redis.OK()
	}
	return redis.Int(int64(killed))
}
