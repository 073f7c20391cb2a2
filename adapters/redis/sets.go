package redis

import (
	"bytes"
	"slices"
)

// Sets: one 'M' record per member, with an empty value.

func cmdSAdd(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeSet)
	if err != nil {
		return Reply{}, err
	}
	c.create(o, typeSet)
	var added int64
	for _, m := range c.args[2:] {
		a, err := c.putMember(o, m, nil)
		if err != nil {
			return Reply{}, err
		}
		if a {
			added++
		}
	}
	if added == 0 {
		return Int(0), nil
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifySet, "sadd", o.key)
	return Int(added), nil
}

// setMembers lists a set's members in order.
func (c *ctx) setMembers(o *obj) ([][]byte, error) {
	kvs, err := c.members(o)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out, nil
}

func setReply(members [][]byte) Reply {
	out := make([]Reply, len(members))
	for i, m := range members {
		out[i] = Bulk(m)
	}
	return Set(out...)
}

func cmdSIsMember(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeSet)
	if err != nil {
		return Reply{}, err
	}
	_, found, err := c.getMember(o, c.args[2])
	if err != nil || !found {
		return Int(0), err
	}
	return Int(1), nil
}

func cmdSMIsMember(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeSet)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, 0, len(c.args)-2)
	for _, m := range c.args[2:] {
		_, found, err := c.getMember(o, m)
		if err != nil {
			return Reply{}, err
		}
		out = append(out, Int(b2i(found)))
	}
	return Array(out...), nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmdSPop(c *ctx) (Reply, error) {
	if len(c.args) > 3 {
		return Reply{}, errSyntax
	}
	if len(c.args) == 2 {
		o, err := c.lookupType(c.args[1], typeSet)
		if err != nil || !o.exists {
			return Null(), err
		}
		kv, err := c.randomMember(o)
		if err != nil {
			return Reply{}, err
		}
		if _, err := c.delMember(o, kv.Key); err != nil {
			return Reply{}, err
		}
		if err := c.removed(o, NotifySet, "spop"); err != nil {
			return Reply{}, err
		}
		return Bulk(kv.Key), nil
	}
	count, err := argPositive(c.args[2], "")
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeSet)
	if err != nil || !o.exists || count == 0 {
		return Set(), err
	}
	picks, err := c.randomSample(o, count)
	if err != nil {
		return Reply{}, err
	}
	members := make([][]byte, len(picks))
	for i, kv := range picks {
		members[i] = kv.Key
		if _, err := c.delMember(o, kv.Key); err != nil {
			return Reply{}, err
		}
	}
	if err := c.removed(o, NotifySet, "spop"); err != nil {
		return Reply{}, err
	}
	return setReply(members), nil
}

func cmdSRandMember(c *ctx) (Reply, error) {
	if len(c.args) > 3 {
		return Reply{}, errSyntax
	}
	if len(c.args) == 2 {
		return c.randomOne(typeSet)
	}
	count, err := randomCount(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeSet)
	if err != nil || !o.exists {
		return Array(), err
	}
	picks, err := c.randomSample(o, count)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, len(picks))
	for i, kv := range picks {
		out[i] = Bulk(kv.Key)
	}
	return Array(out...), nil
}

// Set algebra. Operands are read whole; the results are sorted member lists.

type setOp int

const (
	opInter setOp = iota
	opUnion
	opDiff
)

// loadSets reads the operand sets (a missing key is an empty set); any
// operand of another type is WRONGTYPE, checked before anything else.
func (c *ctx) loadSets(keys [][]byte) ([][][]byte, error) {
	objs := make([]*obj, len(keys))
	for i, k := range keys {
		o, err := c.lookupType(k, typeSet)
		if err != nil {
			return nil, err
		}
		objs[i] = o
	}
	sets := make([][][]byte, len(keys))
	for i, o := range objs {
		m, err := c.setMembers(o)
		if err != nil {
			return nil, err
		}
		sets[i] = m
	}
	return sets, nil
}

func combineSets(op setOp, sets [][][]byte) [][]byte {
	contains := func(s [][]byte, m []byte) bool {
		_, ok := slices.BinarySearchFunc(s, m, bytes.Compare)
		return ok
	}
	var out [][]byte
	switch op {
	case opInter:
		for _, m := range sets[0] {
			in := true
			for _, s := range sets[1:] {
				if !contains(s, m) {
					in = false
					break
				}
			}
			if in {
				out = append(out, m)
			}
		}
	case opUnion:
		for _, s := range sets {
			out = append(out, s...)
		}
		slices.SortFunc(out, bytes.Compare)
		out = slices.CompactFunc(out, bytes.Equal)
	case opDiff:
		for _, m := range sets[0] {
			in := false
			for _, s := range sets[1:] {
				if contains(s, m) {
					in = true
					break
				}
			}
			if !in {
				out = append(out, m)
			}
		}
	}
	return out
}

