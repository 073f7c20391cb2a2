package session

import (
	"context"
	"encoding/binary"

	"github.com/orbitkernel/orbit/kernel"
)

// PubSubPort is the network port on which nodes forward PUBLISHed messages
// to each other.
const PubSubPort = "pubsub"

// dedupWindow is how many sequence numbers behind the newest one seen from
// an origin a forwarded message is still accepted (once).
const dedupWindow = 1024

// pubsubMsg is one forwarded PUBLISH. Epoch names the origin's incarnation
// (drawn at New), so that a restarted origin, whose sequence starts again
// at 1, is not taken for a replay.
type pubsubMsg struct {
	origin       kernel.NodeID
	epoch, seq   uint64
	channel, msg []byte
}

func (m pubsubMsg) encode() []byte {
	b := make([]byte, 0, 4*binary.MaxVarintLen64+len(m.channel)+len(m.msg))
	b = binary.AppendUvarint(b, uint64(m.origin))
	b = binary.AppendUvarint(b, m.epoch)
	b = binary.AppendUvarint(b, m.seq)
	b = binary.AppendUvarint(b, uint64(len(m.channel)))
	b = append(b, m.channel...)
	return append(b, m.msg...)
}

func decodePubsub(b []byte) (m pubsubMsg, ok bool) {
	var v [4]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return m, false
		}
		v[i], b = x, b[n:]
	}
	if v[3] > uint64(len(b)) {
		return m, false
	}
	return pubsubMsg{origin: kernel.NodeID(v[0]), epoch: v[1], seq: v[2], channel: b[:v[3]], msg: b[v[3]:]}, true
}

// dedup remembers, for one origin incarnation, which of the last
// dedupWindow sequence numbers arrived.
type dedup struct {
	epoch, high uint64
	seen        [dedupWindow / 64]uint64
}

func (d *dedup) bit(seq uint64) (word int, mask uint64) {
	i := seq % dedupWindow
	return int(i / 64), 1 << (i % 64)
}

// accept reports whether seq is new, and records it.
func (d *dedup) accept(seq uint64) bool {
	switch {
	case seq > d.high:
		if seq-d.high >= dedupWindow {
			d.seen = [dedupWindow / 64]uint64{}
		} else {
			for s := d.high + 1; s < seq; s++ {
				w, m := d.bit(s)
				d.seen[w] &^= m
			}
		}
		d.high = seq
	case d.high-seq >= dedupWindow:
		return false // too old to tell: dropped, as the network might have
	default:
		if w, m := d.bit(seq); d.seen[w]&m != 0 {
			return false
		}
	}
	w, m := d.bit(seq)
	d.seen[w] |= m
	return true
}

// forward sends a message published here to every other node. It never
// blocks; the network may drop it.
func (s *Server) forward(channel, msg []byte) {
	if s.opts.Network == nil {
		return
	}
	s.mu.Lock()
	s.pubSeq++
	m := pubsubMsg{origin: s.rt.NodeID(), epoch: s.pubEpoch, seq: s.pubSeq, channel: channel, msg: msg}
	s.mu.Unlock()
	for _, n := range s.opts.Peers() {
		if n != m.origin {
			s.opts.Network.Send(n, PubSubPort, m.encode()) // a body per send: the network owns it
		}
	}
}

// receivePubsub delivers the messages other nodes forward to this node's
// subscribers, each once, until the node stops.
func (s *Server) receivePubsub(ctx context.Context, inbox *kernel.Mailbox[kernel.Envelope]) {
	seen := map[kernel.NodeID]*dedup{}
	for {
		env, err := inbox.Recv(ctx)
		if err != nil {
			return
		}
		m, ok := decodePubsub(env.Body)
		if !ok || m.origin != env.From || m.origin == s.rt.NodeID() {
			continue
		}
		d := seen[m.origin]
		if d == nil || d.epoch != m.epoch {
			d = &dedup{epoch: m.epoch}
			seen[m.origin] = d
		}
		if d.accept(m.seq) {
			s.deliver(m.channel, m.msg)
		}
	}
}
