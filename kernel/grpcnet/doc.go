// Package grpcnet is the production network between orbit processes: the
// kernel.Network contract (datagrams between node IDs, to named ports) over
// gRPC streams. A Transport plugs into the production runtime as
// prod.Options.Net; the simulator never sees it.
//
// # Sending
//
// Each known peer has a bounded queue (Options.QueueMessages and
// QueueBytes) and one goroutine that owns one long-lived bidirectional gRPC
// stream to it. Send appends to the queue and returns at once; when the queue
// is full the message is dropped and counted, never waited for, as the
// datagram contract allows. The goroutine drains whatever is queued into one
// batch frame of at most Options.BatchBytes (a single larger message travels
// alone) and writes it to the stream. When the stream breaks it dials again
// after an exponential backoff with jitter, between Options.BackoffMin and
// BackoffMax; a dial and handshake that take longer than Options.DialTimeout
// count as a failure. Messages stay queued while the peer is away, up to the
// bound. A message whose port and body exceed Options.MaxMessageBytes is
// refused and counted at Send, so that it never breaks a stream. Sending to
// Self delivers straight to the node's own inboxes.
//
// Messages to one peer arrive in the order they were sent as long as its
// stream lasts. Across a reconnection the batch being written may be lost,
// and nothing is ever retransmitted: the components above retry.
//
// # Receiving
//
// The Transport serves every inbound stream on Options.Listen. A stream must
// open with a hello naming the cluster, the sender and the intended receiver;
// a stream from another cluster, to another node, or in a frame version this
// node does not speak is refused with a gRPC status that says why. Each
// message of each batch is handed to the attached runtime's kernel.Inboxes as
// an Envelope from the hello's node; a port nobody listens on, or a full
// inbox, drops it (counted in Stats.InboxDropped).
//
// # Wire format, version 1
//
// The service is "orbit.grpcnet.v1.Peer" with one bidirectional streaming
// method, "Stream". No protobuf is involved: the gRPC content-subtype is
// "orbit-grpcnet" (content-type application/grpc+orbit-grpcnet), a codec that
// sends each frame's bytes as they are. Every gRPC message is one frame:
//
//	frame   = version:u8 kind:u8 payload
//	version = 1
//	kind 1, hello   (client to server, first): cluster:u64le from:u64le to:u64le
//	kind 2, welcome (server to client, reply to an accepted hello): empty
//	kind 3, batch   (client to server, after the welcome):
//	        count:uvarint { portLen:uvarint port bodyLen:uvarint body } * count
//
// uvarint is encoding/binary's unsigned varint. The server sends nothing
// after the welcome; the client reads the stream only to learn that it
// ended. A refused hello ends the stream with codes.FailedPrecondition
// (wrong cluster or wrong node), codes.Unimplemented (unknown version) or
// codes.InvalidArgument (malformed); a malformed batch ends it with
// codes.InvalidArgument. A new incompatible format gets a new version
// number, and the server answers a version it does not know with
// Unimplemented rather than guessing.
//
// # Limits
//
// One message (port plus body) is at most Options.MaxMessageBytes, 16 MiB by
// default; gRPC's send and receive limits are set to that plus a small frame
// overhead. Every node of a cluster must use the same value: a receiver with
// a smaller limit ends the stream of a sender with a larger one.
//
// # TLS
//
// Streams are plaintext unless Options.ServerTLS and ClientTLS are set;
// orbit serve --certs-dir sets them for mutual TLS (each side presents a
// node certificate of the cluster's CA; see docs/security.md). Beyond the
// certificates and the cluster ID, peers are not authenticated.
package grpcnet
