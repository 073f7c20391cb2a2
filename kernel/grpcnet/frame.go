package grpcnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/orbitkernel/orbit/kernel"
)

// The frame format; see the package documentation.
const (
	frameVersion = 1

	kindHello   = 1
	kindWelcome = 2
	kindBatch   = 3

	helloLen = 2 + 3*8
	// frameOverhead bounds what a batch frame adds to the messages in it:
	// the header and the count, plus two length varints per message (which
	// encodedSize already counts).
	frameOverhead = 2 + binary.MaxVarintLen64
)

// Names on the wire.
const (
	serviceName = "orbit.grpcnet.v1.Peer"
	streamName  = "Stream"
	fullMethod  = "/" + serviceName + "/" + streamName
	codecName   = "orbit-grpcnet"
)

// errMalformed is wrapped by every decoding error: the peer sent bytes that
// are not a frame of this version. It is a bug on one side or the other, so
// the stream ends.
var errMalformed = errors.New("grpcnet: malformed frame")

// errVersion is wrapped when a frame carries a version this node does not
// speak.
var errVersion = errors.New("grpcnet: unsupported frame version")

// frame is the one message type of the stream: its bytes, sent as they are.
type frame struct{ b []byte }

// rawCodec is a gRPC codec for *frame that does no encoding at all.
type rawCodec struct{}

func init() {
	// Registered under its own content-subtype, so it never replaces the
	// proto codec that other gRPC services of the process use.
	encoding.RegisterCodecV2(rawCodec{})
}

func (rawCodec) Name() string { return codecName }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("grpcnet: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("grpcnet: cannot unmarshal into %T", v)
	}
	// gRPC frees data when we return; Materialize copies it out.
	f.b = data.Materialize()
	return nil
}

// serviceDesc is what protoc would have generated for
//
//	service Peer { rpc Stream(stream Frame) returns (stream Frame); }
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    streamName,
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*Transport).serve(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "kernel/grpcnet/doc.go",
}

// hello opens every stream.
type hello struct {
	cluster uint64
	from    kernel.NodeID
	to      kernel.NodeID
}

func encodeHello(h hello) []byte {
	b := make([]byte, helloLen)
	b[0], b[1] = frameVersion, kindHello
	binary.LittleEndian.PutUint64(b[2:], h.cluster)
	binary.LittleEndian.PutUint64(b[10:], uint64(h.from))
	binary.LittleEndian.PutUint64(b[18:], uint64(h.to))
	return b
}

func decodeHello(b []byte) (hello, error) {
	if err := checkHeader(b, kindHello); err != nil {
		return hello{}, err
	}
	if len(b) != helloLen {
		return hello{}, fmt.Errorf("%w: hello of %d bytes, want %d", errMalformed, len(b), helloLen)
	}
	return hello{
		cluster: binary.LittleEndian.Uint64(b[2:]),
		from:    kernel.NodeID(binary.LittleEndian.Uint64(b[10:])),
		to:      kernel.NodeID(binary.LittleEndian.Uint64(b[18:])),
	}, nil
}

func encodeWelcome() []byte { return []byte{frameVersion, kindWelcome} }

func decodeWelcome(b []byte) error {
	if err := checkHeader(b, kindWelcome); err != nil {
		return err
	}
	if len(b) != 2 {
		return fmt.Errorf("%w: welcome of %d bytes, want 2", errMalformed, len(b))
	}
	return nil
}

func checkHeader(b []byte, kind byte) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if b[0] != frameVersion {
		return fmt.Errorf("%w: %d (this node speaks %d)", errVersion, b[0], frameVersion)
	}
	if b[1] != kind {
		return fmt.Errorf("%w: kind %d, want %d", errMalformed, b[1], kind)
	}
	return nil
}

// outMsg is one queued message.
type outMsg struct {
	port string
	body []byte
	// queued is when Send queued it (stale ones are dropped, not sent).
	queued time.Time
}

// encodedSize is what m takes in a batch frame.
func encodedSize(m outMsg) int {
	return uvarintLen(uint64(len(m.port))) + len(m.port) + uvarintLen(uint64(len(m.body))) + len(m.body)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// encodeBatch frames msgs; size is the sum of their encodedSize.
func encodeBatch(msgs []outMsg, size int) []byte {
	b := make([]byte, 0, frameOverhead+size)
	b = append(b, frameVersion, kindBatch)
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m.port)))
		b = append(b, m.port...)
		b = binary.AppendUvarint(b, uint64(len(m.body)))
		b = append(b, m.body...)
	}
	return b
}

// inMsg is one decoded message. body aliases the frame, with its capacity
// cut to its length so that a receiver appending to it cannot overwrite the
// next message.
type inMsg struct {
	port []byte
	body []byte
}

// decodeBatch appends the messages of frame b to out. It checks the whole
// frame before returning any of it.
func decodeBatch(b []byte, out []inMsg) ([]inMsg, error) {
	if err := checkHeader(b, kindBatch); err != nil {
		return out, err
	}
	rest := b[2:]
	count, n := binary.Uvarint(rest)
	if n <= 0 {
		return out, fmt.Errorf("%w: bad message count", errMalformed)
	}
	rest = rest[n:]
	// Every message takes at least two bytes: a bound on count before
	// trusting it with an allocation.
	if count > uint64(len(rest)/2) {
		return out, fmt.Errorf("%w: %d messages in %d bytes", errMalformed, count, len(rest))
	}
	start := len(out)
	for i := range count {
		port, r, err := lengthPrefixed(rest)
		if err != nil {
			return out[:start], fmt.Errorf("%w: message %d port: %v", errMalformed, i, err)
		}
		body, r, err := lengthPrefixed(r)
		if err != nil {
			return out[:start], fmt.Errorf("%w: message %d body: %v", errMalformed, i, err)
		}
		out = append(out, inMsg{port: port, body: body})
		rest = r
	}
	if len(rest) != 0 {
		return out[:start], fmt.Errorf("%w: %d bytes after the last message", errMalformed, len(rest))
	}
	return out, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, nil, errors.New("bad length")
	}
	b = b[n:]
	if l > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d past the end (%d left)", l, len(b))
	}
	return b[:l:l], b[l:], nil
}
