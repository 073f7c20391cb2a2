package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// FormatVersion is the first byte of every metadata record (see doc.go for
// the layout). A reader meeting another version reports a corrupt value
// rather than guessing.
const FormatVersion = 1

// errCorrupt marks a record that breaks the layout in doc.go. Exec turns it
// into the reply "ERR corrupt value" with Reply.Err set.
var errCorrupt = errors.New("redis: corrupt record")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// RouteKey is the internal key of Redis key k's metadata record and the
// prefix of all its element records: k's hash slot (Slot, 2 bytes
// big-endian), then k with every 0x00 escaped as 0x00 0xFF, then the
// terminator 0x00 0x01. Within a slot the escape keeps the order of Redis
// keys, and no route key is a prefix of another key's records, so a range
// split at a slot boundary (SlotKey) never separates a key from its elements
// and keys of one slot (one {hash tag}) always share a range.
func RouteKey(k []byte) []byte { return appendRouteKey(make([]byte, 0, len(k)+4), k) }

func appendRouteKey(dst, k []byte) []byte {
	s := Slot(k)
	dst = append(dst, byte(s>>8), byte(s))
	return appendEscaped(dst, k)
}

// appendEscaped appends b with every 0x00 escaped as 0x00 0xFF, then the
// terminator 0x00 0x01: the encoding keeps the byte order of the strings
// it encodes, and no encoded string is a prefix of another's, so records
// keyed by one can be followed by more key parts (route keys, and a
// stream's consumer group and consumer names).
func appendEscaped(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1)
}

// decodeRouteKey reads the Redis key at the start of internal key ik, in
// any database's form (databases.go), and returns it with the length of its
// route key (the slot, any database marker, the escaped key and its
// terminator) and its database. ok is false if ik does not start with a
// route key.
func decodeRouteKey(ik []byte) (k []byte, n, db int, ok bool) {
	k = []byte{}
	if len(ik) < 2 {
		return nil, 0, 0, false
	}
	start := 2
	if db = dbOfRaw(ik); db != 0 {
		start = 5
	}
	for i := start; i < len(ik); i++ {
		if ik[i] != 0 {
			k = append(k, ik[i])
			continue
		}
		if i+1 >= len(ik) {
			return nil, 0, 0, false
		}
		switch ik[i+1] {
		case 0xFF:
			k = append(k, 0)
			i++
		case 0x01:
			if Slot(k) != uint16(ik[0])<<8|uint16(ik[1]) {
				return nil, 0, 0, false
			}
			return k, i + 2, db, true
		default:
			return nil, 0, 0, false
		}
	}
	return nil, 0, 0, false
}

// prefixEnd is the first internal key after every key starting with p,
// whose last byte is never 0xFF here (a route key ends in 0x01, an element
// prefix in its tag): for a route key, the terminator's 0x01 becomes 0x02.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

// Element record tags: the byte after the route key. One Redis key has one
// type, so a hash field, a set member and a zset member share tagMember.
const (
	tagMember = 'M' // hash field -> value; set member -> ""; zset member -> score (8 bytes)
	tagList   = 'L' // list position (8 bytes, order-preserving) -> item
	tagScore  = 'S' // zset score (8 bytes, order-preserving) + member -> ""
	// Streams (streamstore.go).
	tagEntry = 'E' // entry ID (16 bytes) -> fields and values
	tagNode  = 'N' // node's first ID (16 bytes) -> the node Redis would keep
	tagGroup = 'G' // escaped group name [+ consumer, PEL entry or PEL index] -> group record
)

func memberKey(rk, member []byte) []byte {
	k := make([]byte, 0, len(rk)+1+len(member))
	k = append(append(k, rk...), tagMember)
	return append(k, member...)
}

func memberPrefix(rk []byte) []byte { return append(append([]byte(nil), rk...), tagMember) }

func listKey(rk []byte, pos int64) []byte {
	k := make([]byte, 0, len(rk)+9)
	k = append(append(k, rk...), tagList)
	return binary.BigEndian.AppendUint64(k, uint64(pos)^(1<<63))
}

func listPrefix(rk []byte) []byte { return append(append([]byte(nil), rk...), tagList) }

func scoreKey(rk []byte, score float64, member []byte) []byte {
	k := make([]byte, 0, len(rk)+9+len(member))
	k = append(append(k, rk...), tagScore)
	k = binary.BigEndian.AppendUint64(k, orderedFloat(score))
	return append(k, member...)
}

