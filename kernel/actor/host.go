package actor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// Port is the port hosts serve calls on.
const Port = "actor"

// Host runs a node's activations: one task per activation, taking its
// calls one at a time (a turn each) from a bounded mailbox.
type Host struct {
	opts Options
	rt   kernel.Runtime
	dbs  *kernel.Pool[*txn.DB]

	// clients deliver the activations' calls to other actors.
	clients *kernel.Pool[*Client]

	mu   sync.Mutex
	acts map[Ref]*activation
	// delivering: the senders whose calls a task here is delivering.
	delivering map[Ref]bool
	// perturb: the simulator's perturbations (perturb.go).
	perturb perturbations
}

// activation is one live instance of an actor on this node. Only its task
// touches epoch, state and version.
type activation struct {
	ref     Ref
	handler Handler
	inbox   *kernel.Mailbox[pendingCall]
	// leaving: Deactivate closed the mailbox; new calls are turned away
	// (guarded by Host.mu).
	leaving bool

	epoch   uint64       // the directory epoch it holds
	expiry  atomic.Int64 // its lease's end as it last wrote it (its turns' lease keeper writes it too)
	state   []byte       // as the last committed turn left it
	version uint64

	// timers are the activation's timers, by name (only its task).
	timers map[string]*timerState

	// swept is when (monotonic) the activation last removed expired
	// request records; sweepFrom is where the next sweep starts (nil: at
	// the first record).
	swept     time.Duration
	sweepFrom []byte

	// remembered holds callers' last requests in memory, only under the
	// planted bug MutRequestsForgotten (lost with the activation).
	remembered map[uint64]lastRequest

	// reads are, per caller, the last numbered call this activation ran
	// as a read (it changed nothing, so nothing recorded it): a copy of
	// it (a resend, or a duplicate the network delivers late) gets the
	// same reply instead of running again, where it could change the
	// actor after its caller took the read's answer (docs/actors.md,
	// "Exactly-once state changes"; actors seed 109). Only its task
	// touches it; at most maxReads callers.
	reads map[uint64]lastRequest
}

// maxReads bounds activation.reads: past it the memory starts afresh.
const maxReads = 4096

// pendingCall is a call waiting in an activation's mailbox.
type pendingCall struct {
	req   request
	reply func([]byte, error)
	// expires is when (monotonic) its caller stops waiting for this
	// attempt (request.Budget after it arrived; 0: never).
	expires time.Duration
}

// NewHost returns a host on opts.Runtime; Start starts serving.
func NewHost(opts Options) (*Host, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(opts.Types) == 0:
		return nil, fmt.Errorf("%w: a host with no actor types", ErrInvalidOptions)
	case opts.ReminderScan > 0 && opts.Hosts == nil:
		return nil, fmt.Errorf("%w: a host that fires reminders needs Hosts", ErrInvalidOptions)
	}
	if opts.Routes == nil {
		opts.Routes = NewRoutes() // the host's clients learn together
	}
	if _, ok := opts.Types[SagaType]; !ok { // built in: every host runs sagas
		opts.Types = maps.Clone(opts.Types)
		opts.Types[SagaType] = Saga
	}
	h := &Host{opts: opts, rt: opts.Runtime, acts: map[Ref]*activation{}, delivering: map[Ref]bool{}}
	h.clients = kernel.NewPool(opts.Runtime, "actor clients", opts.Turns, func() (*Client, error) { return NewClient(opts) })
	h.dbs = txn.NewPool(opts.Runtime, opts.Turns, "actor", opts.NewDB)
	return h, nil
}

// Start serves calls on Port and scans for due reminders.
func (h *Host) Start() {
	kernel.ServeAsync(h.rt, Port, h.serve)
	if h.opts.ReminderScan > 0 {
		h.rt.Go("actor reminders", h.scanReminders)
	}
}

