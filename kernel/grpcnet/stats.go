package grpcnet

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/orbitkernel/orbit/kernel"
)

// Stats are a Transport's counters, for metrics. Counters only grow;
// Queued, QueuedBytes and Connected are the present state.
type Stats struct {
	// Peers has one entry per known peer and per node that opened a stream
	// here, in node order.
	Peers []PeerStats
	// Local counts sends to Self, delivered without the network.
	Local uint64
	// NoRoute counts sends to a node with no address (never set, or
	// removed), dropped.
	NoRoute uint64
	// InboxDropped counts messages that arrived (or were sent to Self) but
	// that no inbox took: no runtime attached, nobody listening on the
	// port, or the inbox full.
	InboxDropped uint64
	// Refused counts inbound streams refused at the hello: another
	// cluster, another node, an unknown frame version.
	Refused uint64
	// Malformed counts inbound streams ended by a frame that did not
	// decode.
	Malformed uint64
}

// PeerStats describe the traffic with one node.
type PeerStats struct {
	Node kernel.NodeID
	// Addr is where the node is dialled; empty for a node that only sent
	// here.
	Addr string
	// Connected reports whether a stream to the node is open now.
	Connected bool
	// LastError says why the last stream or dial ended; empty while
	// connected.
	LastError string

	// Queued and QueuedBytes are what waits in the send queue now.
	Queued      int
	QueuedBytes int
	// Sent counts messages written to a stream, in SentBatches frames of
	// SentBytes bytes in all. A message written to a stream that then
	// breaks may still be lost.
	Sent        uint64
	SentBatches uint64
	SentBytes   uint64
	// Dropped counts messages lost on this side: the queue was full, the
	// stream write failed, or the peer was removed with messages queued.
	Dropped uint64
	// Oversized counts messages refused for exceeding MaxMessageBytes.
	Oversized uint64
	// Stale counts messages dropped for waiting longer than MaxQueueAge.
	Stale uint64
	// Connects counts streams established; Reconnects is those after the
	// first, and ConnectFailures the dials or handshakes that failed.
	Connects        uint64
	Reconnects      uint64
	ConnectFailures uint64

	// Received counts messages that arrived from the node, in
	// ReceivedBatches frames of ReceivedBytes bytes.
	Received        uint64
	ReceivedBatches uint64
	ReceivedBytes   uint64
}

// inboundStats count what arrives from one node.
type inboundStats struct {
	messages, frames, bytes atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	s := Stats{
		Local:        t.local.Load(),
		NoRoute:      t.noRoute.Load(),
		InboxDropped: t.inboxDropped.Load(),
		Refused:      t.refused.Load(),
		Malformed:    t.malformed.Load(),
	}
	t.mu.RLock()
	byNode := make(map[kernel.NodeID]*PeerStats, len(t.peers)+len(t.inbound))
	entry := func(id kernel.NodeID) *PeerStats {
		ps := byNode[id]
		if ps == nil {
			ps = &PeerStats{Node: id}
			byNode[id] = ps
		}
		return ps
	}
	for id, p := range t.peers {
		ps := entry(id)
		p.mu.Lock()
		ps.Addr = p.addr
		ps.Connected = p.connected
		ps.LastError = p.lastErr
		ps.Queued = len(p.queue) - p.head
		ps.QueuedBytes = p.queuedBytes
		p.mu.Unlock()
		ps.Sent = p.sent.Load()
		ps.SentBatches = p.sentBatches.Load()
		ps.SentBytes = p.sentBytes.Load()
		ps.Dropped = p.dropped.Load()
		ps.Oversized = p.oversized.Load()
		ps.Stale = p.stale.Load()
		ps.Connects = p.connects.Load()
		ps.Reconnects = max(ps.Connects, 1) - 1
		ps.ConnectFailures = p.connectFailures.Load()
	}
	for id, in := range t.inbound {
		ps := entry(id)
		ps.Received = in.messages.Load()
		ps.ReceivedBatches = in.frames.Load()
		ps.ReceivedBytes = in.bytes.Load()
	}
	t.mu.RUnlock()
	s.Peers = make([]PeerStats, 0, len(byNode))
	for _, ps := range byNode {
		s.Peers = append(s.Peers, *ps)
	}
	slices.SortFunc(s.Peers, func(a, b PeerStats) int { return cmp.Compare(a.Node, b.Node) })
	return s
}

// Peer returns the stats of one node, and whether there are any.
func (s Stats) Peer(id kernel.NodeID) (PeerStats, bool) {
	i, ok := slices.BinarySearchFunc(s.Peers, id, func(ps PeerStats, id kernel.NodeID) int { return cmp.Compare(ps.Node, id) })
	if !ok {
		return PeerStats{}, false
	}
	return s.Peers[i], true
}

func sortedIDs(m map[kernel.NodeID]string) []kernel.NodeID {
	ids := make([]kernel.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
