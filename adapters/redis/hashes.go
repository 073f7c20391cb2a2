package redis

import (
	"math/big"
	"strconv"
)

// Hashes: one 'M' record per field, the value as the record's value.

// getMember reads one element record of a hash, set or zset.
func (c *ctx) getMember(o *obj, member []byte) ([]byte, bool, error) {
	if !o.exists {
		return nil, false, nil
	}
	return c.st.Get(memberKey(o.rk, member))
}

// putMember writes an element record and counts it if it is new.
func (c *ctx) putMember(o *obj, member, value []byte) (added bool, err error) {
	k := memberKey(o.rk, member)
	_, found, err := c.st.Get(k)
	if err != nil {
		return false, err
	}
	if err := c.st.Set(k, value); err != nil {
		return false, err
	}
	if !found {
		o.m.count++
	}
	return !found, nil
}

// delMember deletes an element record and uncounts it if it existed.
func (c *ctx) delMember(o *obj, member []byte) (bool, error) {
	k := memberKey(o.rk, member)
	_, found, err := c.st.Get(k)
	if err != nil || !found {
		return false, err
	}
	o.m.count--
	return true, c.st.Delete(k)
}

// members returns every 'M' record of o (member and value), in order.
func (c *ctx) members(o *obj) ([]KV, error) {
	if !o.exists {
		return nil, nil
	}
	prefix := memberPrefix(o.rk)
	out := make([]KV, 0, min(o.m.count, 1024))
	err := c.each(prefix, prefixEnd(prefix), func(kv KV) (bool, error) {
		out = append(out, KV{Key: kv.Key[len(prefix):], Value: kv.Value})
		return true, nil
	})
	if err == nil && int64(len(out)) != o.m.count {
		err = corruptf("key %q has %d elements, metadata says %d", o.key, len(out), o.m.count)
	}
	return out, err
}

// createIfMissing prepares a new, empty collection of type t in o; the
// caller adds elements and saves. Only write commands create, and their
// lookup already deleted an expired key's records, so none linger.
func createIfMissing(o *obj, t valueType) {
	if !o.exists {
		o.m = meta{typ: t}
		o.exists = true
	}
}

// create is createIfMissing where Redis's commands dbAdd an empty
// collection before filling it: a key it creates is a "new" event, before
// the command's own.
func (c *ctx) create(o *obj, t valueType) {
	if !o.exists {
		c.notify(NotifyNew, "new", o.key)
	}
	createIfMissing(o, t)
}

func (c *ctx) hsetGeneric(isHMSet bool) (Reply, error) {
	if len(c.args)%2 == 1 {
		return Reply{}, c.arityErr()
	}
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	c.create(o, typeHash)
	var added int64
	for i := 2; i < len(c.args); i += 2 {
		a, err := c.putMember(o, c.args[i], c.args[i+1])
		if err != nil {
			return Reply{}, err
		}
		if a {
			added++
		}
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyHash, "hset", o.key)
	if isHMSet {
		return OK(), nil
	}
	return Int(added), nil
}

func cmdHSet(c *ctx) (Reply, error)  { return c.hsetGeneric(false) }
func cmdHMSet(c *ctx) (Reply, error) { return c.hsetGeneric(true) }

func cmdHSetNX(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	if _, found, err := c.getMember(o, c.args[2]); err != nil || found {
		return Int(0), err
	}
	c.create(o, typeHash)
	if _, err := c.putMember(o, c.args[2], c.args[3]); err != nil {
		return Reply{}, err
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyHash, "hset", o.key)
	return Int(1), nil
}

func cmdHGet(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	v, found, err := c.getMember(o, c.args[2])
	if err != nil || !found {
		return Null(), err
	}
	return Bulk(v), nil
}

func cmdHMGet(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, 0, len(c.args)-2)
	for _, f := range c.args[2:] {
		v, found, err := c.getMember(o, f)
		if err != nil {
			return Reply{}, err
		}
		if found {
			out = append(out, Bulk(v))
		} else {
			out = append(out, Null())
		}
	}
	return Array(out...), nil
}

// cmdHDel also serves SREM: both delete 'M' records and count them.
func cmdHDel(c *ctx) (Reply, error) {
	t, class := typeHash, NotifyHash
	if c.spec.Name == "srem" {
		t, class = typeSet, NotifySet
	}
	o, err := c.lookupType(c.args[1], t)
	if err != nil || !o.exists {
		return Int(0), err
	}
	var n int64
	for _, f := range c.args[2:] {
		d, err := c.delMember(o, f)
		if err != nil {
			return Reply{}, err
		}
		if d {
			n++
		}
		if o.m.count == 0 {
			break
		}
	}
	if n == 0 {
		return Int(0), nil
	}
	if err := c.removed(o, class, c.spec.Name); err != nil {
		return Reply{}, err
	}
	return Int(n), nil
}

// hashAll returns a hash's fields and values: map entries, keys only or
// values only.
func (c *ctx) hashAll(keys, values bool) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	kvs, err := c.members(o)
	if err != nil {
		return Reply{}, err
	}
	var out []Reply
	for _, kv := range kvs {
		if keys {
			out = append(out, Bulk(kv.Key))
		}
		if values {
			out = append(out, Bulk(kv.Value))
		}
	}
	if keys && values {
		return Map(out...), nil
	}
	return Array(out...), nil
}