// Activations lists the actors active here, in name order.
func (h *Host) Activations() []Ref {
	h.mu.Lock()
	defer h.mu.Unlock()
	refs := make([]Ref, 0, len(h.acts))
	for r := range h.acts {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b Ref) int { return bytes.Compare(nameKey(a), nameKey(b)) })
	return refs
}

// Deactivate ends the actor's activation here, if there is one: the calls
// already queued run, later ones are told to try again (and activate it
// afresh), then it gives its lease up. It reports whether there was one.
func (h *Host) Deactivate(ref Ref) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.acts[ref]
	if a == nil || a.leaving {
		return false
	}
	a.leaving = true
	a.inbox.Close()
	return true
}

// Drain deactivates every activation here (their queued calls run first,
// then each gives its lease up, so the next calls activate them elsewhere
// at once) and waits until they are gone or ctx ends: a node stopping
// gracefully hands its actors over without making them wait for their
// leases to run out.
func (h *Host) Drain(ctx context.Context) error {
	for _, r := range h.Activations() {
		h.Deactivate(r)
	}
	for len(h.Activations()) > 0 {
		if err := h.rt.Sleep(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("actor: %d activations still here: %w", len(h.Activations()), err)
		}
	}
	return nil
}

// serve hands a call to its activation, starting one if there is none.
func (h *Host) serve(ctx context.Context, from kernel.NodeID, body []byte, reply func([]byte, error)) {
	respond := func(b []byte, err error) {
		if err != nil {
			err = toWire(err)
		}
		reply(b, err)
	}
	req, err := decodeRequest(body)
	if err != nil {
		return // not a call: nobody to answer
	}
	if req.Ref.Type == "" && req.Method == loadMethod {
		respond(binary.AppendUvarint(nil, uint64(len(h.Activations()))), nil)
		return
	}
	handler, ok := h.opts.Types[req.Ref.Type]
	if !ok {
		respond(nil, fmt.Errorf("%w %q", ErrUnknownType, req.Ref.Type))
		return
	}
	h.mu.Lock()
	a := h.acts[req.Ref]
	if a == nil {
		a = &activation{ref: req.Ref, handler: handler,
			inbox: kernel.NewMailbox[pendingCall](h.rt, "actor "+req.Ref.String(), h.opts.MailboxSize)}
		h.acts[req.Ref] = a
		h.rt.Go("actor "+req.Ref.String(), func(ctx context.Context) { h.run(ctx, a) })
	}
	leaving := a.leaving
	pc := pendingCall{req: req, reply: respond}
	if req.Budget > 0 {
		pc.expires = h.rt.Monotonic() + req.Budget
	}
	queued := !leaving && a.inbox.Send(pc)
	h.mu.Unlock()
	switch {
	case leaving:
		respond(nil, fmt.Errorf("%s is being deactivated here", req.Ref)) // the client tries again
	case !queued:
		respond(nil, fmt.Errorf("%w: %s has %d calls waiting", ErrOverloaded, req.Ref, h.opts.MailboxSize))
	}
}

