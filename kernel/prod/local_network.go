package prod

import (
	"slices"
	"sync"

	"github.com/orbitkernel/orbit/kernel"
)

// LocalNetwork connects runtimes in one process: a message is copied
// straight into the destination's inbox, in order and without loss. It is
// for tests and single-process demos; the gRPC transport between processes
// implements the same kernel.Network contract.
type LocalNetwork struct {
	mu    sync.RWMutex
	nodes map[kernel.NodeID]*endpoint
}

// NewLocalNetwork returns an empty in-process network.
func NewLocalNetwork() *LocalNetwork {
	return &LocalNetwork{nodes: map[kernel.NodeID]*endpoint{}}
}

type endpoint struct {
	net     *LocalNetwork
	id      kernel.NodeID
	inboxes *kernel.Inboxes
}

var _ Network = (*LocalNetwork)(nil)

// Attach implements Network. Two attached runtimes may not share a node ID.
func (n *LocalNetwork) Attach(rt kernel.Runtime) (kernel.Network, func()) {
	e := &endpoint{net: n, id: rt.NodeID(), inboxes: kernel.NewInboxes(rt)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.nodes[e.id]; dup {
		panic("prod: two runtimes with one node ID on a network")
	}
	n.nodes[e.id] = e
	return e, func() {
		n.mu.Lock()
		if n.nodes[e.id] == e {
			delete(n.nodes, e.id)
		}
		n.mu.Unlock()
		e.inboxes.Close()
	}
}

func (e *endpoint) Send(to kernel.NodeID, port string, body []byte) {
	e.net.mu.RLock()
	dst := e.net.nodes[to]
	e.net.mu.RUnlock()
	if dst != nil {
		dst.inboxes.Deliver(kernel.Envelope{From: e.id, Port: port, Body: slices.Clone(body)})
	}
}

func (e *endpoint) Listen(port string) *kernel.Mailbox[kernel.Envelope] {
	return e.inboxes.Listen(port)
}

func (e *endpoint) ListenNew(port string) (string, *kernel.Mailbox[kernel.Envelope]) {
	return e.inboxes.ListenNew(port)
}
