package redis

import (
	"encoding/binary"
	"math"
)

// Verify checks every record of the range held by st against the layout in
// doc.go: each key's metadata decodes, its element records carry the tags
// of its type, the element count matches, a list's positions are
// contiguous from its head, and a sorted set's member records and score
// index agree. It reads everything: for tests, fuzzing and offline checks.
func Verify(st Store) error {
	var from []byte
	for {
		kv, _, rk, found, err := firstRecord(st, from, nil)
		if err != nil || !found {
			return err
		}
		if len(rk) != len(kv.Key) {
			return corruptf("element record %x without metadata", kv.Key)
		}
		m, err := decodeMeta(kv.Value)
		if err != nil {
			return err
		}
		if err := verifyKey(st, rk, m); err != nil {
			return err
		}
		from = prefixEnd(rk)
	}
}

func verifyKey(st Store, rk []byte, m meta) error {
	var members, items, scores int64
	memberScores := map[string]float64{}
	var indexed []zent
	err := eachKV(st, append(append([]byte(nil), rk...), 0), prefixEnd(rk), func(kv KV) (bool, error) {
		rest := kv.Key[len(rk):]
		switch {
		case rest[0] == tagMember && (m.typ == typeHash || m.typ == typeSet || m.typ == typeZSet):
			members++
			if m.typ == typeSet && len(kv.Value) != 0 {
				return false, corruptf("set member %x with a value", kv.Key)
			}
			if m.typ == typeZSet {
				f, err := decodeScore(kv.Value)
				if err != nil {
					return false, err
				}
				memberScores[string(rest[1:])] = f
			}
		case rest[0] == tagList && m.typ == typeList:
			if len(rest) != 9 {
				return false, corruptf("list record %x", kv.Key)
			}
			if pos := int64(binary.BigEndian.Uint64(rest[1:]) ^ 1<<63); pos != m.head+items {
				return false, corruptf("list item at position %d, expected %d", pos, m.head+items)
			}
			items++
		case rest[0] == tagScore && m.typ == typeZSet:
			if len(rest) < 9 {
				return false, corruptf("score record %x", kv.Key)
			}
			f := unorderedFloat(binary.BigEndian.Uint64(rest[1:]))
			if math.IsNaN(f) {
				return false, corruptf("NaN score in %x", kv.Key)
			}
			indexed = append(indexed, zent{member: rest[9:], score: f})
			scores++
		default:
			return false, corruptf("record %x does not belong to a %s", kv.Key, m.typ.name())
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	switch m.typ {
	case typeString:
		if members+items+scores != 0 {
			return corruptf("string %x with element records", rk)
		}
	case typeList:
		if items != m.count {
			return corruptf("list %x has %d items, metadata says %d", rk, items, m.count)
		}
	case typeHash, typeSet:
		if members != m.count {
			return corruptf("%s %x has %d elements, metadata says %d", m.typ.name(), rk, members, m.count)
		}
	case typeZSet:
		if members != m.count || scores != m.count {
			return corruptf("zset %x has %d members and %d index records, metadata says %d", rk, members, scores, m.count)
		}
		for _, e := range indexed {
			f, ok := memberScores[string(e.member)]
			if !ok || f != e.score || math.Signbit(f) {
				return corruptf("zset %x: index says %q scores %v, member record %v", rk, e.member, e.score, f)
			}
		}
	}
	return nil
}
