package kernel

import (
	"sort"
	"strconv"
	"sync"
)

// Envelope is one message as it arrives.
type Envelope struct {
	From NodeID
	Port string
	Body []byte
}

// Network is a node's message endpoint. Messages go between node IDs to a
// named port. The contract is a datagram's, deliberately weaker than a TCP
// stream's so that the same components run over the simulator's faulty
// network and over production gRPC streams: a message may be lost, delayed,
// duplicated or reordered, and Send never reports delivery. Protocols retry
// and deduplicate.
type Network interface {
	// Send transmits body to port on node to. It never blocks. The runtime
	// owns body after the call.
	Send(to NodeID, port string, body []byte)
	// Listen returns the inbox of a port on this node, creating it on first
	// use. A full inbox drops arriving messages.
	Listen(port string) *Mailbox[Envelope]
	// ListenNew is Listen on a port nobody on this node listens to yet:
	// port itself, or else port#2, port#3, ...; it returns the port it
	// took. For endpoints that must not share an inbox (an RPC client's
	// replies: two clients reading one inbox take each other's replies).
	ListenNew(port string) (string, *Mailbox[Envelope])
}

// InboxCapacity bounds every port's inbox.
const InboxCapacity = 4096

// Inboxes is the receiving half that both runtimes share: one mailbox per
// port, created on first Listen.
type Inboxes struct {
	rt    Runtime
	mu    sync.Mutex
	ports map[string]*Mailbox[Envelope]
	// closed is set by Close: the node is stopping.
	closed bool
}

// NewInboxes returns the inbox set of a node.
func NewInboxes(rt Runtime) *Inboxes {
	return &Inboxes{rt: rt, ports: map[string]*Mailbox[Envelope]{}}
}

// ListenNew returns the inbox of a port not listened to yet: port, or
// port#2, port#3, ... (Network.ListenNew).
func (in *Inboxes) ListenNew(port string) (string, *Mailbox[Envelope]) {
	in.mu.Lock()
	defer in.mu.Unlock()
	name := port
	for i := 2; in.ports[name] != nil; i++ {
		name = port + "#" + strconv.Itoa(i)
	}
	return name, in.open(name)
}

// Listen returns the port's inbox, creating it if needed.
func (in *Inboxes) Listen(port string) *Mailbox[Envelope] {
	in.mu.Lock()
	defer in.mu.Unlock()
	m, ok := in.ports[port]
	if !ok {
		m = in.open(port)
	}
	return m
}

// Deliver hands env to its port and reports whether it was queued: false when
// nobody listens on the port or its inbox is full.
func (in *Inboxes) Deliver(env Envelope) bool {
	in.mu.Lock()
	m, ok := in.ports[env.Port]
	in.mu.Unlock()
	return ok && m.Send(env)
}

// Close closes every inbox, waking their receivers. An inbox opened after
// Close (by a task still starting up as the node stops) is born closed, so
// its receiver does not wait for a message that can never come.
func (in *Inboxes) Close() {
	in.mu.Lock()
	in.closed = true
	names := make([]string, 0, len(in.ports))
	for name := range in.ports {
		names = append(names, name)
	}
	sort.Strings(names)
	boxes := make([]*Mailbox[Envelope], len(names))
	for i, name := range names {
		boxes[i] = in.ports[name]
	}
	in.mu.Unlock()
	for _, m := range boxes {
		m.Close()
	}
}

// open makes a port's inbox; in.mu is held.
func (in *Inboxes) open(name string) *Mailbox[Envelope] {
	m := NewMailbox[Envelope](in.rt, "port "+name, InboxCapacity)
	if in.closed {
		m.Close()
	}
	in.ports[name] = m
	return m
}