func scorePrefix(rk []byte) []byte { return append(append([]byte(nil), rk...), tagScore) }

// orderedFloat maps a float64 to a uint64 whose unsigned order is the
// numeric order: positive numbers get the sign bit set, negative ones are
// inverted. -0 is stored as +0 so that the two sort as equal (then by
// member), as Redis's skiplist compares them.
func orderedFloat(f float64) uint64 {
	if f == 0 {
		f = 0
	}
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | 1<<63
}

func unorderedFloat(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// valueType is the type byte of a metadata record.
type valueType byte

const (
	typeString valueType = 1
	typeList   valueType = 2
	typeSet    valueType = 3
	typeZSet   valueType = 4
	typeHash   valueType = 5
	typeStream valueType = 6
)

// name is what TYPE answers.
func (t valueType) name() string {
	switch t {
	case typeString:
		return "string"
	case typeList:
		return "list"
	case typeSet:
		return "set"
	case typeZSet:
		return "zset"
	case typeHash:
		return "hash"
	case typeStream:
		return "stream"
	}
	return "none"
}

// meta is a decoded metadata record.
//
// Invariants: a collection (list, set, zset, hash) has count >= 1 (the last
// element's removal deletes the key); a list's items sit at positions
// head .. head+count-1 with no gaps. A stream may be empty (as in Redis:
// XDEL, XTRIM and XGROUP CREATE MKSTREAM leave empty streams): its
// metadata is stream, and count is unused.
type meta struct {
	typ      valueType
	expireAt int64 // unix ms; 0 = no expiry
	count    int64 // collections: number of elements
	head     int64 // lists: position of the first item
	value    []byte
	stream   streamMeta
}

const metaHeader = 1 + 1 + 8 // version, type, expire-at

func encodeMeta(m meta) []byte {
	b := make([]byte, metaHeader, metaHeader+16+len(m.value))
	b[0] = FormatVersion
	b[1] = byte(m.typ)
	binary.BigEndian.PutUint64(b[2:], uint64(m.expireAt))
	switch m.typ {
	case typeString:
		b = append(b, m.value...)
	case typeList:
		b = binary.BigEndian.AppendUint64(b, uint64(m.count))
		b = binary.BigEndian.AppendUint64(b, uint64(m.head))
	case typeStream:
		b = m.stream.append(b)
	default:
		b = binary.BigEndian.AppendUint64(b, uint64(m.count))
	}
	return b
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) < metaHeader {
		return meta{}, corruptf("metadata record of %d bytes", len(b))
	}
	if b[0] != FormatVersion {
		return meta{}, corruptf("metadata format version %d, want %d", b[0], FormatVersion)
	}
	m := meta{typ: valueType(b[1]), expireAt: int64(binary.BigEndian.Uint64(b[2:]))}
	if m.expireAt < 0 {
		return meta{}, corruptf("negative expire-at %d", m.expireAt)
	}
	rest := b[metaHeader:]
	switch m.typ {
	case typeString:
		m.value = rest
		return m, nil
	case typeList:
		if len(rest) != 16 {
			return meta{}, corruptf("list metadata of %d bytes", len(b))
		}
		m.count = int64(binary.BigEndian.Uint64(rest))
		m.head = int64(binary.BigEndian.Uint64(rest[8:]))
		if m.head > math.MaxInt64-m.count {
			return meta{}, corruptf("list positions overflow: head %d count %d", m.head, m.count)
		}
	case typeSet, typeZSet, typeHash:
		if len(rest) != 8 {
			return meta{}, corruptf("%s metadata of %d bytes", m.typ.name(), len(b))
		}
		m.count = int64(binary.BigEndian.Uint64(rest))
	case typeStream:
		var err error
		m.stream, err = decodeStreamMeta(rest)
		return m, err
	default:
		return meta{}, corruptf("unknown type %d", b[1])
	}
	if m.count < 1 {
		return meta{}, corruptf("%s with %d elements", m.typ.name(), m.count)
	}
	return m, nil
}

func encodeScore(f float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)) }

func decodeScore(b []byte) (float64, error) {
	if len(b) != 8 {
		return 0, corruptf("zset score of %d bytes", len(b))
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(b))
	if math.IsNaN(f) {
		return 0, corruptf("zset score is NaN")
	}
	return f, nil
}
