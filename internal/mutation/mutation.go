// Package mutation holds the planted bugs of the mutation self-test (`make
// mutations`): realistic few-line mistakes, each guarded by On(name) at the
// place it breaks, that the simulator must catch.
//
// A planted bug exists only in builds with the orbit_mutations tag; in
// every other build On is a constant false and the compiler removes the bug
// paths. Each package declares its own bugs with Plant, at package level, so
// the list a binary can plant is the list of the packages it links.
package mutation

import (
	"fmt"
	"slices"
	"sync"
)

// Class is the kind of code a planted bug breaks (issue 10 asks for one of
// each).
type Class string

const (
	Consensus    Class = "consensus"
	Client       Class = "client"
	Snapshot     Class = "snapshot"
	Storage      Class = "storage"
	StateMachine Class = "redis state machine"
	Session      Class = "redis session"
	Availability Class = "availability" // liveness, not safety
	Split        Class = "split"        // range splits and routing
	Placement    Class = "placement"    // joins, removals, rebalancing
	Txn          Class = "transactions" // the transactional keyspace and its coordinator
	RedisTxn     Class = "redis txns"   // Redis commands across ranges (adapters/redis locks, the session's coordinator)
	SQL          Class = "sql"          // the SQL engine (query) over transactions
	Actors       Class = "actors"       // virtual actors (kernel/actor)
	LeasedReads  Class = "leased reads" // reads served off the driver under a published lease (consensus/leasedread.go)
	Clocks       Class = "clocks"       // the hybrid logical clock's steps and the clock-offset check (kernel/hlc, consensus/clockoffset.go)
	// ActorAvailability: how soon actors are reachable again after their
	// host fails (liveness, not safety).
	ActorAvailability Class = "actor availability"
)

// Bug is one planted bug.
type Bug struct {
	Name   string
	Class  Class
	Breaks string // what it breaks, in a sentence
}

var (
	mu   sync.Mutex
	bugs []Bug
)

// Plant declares a bug and returns its name, for the On guard:
//
//	var MutLocalReads = mutation.Plant("local-reads", mutation.Consensus, "...")
//
// Names are unique across the binary.
func Plant(name string, class Class, breaks string) string {
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(bugs, func(b Bug) bool { return b.Name == name }) {
		panic(fmt.Sprintf("mutation: %q planted twice", name))
	}
	bugs = append(bugs, Bug{Name: name, Class: class, Breaks: breaks})
	return name
}

// All lists every bug the binary's packages plant, in declaration order.
func All() []Bug {
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(bugs)
}

// Lookup finds a planted bug by name.
func Lookup(name string) (Bug, bool) {
	for _, b := range All() {
		if b.Name == name {
			return b, true
		}
	}
	return Bug{}, false
}
