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
	if m.typ == typeStream {
		return verifyStream(st, rk, m.stream)
	}
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
			if !ok || f != e.score || f == 0 && math.Signbit(f) { // -0 is stored as 0
				return corruptf("zset %x: index says %q scores %v, member record %v", rk, e.member, e.score, f)
			}
		}
	}
	return nil
}

// verifyStream checks a stream's records against its metadata: the
// entries (count, first, none past the last ID), the nodes (each entry in
// one, live counts, the chain of prev links ending at the tail), and each
// group's PEL, per-consumer index and counts.
func verifyStream(st Store, rk []byte, m streamMeta) error {
	fail := func(format string, args ...any) error {
		return corruptf("stream %x: "+format, append([]any{rk}, args...)...)
	}
	type span struct {
		n    *streamNode
		seen int64
	}
	var nodes []span
	var prev *streamNode
	np := tagPrefix(rk, tagNode)
	err := eachKV(st, np, prefixEnd(np), func(kv KV) (bool, error) {
		if len(kv.Key) != len(np)+16 {
			return false, fail("node record %x", kv.Key)
		}
		n, err := decodeNode(readStreamID(kv.Key[len(np):]), kv.Value)
		if err != nil {
			return false, err
		}
		if (prev == nil) == n.hasPrev || prev != nil && n.prev != prev.master {
			return false, fail("node %s does not link to its predecessor", n.master)
		}
		nodes, prev = append(nodes, span{n: n}), n
		return true, nil
	})
	if err != nil {
		return err
	}
	if int64(len(nodes)) != m.nodes || len(nodes) > 0 && nodes[len(nodes)-1].n.master != m.tail {
		return fail("%d node records, metadata says %d (tail %s)", len(nodes), m.nodes, m.tail)
	}
	var length uint64
	var first streamID
	ep := tagPrefix(rk, tagEntry)
	i := 0
	err = eachKV(st, ep, prefixEnd(ep), func(kv KV) (bool, error) {
		if len(kv.Key) != len(ep)+16 {
			return false, fail("entry record %x", kv.Key)
		}
		id := readStreamID(kv.Key[len(ep):])
		if _, err := decodeFields(kv.Value); err != nil {
			return false, err
		}
		// An entry is in the node with the greatest first ID not above
		// its own, and not after that node's last entry.
		for i+1 < len(nodes) && nodes[i+1].n.master.cmp(id) <= 0 {
			i++
		}
		if len(nodes) == 0 || nodes[i].n.master.cmp(id) > 0 || nodes[i].n.last.cmp(id) < 0 || id.cmp(m.lastID) > 0 {
			return false, fail("entry %s in no node, or after the last ID %s", id, m.lastID)
		}
		nodes[i].seen++
		if length == 0 {
			first = id
		}
		length++
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, s := range nodes {
		if s.seen != s.n.live {
			return fail("node %s holds %d entries, its record says %d", s.n.master, s.seen, s.n.live)
		}
	}
	if length != m.length || first != m.firstID {
		return fail("%d entries from %s, metadata says %d from %s", length, first, m.length, m.firstID)
	}
	return verifyGroups(st, rk, m, fail)
}

func verifyGroups(st Store, rk []byte, m streamMeta, fail func(string, ...any) error) error {
	gp := tagPrefix(rk, tagGroup)
	var groups int64
	for start := gp; ; {
		kvs, err := st.Scan(start, prefixEnd(gp), 1)
		if err != nil || len(kvs) == 0 {
			if err == nil && groups != m.groups {
				err = fail("%d groups, metadata says %d", groups, m.groups)
			}
			return err
		}
		name, n, ok := unescape(kvs[0].Key[len(gp):])
		if !ok || n != len(kvs[0].Key)-len(gp) {
			return fail("group record %x", kvs[0].Key)
		}
		g, err := decodeGroup(kvs[0].Key, name, kvs[0].Value)
		if err != nil {
			return err
		}
		// The group's records: consumers, PEL, index, in key order.
		owners := map[string]string{} // PEL entry -> consumer
		held := map[string]int64{}    // consumer -> index records
		pending := map[string]int64{} // consumer -> its record's count
		var pel int64
		gk := g.key
		err = eachKV(st, after(gk), prefixEnd(gk), func(kv KV) (bool, error) {
			rest := kv.Key[len(gk):]
			switch rest[0] {
			case 'C':
				cn, err := decodeConsumer(rest[1:], kv.Value)
				if err != nil {
					return false, err
				}
				pending[string(cn.name)] = cn.pending
			case 'P':
				if len(rest) != 17 {
					return false, fail("PEL record %x", kv.Key)
				}
				n, err := decodeNACK(readStreamID(rest[1:]), kv.Value)
				if err != nil {
					return false, err
				}
				owners[string(rest[1:])] = string(n.consumer)
				pel++
			case 'Q':
				cname, k, ok := unescape(rest[1:])
				if !ok || len(rest) != 1+k+16 || owners[string(rest[1+k:])] != string(cname) {
					return false, fail("PEL index record %x does not match the PEL", kv.Key)
				}
				held[string(cname)]++
			default:
				return false, fail("record %x in group %q", kv.Key, g.name)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if pel != g.pending || int64(len(pending)) != g.consumers {
			return fail("group %q: %d pending, %d consumers, its record says %d, %d", g.name, pel, len(pending), g.pending, g.consumers)
		}
		var indexed int64
		for name, k := range pending {
			if held[name] != k {
				return fail("group %q: consumer %q holds %d entries, its record says %d", g.name, name, held[name], k)
			}
			indexed += k
		}
		if indexed != pel {
			return fail("group %q: %d PEL entries, %d indexed under consumers", g.name, pel, indexed)
		}
		groups++
		start = prefixEnd(gk)
	}
}