func cmdHGetAll(c *ctx) (Reply, error) { return c.hashAll(true, true) }
func cmdHKeys(c *ctx) (Reply, error)   { return c.hashAll(true, false) }
func cmdHVals(c *ctx) (Reply, error)   { return c.hashAll(false, true) }

func cmdHExists(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	_, found, err := c.getMember(o, c.args[2])
	if err != nil || !found {
		return Int(0), err
	}
	return Int(1), nil
}

// cmdHLen also serves SCARD and ZCARD: the metadata count.
func cmdHLen(c *ctx) (Reply, error) {
	t := map[string]valueType{"hlen": typeHash, "scard": typeSet, "zcard": typeZSet}[c.spec.Name]
	o, err := c.lookupType(c.args[1], t)
	if err != nil {
		return Reply{}, err
	}
	return Int(o.m.count), nil
}

func cmdHStrlen(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	v, _, err := c.getMember(o, c.args[2])
	return Int(int64(len(v))), err
}

func cmdHIncrBy(c *ctx) (Reply, error) {
	incr, err := argInt(c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	old, found, err := c.getMember(o, c.args[2])
	if err != nil {
		return Reply{}, err
	}
	var v int64
	if found {
		var ok bool
		if v, ok = parseInt(old); !ok {
			return Reply{}, userError("ERR hash value is not an integer")
		}
	}
	if (incr < 0 && v < 0 && incr < minInt64-v) || (incr > 0 && v > 0 && incr > maxInt64-v) {
		return Reply{}, errOverflow
	}
	v += incr
	c.create(o, typeHash)
	if _, err := c.putMember(o, c.args[2], strconv.AppendInt(nil, v, 10)); err != nil {
		return Reply{}, err
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyHash, "hincrby", o.key)
	return Int(v), nil
}

func cmdHIncrByFloat(c *ctx) (Reply, error) {
	incr, ok := parseLongDouble(c.args[3])
	if !ok {
		return Reply{}, errNotFloat
	}
	if incr.IsInf() {
		return Reply{}, userError("ERR value is NaN or Infinity")
	}
	o, err := c.lookupType(c.args[1], typeHash)
	if err != nil {
		return Reply{}, err
	}
	old, found, err := c.getMember(o, c.args[2])
	if err != nil {
		return Reply{}, err
	}
	v := new(big.Float).SetPrec(longDoublePrec)
	if found {
		if v, ok = parseLongDouble(old); !ok {
			return Reply{}, userError("ERR hash value is not a float")
		}
	}
	sum, ok := addLongDouble(v, incr)
	if !ok {
		return Reply{}, errNaNInf
	}
	s := []byte(formatLongDouble(sum))
	c.create(o, typeHash)
	if _, err := c.putMember(o, c.args[2], s); err != nil {
		return Reply{}, err
	}
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyHash, "hincrbyfloat", o.key)
	return Bulk(s), nil
}

func cmdHScan(c *ctx) (Reply, error) {
	return c.scanKey(typeHash, func(out []Reply, field, value []byte) ([]Reply, error) {
		return append(out, Bulk(field), Bulk(value)), nil
	})
}

func cmdHRandField(c *ctx) (Reply, error) {
	return c.randomFields(typeHash, "withvalues", func(v []byte) (Reply, error) { return Bulk(v), nil })
}

// randomOne is the count-less form of HRANDFIELD, SRANDMEMBER and
// ZRANDMEMBER: one random member's name, or null.
func (c *ctx) randomOne(t valueType) (Reply, error) {
	o, err := c.lookupType(c.args[1], t)
	if err != nil || !o.exists {
		return Null(), err
	}
	kv, err := c.randomMember(o)
	if err != nil {
		return Reply{}, err
	}
	return Bulk(kv.Key), nil
}

// randomCount parses their count, refusing the one value Redis cannot
// negate.
func randomCount(arg []byte) (int64, error) {
	count, err := argInt(arg)
	if err != nil {
		return 0, err
	}
	if count == minInt64 {
		return 0, errorf("ERR value is out of range, value must between %d and %d", -maxInt64, maxInt64)
	}
	return count, nil
}

// randomFields is HRANDFIELD and ZRANDMEMBER: without a count one random
// field (or null); with one, a sample as randomSample draws it, each with
// its value (as value renders it) when the word is given.
func (c *ctx) randomFields(t valueType, word string, value func([]byte) (Reply, error)) (Reply, error) {
	if len(c.args) == 2 {
		return c.randomOne(t)
	}
	count, err := randomCount(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	withValues := false
	if len(c.args) > 4 || (len(c.args) == 4 && !eqFold(c.args[3], word)) {
		return Reply{}, errSyntax
	} else if len(c.args) == 4 {
		withValues = true
		if count < -maxInt64/2 || count > maxInt64/2 {
			return Reply{}, userError("ERR value is out of range")
		}
	}
	o, err := c.lookupType(c.args[1], t)
	if err != nil || !o.exists {
		return Array(), err
	}
	picks, err := c.randomSample(o, count)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, 0, len(picks))
	for _, kv := range picks {
		if !withValues {
			out = append(out, Bulk(kv.Key))
			continue
		}
		v, err := value(kv.Value)
		if err != nil {
			return Reply{}, err
		}
		out = append(out, Array(Bulk(kv.Key), v))
	}
	if withValues {
		return pairs(out), nil
	}
	return Array(out...), nil
}