// run is an activation's task: activate, then take turns until the
// activation goes idle, is deposed, or cannot know its state.
func (h *Host) run(ctx context.Context, a *activation) {
	var last error = errAgain
	defer func() { h.remove(a, last) }()
	if err := h.activate(ctx, a); err != nil {
		last = err
		return
	}
	lastCall := h.rt.Monotonic()
	for {
		// Wait for a call until the activation has been idle for
		// IdleTimeout (timers do not keep it), or its next timer.
		wait := lastCall + h.opts.IdleTimeout - h.rt.Monotonic()
		timer, due := a.nextTimer()
		if timer != "" {
			wait = min(wait, due-h.rt.Monotonic())
		}
		var c pendingCall
		var err error
		if wait > 0 {
			wctx, cancel := h.rt.WithTimeout(ctx, wait)
			c, err = a.inbox.Recv(wctx)
			cancel()
		} else {
			err = context.DeadlineExceeded
		}
		if err == nil {
			c = h.newestIfOverloaded(a, c)
		}
		req := c.req
		switch {
		case err == nil && c.expires != 0 && h.rt.Monotonic() > c.expires && !mutation.On(MutExpiredCallsRun):
			// Its caller gave this attempt up (request.Budget): drop it
			// unrun; the caller sends it again.
			lastCall = h.rt.Monotonic()
			c.reply(nil, fmt.Errorf("%w: %s's call waited past its caller's attempt", errAgain, a.ref))
			continue
		case err == nil:
			lastCall = h.rt.Monotonic()
		case ctx.Err() != nil:
			return // the node stops
		case errors.Is(err, context.DeadlineExceeded) && timer != "" && h.rt.Monotonic() >= due:
			req = request{Ref: a.ref, timer: timer}
			c.reply = func([]byte, error) {} // nobody waits for a timer's turn
		default: // idle, or deactivated
			h.release(ctx, a)
			return
		}
		stop := h.keepLease(ctx, a)
		reply, err := h.turn(ctx, a, req)
		stop()
		if err != nil && !definite(err) {
			// Deposed, or the turn's outcome is unknown: what this
			// activation holds may not be the actor's state any more.
			c.reply(nil, err)
			last = err
			return
		}
		c.reply(reply, err)
	}
}

// newestIfOverloaded is adaptive LIFO (as Facebook's services shed load):
// when the call taken, the oldest queued, has waited more than half its
// caller's attempt and a newer call waits behind it, the activation is
// overloaded. The oldest is answered "try again" unrun (its caller sends
// it again) and the newest runs instead: its caller has most of its
// attempt left, so the turn's answer is heard. Serving in order there
// answers each call near the end of its attempt, most of them after it:
// the simulator's hot, slow counter (actors scenario) went 6–18 s
// without an answer after the cluster served again, at 6 of 150 seeds,
// with the expiry drop alone. A caller numbers its calls and waits for each, so calls
// of one caller are never reordered, only copies of one call.
func (h *Host) newestIfOverloaded(a *activation, c pendingCall) pendingCall {
	if c.expires == 0 || h.rt.Monotonic() < c.expires-c.req.Budget/2 || mutation.On(MutExpiredCallsRun) {
		return c
	}
	newest, ok := a.inbox.TryRecvNewest()
	if !ok {
		return c
	}
	c.reply(nil, fmt.Errorf("%w: %s is overloaded: its newest call goes first", errAgain, a.ref))
	return newest
}

// definite reports whether a turn's error leaves the activation's state
// as it was: the turn refused before writing anything.
func definite(err error) bool {
	var me *MethodError
	return errors.As(err, &me) || errors.Is(err, ErrStaleRequest)
}

// remove ends an activation: it leaves the map and every call still
// queued is answered with why (the caller tries again).
func (h *Host) remove(a *activation, why error) {
	h.mu.Lock()
	if h.acts[a.ref] == a {
		delete(h.acts, a.ref)
	}
	a.inbox.Close()
	h.mu.Unlock()
	for {
		c, ok := a.inbox.TryRecv()
		if !ok {
			return
		}
		c.reply(nil, why)
	}
}

// withDB runs fn in a transaction of a pooled DB.
func (h *Host) withDB(ctx context.Context, fn func(*txn.Tx) error) error {
	db, err := h.dbs.Take(ctx)
	if err != nil {
		return err
	}
	defer h.dbs.Put(db)
	return db.Txn(ctx, fn)
}

