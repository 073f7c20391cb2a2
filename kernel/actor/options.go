package actor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// Ref names an actor: its type and its key within the type.
type Ref struct {
	Type string
	Key  string
}

func (r Ref) String() string { return r.Type + "/" + r.Key }

// Call is one method call as the actor's handler sees it.
type Call struct {
	Ref     Ref
	Method  string
	Payload []byte
	// State is the actor's durable state as the last committed turn left
	// it (nil: none yet). The handler must not keep or change it.
	State []byte
	// Reminder is the name of the reminder that is due, when this turn
	// is its firing (Method is then "", Payload the reminder's).
	Reminder string
	// Timer is the name of the activation's timer that is due, when this
	// turn is its tick (Method is then "").
	Timer string
	// Reply, when set, is the answer to one of the actor's own calls to
	// another actor (Result.Calls): this turn is its delivery (Method is
	// then "").
	Reply *CallReply
	// Now is the host's clock at the turn: a handler that needs the time
	// (a reminder's due time) takes it from here, so that it runs the
	// same under the simulator.
	Now time.Time
}

// OutCall is a call an actor makes to another (Result.Calls): an effect
// written in the turn's transaction (so a deposed activation can make
// none), then delivered once the turn commits, at most once however often
// it is sent (it is numbered by its sender), and answered by a later turn
// of the sender (Call.Reply, with Tag). A sender's calls are delivered
// one at a time, in order.
type OutCall struct {
	To      Ref
	Method  string
	Payload []byte
	Tag     string // the sender's name for the call, handed back with the reply
}

// CallReply is the answer to an OutCall: the target's reply, or its
// definite refusal in Err (the call did not happen). A call whose
// outcome is unknown is sent again, never answered as failed.
type CallReply struct {
	Tag     string
	Payload []byte
	Err     string
}

// Reminder is a durable timer of an actor: once Due has passed it fires a
// turn (Call.Reminder set), activating the actor if needed, at least once
// — also after its host's death. Set or cancelled by a turn's Result.
// A reminder that fires is removed in the same transaction as the firing
// turn's effects, or moved on by Period if it repeats.
type Reminder struct {
	Name    string
	Due     time.Time
	Period  time.Duration // 0: once
	Payload []byte
	Cancel  bool // remove the reminder of this name instead
}

// Result is a turn's outcome.
type Result struct {
	Reply []byte
	// Write says the turn changes the state to State (nil: no state). A
	// turn without Write writes nothing (a read).
	Write bool
	State []byte
	// Reminders are set (or cancelled) with the turn's state change,
	// whether or not it writes the state.
	Reminders []Reminder
	// Calls are the turn's calls to other actors (effects).
	Calls []OutCall
	// Timers are set (or cancelled) once the turn commits.
	Timers []Timer
}

// Timer is an activation's timer (Orleans' timers): it ticks a turn
// (Call.Timer set) After from when it was set, and every Period after
// that if Period > 0, while the activation lives. It is not durable: it
// goes with its activation (a deactivation, a failover), and it does not
// keep the activation from going idle. For what must happen whatever
// becomes of the activation, use a Reminder.
type Timer struct {
	Name   string
	After  time.Duration
	Period time.Duration
	Cancel bool
}

// Handler runs one turn of an actor type. It may run more than once for
// one call (a transaction that must retry runs it again), so it must act
// only through its Result: it is a function of the call and the state.
// An error reaches the caller as a *MethodError and changes nothing.
type Handler func(ctx context.Context, c Call) (Result, error)

// Placement says where a call for an actor nobody hosts activates it.
type Placement uint8

const (
	// PlaceRandom picks a host at random (the default).
	PlaceRandom Placement = iota
	// PlaceLocal prefers the calling node when it hosts actors.
	PlaceLocal
	// PlaceHash picks a host by the actor's name, so a type's actors
	// spread evenly and the same actor returns to the same host while the
	// host set stays the same (and none is suspected: see Routes).
	PlaceHash
	// PlaceLeastLoaded asks every host how many activations it runs and
	// picks the one with fewest (a round of small calls per placement).
	PlaceLeastLoaded
)

