package redis

import (
	"bytes"
	"slices"

	"github.com/orbitkernel/orbit/consensus"
)

// Hash slots, as Redis Cluster computes them: CRC16 (XMODEM: polynomial
// 0x1021, initial value 0) of the key, or of its hash tag — the bytes between
// the first '{' and the first '}' after it, when there is at least one byte
// between them — modulo 16384. Every internal key of a Redis key starts with
// its slot (RouteKey), so a range is a span of slots, and keys sharing a
// {tag} always share a range.

// SlotCount is the number of hash slots, as in Redis Cluster.
const SlotCount = 16384

// ErrCrossSlot is Redis Cluster's reply to a command whose keys are in
// different ranges (Orbit) or slots (Redis Cluster).
const ErrCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot"

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

// Slot is key's hash slot (keyHashSlot in Redis's cluster.c).
func Slot(key []byte) uint16 {
	for s := 0; s < len(key); s++ {
		if key[s] != '{' {
			continue
		}
		for e := s + 1; e < len(key); e++ {
			if key[e] == '}' {
				if e == s+1 {
					break // "{}": no tag, hash the whole key
				}
				return crc16(key[s+1:e]) & (SlotCount - 1)
			}
		}
		break
	}
	return crc16(key) & (SlotCount - 1)
}

// SlotKey is the first internal key of slot s: a range split point.
func SlotKey(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }

// KeyspaceEnd is the end of the Redis keyspace, 0x40: every internal key
// of every Redis key starts with its slot, at most 0x3F 0xFF. Keys from
// there on are not Redis's (the transactional keyspace starts at 0x40,
// the kernel's system keyspace further on), and keyspace-wide commands
// stop at it. (It was SlotKey(SlotCount), 0x40 0x00, once: a range that
// starts at 0x40, the transactional keyspace's own, lies below that, and
// walks over the Redis ranges went on into it.)
var KeyspaceEnd = []byte{byte(SlotCount >> 8)}

// SplitKey implements consensus.SplitKeyer: a range of Redis keys splits
// only at a slot boundary (SlotKey), so that every key's records, and
// every {hash tag}, stay in one range. It picks the boundary at or after
// halving's slot, or the one before when that is the range's end; nil when
// the range holds a single slot, or when halving is not a Redis key.
func (*StateMachine) SplitKey(start, end, halving []byte) []byte {
	if len(halving) < 2 || bytes.Compare(halving, KeyspaceEnd) >= 0 {
		return nil
	}
	inside := func(k []byte) bool {
		return bytes.Compare(k, start) > 0 && (end == nil || bytes.Compare(k, end) < 0)
	}
	slot := uint16(halving[0])<<8 | uint16(halving[1])
	for _, s := range []uint16{slot, slot + 1} {
		if k := SlotKey(s); s < SlotCount && inside(k) {
			return k
		}
	}
	return nil
}

// SlotSplits returns the split points that cut the slots into n ranges of
// (nearly) equal size: n-1 SlotKeys, for consensus.NewLayout.
func SlotSplits(n int) [][]byte {
	n = max(1, min(n, SlotCount))
	var out [][]byte
	for i := 1; i < n; i++ {
		out = append(out, SlotKey(uint16(i*SlotCount/n)))
	}
	return out
}

// MaxBulkLen is the largest argument the server accepts (Redis's
// proto-max-bulk-len, which defaults to 512 MB): 64 MB, the largest string
// value (maxStringBytes), since every write travels whole in one Raft log
// entry. A larger argument is a protocol error that closes the connection.
const MaxBulkLen = maxStringBytes

// GlobMatch is Redis's stringmatchlen: KEYS, SCAN MATCH and PSUBSCRIBE
// patterns.
func GlobMatch(pattern, s []byte) bool { return globMatch(pattern, s) }

// Keyspace is the span of the consensus keyspace that Redis's records
// occupy, served by machine (docs/consensus.md, "Keyspaces"): every route
// key starts with its slot, two bytes below KeyspaceEnd (0x40), so
// [0x00, 0x40) holds them all and leaves 0x40 itself to the next keyspace
// (the transactional one). Consensus clips a command's view of its range
// to it; rangeStore.bound's clamp at KeyspaceEnd stays for the machine
// run on its own (the unit tests' memRange).
func Keyspace(machine consensus.StateMachine) consensus.Keyspace {
	return consensus.Keyspace{Name: "redis", Start: []byte{}, End: slices.Clone(KeyspaceEnd), Machine: machine}
}