// activate takes the actor's directory entry with the next epoch, unless
// another node's lease on it still runs, and loads its state.
func (h *Host) activate(ctx context.Context, a *activation) error {
	self := h.rt.NodeID()
	return h.withDB(ctx, func(tx *txn.Tx) error {
		e, found, err := readDir(ctx, tx, a.ref)
		if err != nil {
			return err
		}
		now := h.opts.Wall().UnixNano()
		if found && e.Node != self && e.Expiry > now {
			return &NotHereError{Node: e.Node}
		}
		a.epoch = e.Epoch + 1
		expiry := now + int64(h.opts.LeaseDuration)
		a.expiry.Store(expiry)
		if err := tx.Put(ctx, dirKey(a.ref), dirEntry{Node: self, Epoch: a.epoch, Expiry: expiry}.encode()); err != nil {
			return err
		}
		v, found, err := tx.Get(ctx, stateKey(a.ref))
		if err != nil {
			return err
		}
		a.state, a.version = nil, 0
		if found {
			s, err := decodeStateRecord(v)
			if err != nil {
				return fmt.Errorf("actor %s: state: %w", a.ref, err)
			}
			a.state, a.version = s.State, s.Version
		}
		a.swept = h.rt.Monotonic()
		return h.sweepRequests(ctx, tx, a, now)
	})
}

// sweepLimit bounds the request records one sweep reads.
const sweepLimit = 256