func (c *ctx) setAlgebra(op setOp) (Reply, error) {
	sets, err := c.loadSets(c.args[1:])
	if err != nil {
		return Reply{}, err
	}
	return setReply(combineSets(op, sets)), nil
}

func (c *ctx) setAlgebraStore(op setOp) (Reply, error) {
	sets, err := c.loadSets(c.args[2:])
	if err != nil {
		return Reply{}, err
	}
	result := combineSets(op, sets)
	dst, err := c.lookup(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	existed := dst.exists
	if err := c.storeSet(dst, result); err != nil {
		return Reply{}, err
	}
	if len(result) > 0 {
		c.notify(NotifySet, c.spec.Name, dst.key)
	} else if existed {
		c.notify(NotifyGeneric, "del", dst.key)
	}
	return Int(int64(len(result))), nil
}

// storeSet replaces dst (of any type) with a set of members, or deletes it
// if there are none. Like Redis's setKey, it creates ("new") only a key
// that did not exist.
func (c *ctx) storeSet(dst *obj, members [][]byte) error {
	existed := dst.exists
	if existed {
		if err := c.remove(dst); err != nil {
			return err
		}
	}
	if len(members) == 0 {
		return nil
	}
	dst.m = meta{typ: typeSet, count: int64(len(members))}
	for _, m := range members {
		if err := c.st.Set(memberKey(dst.rk, m), nil); err != nil {
			return err
		}
	}
	dst.exists = existed
	return c.save(dst)
}

func cmdSMembers(c *ctx) (Reply, error)    { return c.setAlgebra(opInter) }
func cmdSInter(c *ctx) (Reply, error)      { return c.setAlgebra(opInter) }
func cmdSUnion(c *ctx) (Reply, error)      { return c.setAlgebra(opUnion) }
func cmdSDiff(c *ctx) (Reply, error)       { return c.setAlgebra(opDiff) }
func cmdSInterStore(c *ctx) (Reply, error) { return c.setAlgebraStore(opInter) }
func cmdSUnionStore(c *ctx) (Reply, error) { return c.setAlgebraStore(opUnion) }
func cmdSDiffStore(c *ctx) (Reply, error)  { return c.setAlgebraStore(opDiff) }

func cmdSInterCard(c *ctx) (Reply, error) {
	numkeys, ok := parseInt(c.args[1])
	if !ok || numkeys < 1 {
		return Reply{}, userError("ERR numkeys should be greater than 0")
	}
	if numkeys > int64(len(c.args)-2) {
		return Reply{}, userError("ERR Number of keys can't be greater than number of args")
	}
	var limit int64
	for j := 2 + int(numkeys); j < len(c.args); j++ {
		if eqFold(c.args[j], "limit") && j+1 < len(c.args) {
			j++
			var err error
			if limit, err = argPositive(c.args[j], "LIMIT can't be negative"); err != nil {
				return Reply{}, err
			}
		} else {
			return Reply{}, errSyntax
		}
	}
	sets, err := c.loadSets(c.args[2 : 2+numkeys])
	if err != nil {
		return Reply{}, err
	}
	n := int64(len(combineSets(opInter, sets)))
	if limit > 0 {
		n = min(n, limit)
	}
	return Int(n), nil
}

func cmdSMove(c *ctx) (Reply, error) {
	src, err := c.lookup(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	dst, err := c.lookup(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if !src.exists {
		return Int(0), nil
	}
	if src.m.typ != typeSet || (dst.exists && dst.m.typ != typeSet) {
		return Reply{}, errWrongType
	}
	member := c.args[3]
	if bytes.Equal(src.key, dst.key) {
		_, found, err := c.getMember(src, member)
		return Int(b2i(found)), err
	}
	removed, err := c.delMember(src, member)
	if err != nil || !removed {
		return Int(0), err
	}
	if err := c.saveOrRemove(src); err != nil {
		return Reply{}, err
	}
	c.notify(NotifySet, "srem", src.key)
	if !src.exists {
		c.notify(NotifyGeneric, "del", src.key)
	}
	c.create(dst, typeSet)
	if added, err := c.putMember(dst, member, nil); err != nil || !added {
		return Int(1), err
	}
	if err := c.save(dst); err != nil {
		return Reply{}, err
	}
	c.notify(NotifySet, "sadd", dst.key)
	return Int(1), nil
}

func cmdSScan(c *ctx) (Reply, error) {
	return c.scanKey(typeSet, func(out []Reply, member, _ []byte) ([]Reply, error) {
		return append(out, Bulk(member)), nil
	})
}
