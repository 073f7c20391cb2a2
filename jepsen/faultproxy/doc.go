// Package faultproxy forwards the TCP links between real orbit processes
// and injects network faults into them, without root, firewalls or network
// namespaces, so that a Jepsen-style harness can partition, slow down and
// break a cluster running on loopback.
//
// # One listener per ordered link
//
// Orbit nodes talk over kernel/grpcnet: node A dials node B and carries
// only A→B messages on that one long-lived connection (B answers a short
// handshake and then sends nothing). So the direction of a message is the
// direction of its connection, and a fault on the ordered pair (A, B) is a
// fault on the connections A opens to B. The harness calls Link(A, B,
// addrOfB) for every ordered pair, gets back a port of this proxy, and puts
// that port into A's peer list as B's address. Every link is then a
// separate listener, and every connection accepted on it is forwarded to
// the target with two copying directions, each a reader goroutine that
// takes chunks (up to 32 KiB) off one socket into a bounded FIFO and a
// writer goroutine that writes them to the other socket. The faults of a
// link act on both directions of its connections: cutting A→B also
// silences the handshake reply, exactly as a firewall rule on the A→B flow
// would break the TCP connection both ways.
//
// # Cut stalls rather than resets
//
// Cut models an iptables DROP partition. Under DROP nothing is delivered,
// but neither end learns that: the sender's bytes pile up in its socket
// buffer, its writes eventually block, and when the rule goes away TCP
// retransmits and the connection carries on as if it had been slow.
// Resetting connections instead would be a different, kinder fault: the
// sender would see an error at once and reconnect, which never exercises
// the timeouts (gRPC keepalive, dial timeouts, Raft elections) that a real
// partition exercises. So a cut link stops reading from both sockets of
// every connection, holds connections that arrive during the cut without
// dialing the target, and forwards nothing. Heal lets everything through in
// order; Cut followed by Heal loses nothing.
//
// Invariant: no byte is written to either socket of a connection of a cut
// link between the return of Cut and the next Heal. Cut interrupts reads
// and writes in flight (by moving the sockets' deadlines into the past) and
// waits for interrupted writes to return before it returns; a write that
// was cut short resumes with its remainder after the heal. Bytes the proxy
// already wrote into the kernel before Cut returned may still reach the
// receiving process, as bytes already on the wire would.
//
// # Loss is a reset
//
// TCP cannot lose a byte range and go on: the receiver would see a corrupt
// stream, not a lost message. What a lossy network does to a TCP connection
// in the end is break it, so Loss resets the connection (RST on both
// sockets) when a forwarded chunk draws the loss, and what was in flight on
// it is gone. The datagram network above (grpcnet) is built for that: it
// dials again and drops what it was sending, and the components above it
// retry. Reset does the same on demand, to every current connection of a
// link at once.
//
// # Delay
//
// Delay holds every chunk for mean±jitter (uniform) after it was read,
// then writes it in order: a chunk never overtakes the one read before it,
// so a short draw after a long one waits for the long one. A change of
// delay (Heal included) also shortens the wait of chunks already queued to
// at most the new maximum.
//
// Randomness for loss and jitter comes from one generator seeded by New,
// so that a run's fault decisions depend only on the seed and on the order
// in which chunks arrive. Goroutine scheduling still makes a real run
// irreproducible; the seed makes it less so and lets a failure be retried.
package faultproxy