// sweepRequests removes, in the transaction tx, the records of callers
// whose last request was recorded more than RequestTTL before now: up to
// sweepLimit records from where the last sweep stopped (a.sweepFrom),
// wrapping to the first once it reaches the end.
func (h *Host) sweepRequests(ctx context.Context, tx *txn.Tx, a *activation, now int64) error {
	if mutation.On(MutRequestsForgotten) {
		return nil // they are in memory
	}
	start, end := requestSpan(a.ref)
	if a.sweepFrom != nil {
		start = a.sweepFrom
	}
	kvs, err := tx.Scan(ctx, start, end, sweepLimit)
	if err != nil {
		return err
	}
	a.sweepFrom = nil
	if len(kvs) == sweepLimit {
		a.sweepFrom = append(slices.Clone(kvs[len(kvs)-1].Key), 0)
	}
	for _, kv := range kvs {
		l, err := decodeLastRequest(kv.Value)
		if err != nil {
			return fmt.Errorf("actor %s: a caller's last request: %w", a.ref, err)
		}
		if h.requestExpired(l, now) {
			if err := tx.Delete(ctx, kv.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// requestExpired reports whether a caller's last request, as recorded,
// has outlived RequestTTL at now (wall ns): a record of the first version
// (At 0) never does.
func (h *Host) requestExpired(l lastRequest, now int64) bool {
	ttl := int64(h.opts.RequestTTL)
	if mutation.On(MutRequestsExpireEarly) {
		ttl /= 1000 // milliseconds taken for microseconds
	}
	return l.At != 0 && now-l.At > ttl
}

// turn runs one call in a transaction that commits only while the
// activation's epoch is the directory's: the epoch fences a deposed
// activation out, the caller's last request makes the call run once.
func (h *Host) turn(ctx context.Context, a *activation, req request) ([]byte, error) {
	self := h.rt.NodeID()
	if req.timer != "" {
		// Ticked once its turn starts, whatever the turn does; the
		// turn's own timer changes apply after it.
		a.timerFired(req.timer, h.rt.Monotonic())
	}
	var reply []byte
	var wrote *stateRecord
	var madeCalls []OutCall
	var timers []Timer
	var methodErr error
	var ranAsRead bool // the handler ran and changed nothing (activation.reads)
	fenced := func(tx *txn.Tx) error {
		if mutation.On(MutLeaseNotFenced) {
			return nil
		}
		e, found, err := readDir(ctx, tx, a.ref)
		switch {
		case err != nil:
			return err
		case !e.names(found, self, a.epoch):
			return fmt.Errorf("%w: %s's activation here (epoch %d) was deposed", errAgain, a.ref, a.epoch)
		}
		return nil
	}
	if mutation.On(MutStateAfterLeaseLoss) {
		// The epoch checked in a transaction of its own, the state
		// written in another: a takeover can fall in between.
		if err := h.withDB(ctx, fenced); err != nil {
			return nil, err
		}
		fenced = func(*txn.Tx) error { return nil }
	}
	var early *reminderRecord // planted bug MutReminderDeletedEarly only
	if req.Reminder != "" && mutation.On(MutReminderDeletedEarly) {
		// The reminder taken out in a transaction of its own before the
		// turn: a turn that then fails loses it.
		if err := h.withDB(ctx, func(tx *txn.Tx) error {
			early = nil
			rec, found, err := readReminder(ctx, tx, a.ref, req.Reminder)
			if err != nil || !found || rec.Due != req.Due {
				return err
			}
			early = &rec
			return removeReminder(ctx, tx, a.ref, req.Reminder, rec)
		}); err != nil {
			return nil, err
		}
	}
	err := h.withDB(ctx, func(tx *txn.Tx) error {
		reply, wrote, madeCalls, timers, methodErr, ranAsRead = nil, nil, nil, nil, nil, false
		if err := fenced(tx); err != nil {
			return err
		}
		call := Call{Ref: a.ref, Method: req.Method, Payload: req.Payload, State: a.state, Now: h.opts.Wall()}
		var fired *reminderRecord
		var answering uint64 // the call of this actor that this turn answers
		if req.timer != "" {
			call.Method, call.Timer = "", req.timer
		}
		if req.Outbox != 0 {
			rec, found, err := readOutbox(ctx, tx, a.ref, req.Outbox)
			if err != nil || !found {
				return err // answered already: nothing to run
			}
			answering = req.Outbox
			call.Method, call.Payload = "", nil
			call.Reply = &CallReply{Tag: rec.Tag, Payload: req.Payload}
			if req.Refused {
				call.Reply.Payload, call.Reply.Err = nil, string(req.Payload)
			}
		} else if req.Reminder != "" {
			rec, found, err := readReminder(ctx, tx, a.ref, req.Reminder)
			if early != nil {
				rec, found, err = *early, true, nil
			}
			if err != nil || !found || rec.Due != req.Due {
				return err // fired already, moved or cancelled: nothing to run
			}
			fired = &rec
			call.Reminder, call.Payload = req.Reminder, rec.Payload
		} else if req.timer == "" {
			last, err := h.lastRequest(ctx, tx, a, req.Client)
			if err != nil {
				return err
			}
			if read, ok := a.reads[req.Client]; ok && read.Seq > last.Seq && !h.requestExpired(read, h.opts.Wall().UnixNano()) && !mutation.On(MutReadRunsForgotten) {
				// The caller's newest call ran here as a read, after
				// the recorded one: a copy of it gets that read's
				// reply, an older one is refused below.
				if read.Seq == req.Seq {
					reply = read.Reply
					return nil
				}
				last = read
			}
			switch {
			case last.Seq > req.Seq:
				return fmt.Errorf("%w: request %d of client %x, %d ran", ErrStaleRequest, req.Seq, req.Client, last.Seq)
			case last.Seq == req.Seq && req.Seq != 0:
				// Ran (or refused) already: its reply, not a second
				// run. The record lives RequestTTL past the call's
				// latest copy, not its run: an outbox resends a call
				// until its answer turn succeeds, which may take
				// longer than the TTL (sagas seed 244, under a runaway
				// clock: the answer failed for 8.5 s and the record
				// expired under the resends of a 10 s TTL).
				if err := h.touchRequest(ctx, tx, a, req.Client, last); err != nil {
					return err
				}
				if last.Refused {
					methodErr = &MethodError{Msg: string(last.Reply)}
				} else {
					reply = last.Reply
				}
				return nil
			}
		}
		res, err := a.handler(ctx, call)
		if err != nil {
			methodErr = &MethodError{Msg: err.Error()}
			if fired == nil && answering == 0 {
				if req.Seq == 0 || req.timer != "" {
					return nil
				}
				// A numbered call's refusal is its outcome: the same
				// call sent again gets it again, and never runs later
				// (a saga compensates the steps before a refused one).
				return h.noteRequest(ctx, tx, a, req.Client, lastRequest{Seq: req.Seq, Refused: true, At: h.opts.Wall().UnixNano(), Reply: []byte(methodErr.Error())})
			}
			res = Result{} // a refused firing or answer still ends its turn
		}
		reply = res.Reply
		ranAsRead = !res.Write && len(res.Reminders) == 0 && len(res.Calls) == 0
		now := h.opts.Wall().UnixNano()
		if res.Write {
			wrote = &stateRecord{Epoch: a.epoch, Version: a.version + 1, State: res.State}
			if err := tx.Put(ctx, stateKey(a.ref), wrote.encode()); err != nil {
				return err
			}
		}
		if fired == nil && answering == 0 && req.timer == "" && (res.Write || len(res.Reminders) > 0 || len(res.Calls) > 0) {
			// A call that changed the actor (its state, its reminders,
			// its calls) must not run again.
			if err := h.noteRequest(ctx, tx, a, req.Client, lastRequest{Seq: req.Seq, At: now, Reply: reply}); err != nil {
				return err
			}
		}
		if fired != nil && early == nil && !slices.ContainsFunc(res.Reminders, func(r Reminder) bool { return r.Name == req.Reminder }) {
			if err := settleFired(ctx, tx, a.ref, req.Reminder, *fired, now); err != nil {
				return err
			}
		}
		if err := setReminders(ctx, tx, a.ref, res.Reminders); err != nil {
			return err
		}
		if answering != 0 {
			if err := tx.Delete(ctx, outboxKey(a.ref, answering)); err != nil {
				return err
			}
		}
		if err := writeCalls(ctx, tx, a.ref, res.Calls, now); err != nil {
			return err
		}
		madeCalls, timers = res.Calls, res.Timers
		if answering != 0 {
			if err := settleOutboxIndex(ctx, tx, a.ref); err != nil {
				return err
			}
		}
		// A turn that writes anyway also removes expired request
		// records, now and then.
		if wrote != nil && h.rt.Monotonic()-a.swept >= h.opts.RequestTTL/4 {
			a.swept = h.rt.Monotonic()
			if err := h.sweepRequests(ctx, tx, a, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if methodErr != nil {
		return nil, methodErr
	}
	if ranAsRead && req.Seq != 0 && req.timer == "" && req.Reminder == "" && req.Outbox == 0 {
		// A numbered call that ran as a read: copies of it get this
		// reply (activation.reads), for RequestTTL as a record would.
		// One that changed the actor is recorded with its state.
		if a.reads == nil || len(a.reads) >= maxReads {
			a.reads = map[uint64]lastRequest{}
		}
		if a.reads[req.Client].Seq < req.Seq {
			a.reads[req.Client] = lastRequest{Seq: req.Seq, Reply: reply, At: h.opts.Wall().UnixNano()}
		}
	}
	if len(madeCalls) > 0 {
		h.kick(a.ref)
	}
	a.setTimers(timers, h.rt.Monotonic())
	if wrote != nil {
		a.state, a.version = wrote.State, wrote.Version
		if h.opts.OnCommit != nil {
			h.opts.OnCommit(Commit{Ref: a.ref, Node: self, Epoch: wrote.Epoch, Version: wrote.Version,
				Client: req.Client, Seq: req.Seq, Reminder: req.Reminder, Due: req.Due, Outbox: req.Outbox})
		}
	}
	return reply, nil
}

// touchRequest writes last again with the time now once a quarter of
// RequestTTL has passed since it was written: a caller that keeps sending
// a call keeps its record (a write per quarter TTL, not per copy).
func (h *Host) touchRequest(ctx context.Context, tx *txn.Tx, a *activation, client uint64, last lastRequest) error {
	now := h.opts.Wall().UnixNano()
	if last.At == 0 || now-last.At < int64(h.opts.RequestTTL/4) || mutation.On(MutRequestsNotTouched) {
		return nil // a record of the first version never expires
	}
	last.At = now
	return h.noteRequest(ctx, tx, a, client, last)
}

// lastRequest reads a caller's last state-changing request of the actor
// (none once it has expired).
func (h *Host) lastRequest(ctx context.Context, tx *txn.Tx, a *activation, client uint64) (lastRequest, error) {
	if mutation.On(MutRequestsForgotten) {
		return a.remembered[client], nil
	}
	v, found, err := tx.Get(ctx, requestKey(a.ref, client))
	if err != nil || !found {
		return lastRequest{}, err
	}
	last, err := decodeLastRequest(v)
	if err == nil && h.requestExpired(last, h.opts.Wall().UnixNano()) {
		// Expired, swept or not: a record lives RequestTTL past the
		// latest copy of its call, no longer, whenever the sweeps run.
		return lastRequest{}, nil
	}
	return last, err
}

// noteRequest records a caller's request as its last state-changing one,
// in the turn's transaction.
func (h *Host) noteRequest(ctx context.Context, tx *txn.Tx, a *activation, client uint64, last lastRequest) error {
	if mutation.On(MutRequestsForgotten) {
		if a.remembered == nil {
			a.remembered = map[uint64]lastRequest{}
		}
		a.remembered[client] = last // before the commit, and kept if it fails: the bug
		return nil
	}
	return tx.Put(ctx, requestKey(a.ref, client), last.encode())
}

// release gives an idle activation's lease up, if it still holds it, so
// that the next call activates the actor anywhere at once.
func (h *Host) release(ctx context.Context, a *activation) {
	rctx, cancel := h.rt.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	self := h.rt.NodeID()
	_ = h.withDB(rctx, func(tx *txn.Tx) error { // failing, it lapses instead
		e, found, err := readDir(rctx, tx, a.ref)
		if err != nil || !e.names(found, self, a.epoch) {
			return err
		}
		return tx.Put(rctx, dirKey(a.ref), dirEntry{Node: self, Epoch: a.epoch, Expiry: 0}.encode())
	})
}

// keepLease renews a's lease while a turn runs: at once if less than
// half of it is left as the turn starts, and again whenever that is so
// until the turn ends, each time in a transaction of its own that writes
// the directory entry again with the same epoch (a deposed or released
// activation renews nothing). stop ends it; a renewal under way finishes.
func (h *Host) keepLease(ctx context.Context, a *activation) (stop func()) {
	turn, cancel := h.rt.WithCancel(ctx)
	self, epoch := h.rt.NodeID(), a.epoch
	h.rt.Go("actor lease "+a.ref.String(), func(node context.Context) {
		for {
			wait := time.Duration(a.expiry.Load()-h.opts.Wall().UnixNano()) - h.opts.LeaseDuration/2
			if wait > 0 && h.rt.Sleep(turn, wait) != nil {
				return
			}
			rctx, rcancel := h.rt.WithTimeout(node, h.opts.LeaseDuration)
			expiry := h.opts.Wall().UnixNano() + int64(h.opts.LeaseDuration)
			err := h.withDB(rctx, func(tx *txn.Tx) error {
				e, found, err := readDir(rctx, tx, a.ref)
				if err == nil && (!e.names(found, self, epoch) || e.Expiry == 0) {
					err = errDeposed
				}
				if err != nil {
					return err
				}
				return tx.Put(rctx, dirKey(a.ref), dirEntry{Node: self, Epoch: epoch, Expiry: expiry}.encode())
			})
			rcancel()
			if err != nil {
				return // deposed or released (the turn finds out), or it failed
			}
			a.expiry.Store(expiry)
			if turn.Err() != nil {
				return
			}
		}
	})
	return cancel
}

var errDeposed = errors.New("actor: deposed")