// Options configure a Host and a Client. Runtime and NewDB are required;
// Types is required of a Host.
type Options struct {
	Runtime kernel.Runtime
	// Wall, if set, is the clock leases, request records, reminders and
	// Call.Now read. Default: the runtime's Now. A node passes its hybrid
	// logical clock's physical part (kernel/hlc), which does not follow a
	// step of the wall clock: a host whose clock jumped a minute ahead
	// would otherwise take expired-looking request records for old ones
	// and sweep them, and a call sent again would run twice.
	Wall func() time.Time
	// NewDB makes a client of the transactional keyspace (kernel/node's
	// Node.NewDB); a Host keeps a pool of up to Turns of them.
	NewDB func(name string) (*txn.DB, error)

	// Types are the actor types a Host runs, by name.
	Types map[string]Handler

	// LeaseDuration is how long a directory entry keeps other nodes from
	// taking an actor over after the holder's last renewal (a turn renews
	// it when half of it is left). A dead host's actors are unavailable
	// that long. Default 5 s.
	LeaseDuration time.Duration
	// IdleTimeout deactivates an activation that had no call for that
	// long, giving its lease up. Default 10 min.
	IdleTimeout time.Duration
	// RequestTTL is how long a caller's last request stays recorded with
	// an actor after the turn that recorded it: a call sent again under
	// the same number within it runs at most once. Older records are
	// removed as the actor activates and as it renews its lease, so an
	// actor called by many short-lived clients (every process of the Go
	// client is a new caller) keeps no record per caller forever.
	// Default 24 h.
	RequestTTL time.Duration
	// MailboxSize bounds the calls queued for one activation; a call
	// beyond it is refused with ErrOverloaded. Default 1,024.
	MailboxSize int
	// Turns bounds the turns a Host runs at once (its transactional
	// clients). Default 64.
	Turns int

	// Hosts lists the nodes that host actors, for placement (a Client).
	Hosts func() []kernel.NodeID
	// Placement is a Client's placement strategy. Default PlaceRandom.
	Placement Placement
	// Routes, if set, is shared by every client made with these options
	// (a node's clients and its host's): where actors were found, which
	// hosts lately failed to answer. Nil: a Host makes one for its own
	// clients, a Client alone keeps its own.
	Routes *Routes
	// AttemptTimeout bounds one attempt of a call at one host before the
	// Client tries again (with the same request number). Default 2 s.
	AttemptTimeout time.Duration
	// ReminderScan is how often a Host looks for due reminders (every
	// host looks at all of them: a reminder may fire on several, and
	// runs once). Default 1 s; negative: never.
	ReminderScan time.Duration

	// OnCommit, if set, hears of every turn that committed a state change
	// (the simulator's single-activation check).
	OnCommit func(Commit)
}

// Commit describes a committed state change: by which activation (node
// and epoch), to which version, for which call (its client and number,
// or the reminder and the due time it fired for, or the actor's own call
// whose answer it took).
type Commit struct {
	Ref         Ref
	Node        kernel.NodeID
	Epoch       uint64
	Version     uint64
	Client, Seq uint64
	Reminder    string
	Due         int64
	Outbox      uint64 // the actor's own call this turn took the answer of
}

// ErrInvalidOptions wraps every error of Options.Validate.
var ErrInvalidOptions = errors.New("actor: invalid options")

// EnsureDefaults fills in the zero fields.
func (o *Options) EnsureDefaults() {
	if o.Wall == nil && o.Runtime != nil {
		o.Wall = o.Runtime.Now
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 5 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.RequestTTL == 0 {
		o.RequestTTL = 24 * time.Hour
	}
	if o.MailboxSize == 0 {
		o.MailboxSize = 1024
	}
	if o.Turns == 0 {
		o.Turns = 64
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 2 * time.Second
	}
	if o.ReminderScan == 0 {
		o.ReminderScan = time.Second
	}
}

// Validate reports what is missing or out of range.
func (o *Options) Validate() error {
	switch {
	case o.Runtime == nil:
		return fmt.Errorf("%w: no runtime", ErrInvalidOptions)
	case o.NewDB == nil:
		return fmt.Errorf("%w: no NewDB", ErrInvalidOptions)
	case o.LeaseDuration < 0 || o.IdleTimeout < 0 || o.AttemptTimeout < 0 || o.RequestTTL < 0:
		return fmt.Errorf("%w: negative duration", ErrInvalidOptions)
	case o.MailboxSize < 0 || o.Turns < 0:
		return fmt.Errorf("%w: negative bound", ErrInvalidOptions)
	case o.Placement > PlaceLeastLoaded:
		return fmt.Errorf("%w: unknown placement %d", ErrInvalidOptions, o.Placement)
	}
	return nil
}
