package redis

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Sorted sets: an 'M' record member -> score, and an 'S' index record
// score+member, so that both "score of member" and "members in score order"
// are direct reads. The two always agree; a disagreement is corruption.

// zent is one element of a sorted set.
type zent struct {
	member []byte
	score  float64
}

// normScore stores -0 as +0 (see orderedFloat).
func normScore(f float64) float64 {
	if f == 0 {
		return 0
	}
	return f
}

func (c *ctx) zscore(o *obj, member []byte) (float64, bool, error) {
	v, found, err := c.getMember(o, member)
	if err != nil || !found {
		return 0, false, err
	}
	f, err := decodeScore(v)
	return f, err == nil, err
}

// zput sets member's score, keeping the index in step; the caller saves o.
func (c *ctx) zput(o *obj, member []byte, score float64) error {
	score = normScore(score)
	old, existed, err := c.zscore(o, member)
	if err != nil {
		return err
	}
	if existed {
		if old == score {
			return nil
		}
		if mutation.On(MutZAddStaleIndex) {
			// The old index entry stays.
		} else if err := c.st.Delete(scoreKey(o.rk, old, member)); err != nil {
			return err
		}
	} else {
		o.m.count++
	}
	if err := c.st.Set(memberKey(o.rk, member), encodeScore(score)); err != nil {
		return err
	}
	return c.st.Set(scoreKey(o.rk, score, member), nil)
}

// zdel removes member; the caller saves or removes o.
func (c *ctx) zdel(o *obj, member []byte) (bool, error) {
	score, existed, err := c.zscore(o, member)
	if err != nil || !existed {
		return false, err
	}
	if err := c.st.Delete(memberKey(o.rk, member)); err != nil {
		return false, err
	}
	o.m.count--
	return true, c.st.Delete(scoreKey(o.rk, score, member))
}

// decodeScoreKey splits an index record's key.
func decodeScoreKey(o *obj, k []byte) (zent, error) {
	p := len(o.rk) + 1
	if len(k) < p+8 {
		return zent{}, corruptf("zset %q: short index record %x", o.key, k)
	}
	f := unorderedFloat(binary.BigEndian.Uint64(k[p:]))
	if math.IsNaN(f) {
		return zent{}, corruptf("zset %q: NaN in the index", o.key)
	}
	return zent{member: k[p+8:], score: f}, nil
}

// zall returns every element in score order.
func (c *ctx) zall(o *obj) ([]zent, error) {
	if !o.exists {
		return nil, nil
	}
	p := scorePrefix(o.rk)
	out := make([]zent, 0, min(o.m.count, 1024))
	err := c.each(p, prefixEnd(p), func(kv KV) (bool, error) {
		e, err := decodeScoreKey(o, kv.Key)
		if err != nil {
			return false, err
		}
		out = append(out, e)
		return true, nil
	})
	if err == nil && int64(len(out)) != o.m.count {
		err = corruptf("zset %q: %d index records, metadata says %d", o.key, len(out), o.m.count)
	}
	return out, err
}

// zrangeIndex returns the elements of 0-based ranks [from, to] in score
// order.
func (c *ctx) zrangeIndex(o *obj, from, to int64) ([]zent, error) {
	p := scorePrefix(o.rk)
	out := make([]zent, 0, min(to-from+1, 1024))
	var i int64
	err := c.each(p, prefixEnd(p), func(kv KV) (bool, error) {
		if i > to {
			return false, nil
		}
		if i >= from {
			e, err := decodeScoreKey(o, kv.Key)
			if err != nil {
				return false, err
			}
			out = append(out, e)
		}
		i++
		return true, nil
	})
	return out, err
}

const (
	zaddNX = 1 << iota
	zaddXX
	zaddGT
	zaddLT
	zaddIncr
)

// zaddOne is zsetAdd for one element; nan reports a NaN result of INCR.
func (c *ctx) zaddOne(o *obj, flags int, score float64, member []byte) (added, updated, processed, nan bool, newScore float64, err error) {
	cur, exists, err := c.zscore(o, member)
	if err != nil {
		return
	}
	if exists {
		if flags&zaddNX != 0 {
			return
		}
		if flags&zaddIncr != 0 {
			score += cur
			if math.IsNaN(score) {
				nan = true
				return
			}
		}
		if (flags&zaddLT != 0 && score >= cur) || (flags&zaddGT != 0 && score <= cur) {
			return
		}
		newScore, processed = score, true
		if score != cur {
			updated = true
			err = c.zput(o, member, score)
		}
		return
	}
	if flags&zaddXX != 0 {
		return
	}
	added, processed, newScore = true, true, score
	err = c.zput(o, member, score)
	return
}

// zaddGeneric is zaddGenericCommand; ZINCRBY is ZADD with INCR preset.
func (c *ctx) zaddGeneric(flags int) (Reply, error) {
	ch := false
	i := 2
options:
	for ; i < len(c.args); i++ {
		opt := c.args[i]
		switch {
		case eqFold(opt, "nx"):
			flags |= zaddNX
		case eqFold(opt, "xx"):
			flags |= zaddXX
		case eqFold(opt, "ch"):
			ch = true
		case eqFold(opt, "incr"):
			flags |= zaddIncr
		case eqFold(opt, "gt"):
			flags |= zaddGT
		case eqFold(opt, "lt"):
			flags |= zaddLT
		default:
			break options
		}
	}
	elems := len(c.args) - i
	if elems%2 != 0 || elems == 0 {
		return Reply{}, errSyntax
	}
	elems /= 2
	if flags&zaddNX != 0 && flags&zaddXX != 0 {
		return Reply{}, userError("ERR XX and NX options at the same time are not compatible")
	}
	if (flags&zaddGT != 0 && flags&zaddNX != 0) || (flags&zaddLT != 0 && flags&zaddNX != 0) || (flags&zaddGT != 0 && flags&zaddLT != 0) {
		return Reply{}, userError("ERR GT, LT, and/or NX options at the same time are not compatible")
	}
	incr := flags&zaddIncr != 0
	if incr && elems > 1 {
		return Reply{}, userError("ERR INCR option supports a single increment-element pair")
	}
	scores := make([]float64, elems)
	for j := range scores {
		f, err := argFloat(c.args[i+2*j])
		if err != nil {
			return Reply{}, err
		}
		scores[j] = f
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	var added, updated, processed int64
	var score float64
	if o.exists || flags&zaddXX == 0 {
		c.create(o, typeZSet)
		for j := range elems {
			a, u, p, nan, ns, err := c.zaddOne(o, flags, scores[j], c.args[i+2*j+1])
			if err != nil {
				return Reply{}, err
			}
			if nan {
				// Only INCR gets here, on its single element, before any
				// write: nothing to undo.
				return Reply{}, userError("ERR resulting score is not a number (NaN)")
			}
			added += b2i(a)
			updated += b2i(u)
			processed += b2i(p)
			score = ns
		}
		if added+updated > 0 {
			if err := c.save(o); err != nil {
				return Reply{}, err
			}
			event := "zadd"
			if incr {
				event = "zincr"
			}
			c.notify(NotifyZSet, event, o.key)
		}
	}
	if incr {
		if processed > 0 {
			return Double(score), nil
		}
		return Null(), nil
	}
	if ch {
		return Int(added + updated), nil
	}
	return Int(added), nil
}

func cmdZAdd(c *ctx) (Reply, error)    { return c.zaddGeneric(0) }
func cmdZIncrBy(c *ctx) (Reply, error) { return c.zaddGeneric(zaddIncr) }

func cmdZRem(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Int(0), err
	}
	var n int64
	for _, m := range c.args[2:] {
		d, err := c.zdel(o, m)
		if err != nil {
			return Reply{}, err
		}
		n += b2i(d)
		if o.m.count == 0 {
			break
		}
	}
	if n == 0 {
		return Int(0), nil
	}
	if err := c.removed(o, NotifyZSet, "zrem"); err != nil {
		return Reply{}, err
	}
	return Int(n), nil
}

func cmdZScore(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	f, found, err := c.zscore(o, c.args[2])
	if err != nil || !found {
		return Null(), err
	}
	return Double(f), nil
}

func cmdZMScore(c *ctx) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	out := make([]Reply, 0, len(c.args)-2)
	for _, m := range c.args[2:] {
		f, found, err := c.zscore(o, m)
		if err != nil {
			return Reply{}, err
		}
		if found {
			out = append(out, Double(f))
		} else {
			out = append(out, Null())
		}
	}
	return Array(out...), nil
}

// Score and lex ranges, as zslParseRange and zslParseLexRange read them.

type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func parseScoreBound(b []byte) (float64, bool, bool) {
	ex := len(b) > 0 && b[0] == '('
	if ex {
		b = b[1:]
	}
	f, ok := parseFloatLoose(b)
	return f, ex, ok
}

func parseScoreRange(minArg, maxArg []byte) (scoreRange, error) {
	var r scoreRange
	var ok1, ok2 bool
	r.min, r.minex, ok1 = parseScoreBound(minArg)
	r.max, r.maxex, ok2 = parseScoreBound(maxArg)
	if !ok1 || !ok2 {
		return r, userError("ERR min or max is not a float")
	}
	return r, nil
}

func (r scoreRange) gteMin(f float64) bool {
	if r.minex {
		return f > r.min
	}
	return f >= r.min
}

func (r scoreRange) lteMax(f float64) bool {
	if r.maxex {
		return f < r.max
	}
	return f <= r.max
}

func (r scoreRange) empty() bool {
	return r.min > r.max || (r.min == r.max && (r.minex || r.maxex))
}

// lexBound is one end of a lex range: the minimum ("-"), the maximum ("+"),
// or a member, inclusive or not.
type lexBound struct {
	inf int // -1: "-", +1: "+", 0: v
	v   []byte
	ex  bool
}

type lexRange struct{ min, max lexBound }

func parseLexBound(b []byte) (lexBound, bool) {
	if len(b) == 0 {
		return lexBound{}, false
	}
	switch b[0] {
	case '+':
		return lexBound{inf: 1, ex: true}, len(b) == 1 || b[1] == 0
	case '-':
		return lexBound{inf: -1, ex: true}, len(b) == 1 || b[1] == 0
	case '(':
		return lexBound{v: b[1:], ex: true}, true
	case '[':
		return lexBound{v: b[1:]}, true
	}
	return lexBound{}, false
}

func parseLexRange(minArg, maxArg []byte) (lexRange, error) {
	lo, ok1 := parseLexBound(minArg)
	hi, ok2 := parseLexBound(maxArg)
	if !ok1 || !ok2 {
		return lexRange{}, userError("ERR min or max not valid string range item")
	}
	return lexRange{lo, hi}, nil
}

// cmpLex is sdscmplex: the minimum sorts before everything, the maximum
// after everything.
func cmpLex(a, b lexBound) int {
	if a.inf != 0 || b.inf != 0 {
		return cmp.Compare(a.inf, b.inf)
	}
	return bytes.Compare(a.v, b.v)
}

func (r lexRange) gteMin(m []byte) bool {
	c := cmpLex(lexBound{v: m}, r.min)
	if r.min.ex {
		return c > 0
	}
	return c >= 0
}

func (r lexRange) lteMax(m []byte) bool {
	c := cmpLex(lexBound{v: m}, r.max)
	if r.max.ex {
		return c < 0
	}
	return c <= 0
}

func (r lexRange) empty() bool {
	c := cmpLex(r.min, r.max)
	return c > 0 || (c == 0 && (r.min.ex || r.max.ex))
}

type rangeKind int

const (
	rangeAuto rangeKind = iota
	rangeRank
	rangeScore
	rangeLex
)

// zrangeGeneric is zrangeGenericCommand. argStart is the index of the
// source key; store is set for ZRANGESTORE (args[1] is the destination).
func (c *ctx) zrangeGeneric(argStart int, store bool, kind rangeKind, rev, revFixed bool) (Reply, error) {
	key := c.args[argStart]
	minIdx, maxIdx := argStart+1, argStart+2
	withScores := false
	offset, limit := int64(0), int64(-1)
	for j := argStart + 3; j < len(c.args); j++ {
		left := len(c.args) - j - 1
		a := c.args[j]
		switch {
		case !store && eqFold(a, "withscores"):
			withScores = true
		case eqFold(a, "limit") && left >= 2:
			var err error
			if offset, err = argInt(c.args[j+1]); err != nil {
				return Reply{}, err
			}
			if limit, err = argInt(c.args[j+2]); err != nil {
				return Reply{}, err
			}
			j += 2
		case !revFixed && eqFold(a, "rev"):
			rev, revFixed = true, true
		case kind == rangeAuto && eqFold(a, "bylex"):
			kind = rangeLex
		case kind == rangeAuto && eqFold(a, "byscore"):
			kind = rangeScore
		default:
			return Reply{}, errSyntax
		}
	}
	if kind == rangeAuto {
		kind = rangeRank
	}
	if limit != -1 && kind == rangeRank {
		return Reply{}, userError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	if withScores && kind == rangeLex {
		return Reply{}, userError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
	}
	if rev && (kind == rangeScore || kind == rangeLex) {
		minIdx, maxIdx = maxIdx, minIdx
	}
	var start, end int64
	var sr scoreRange
	var lr lexRange
	var err error
	switch kind {
	case rangeRank:
		if start, err = argInt(c.args[minIdx]); err != nil {
			return Reply{}, err
		}
		if end, err = argInt(c.args[maxIdx]); err != nil {
			return Reply{}, err
		}
	case rangeScore:
		if sr, err = parseScoreRange(c.args[minIdx], c.args[maxIdx]); err != nil {
			return Reply{}, err
		}
	case rangeLex:
		if lr, err = parseLexRange(c.args[minIdx], c.args[maxIdx]); err != nil {
			return Reply{}, err
		}
	}
	o, err := c.lookupType(key, typeZSet)
	if err != nil {
		return Reply{}, err
	}
	var res []zent
	if o.exists {
		switch kind {
		case rangeRank:
			res, err = c.zrangeByRank(o, start, end, rev)
		case rangeScore:
			res, err = c.zrangeByScore(o, sr, offset, limit, rev)
		case rangeLex:
			res, err = c.zrangeByLex(o, lr, offset, limit, rev)
		}
		if err != nil {
			return Reply{}, err
		}
	}
	if store {
		dst, err := c.lookup(c.args[1])
		if err != nil {
			return Reply{}, err
		}
		return Int(int64(len(res))), c.storeZSet(dst, res, "zrangestore")
	}
	return zentsReply(res, withScores), nil
}

func zentsReply(res []zent, withScores bool) Reply {
	out := make([]Reply, len(res))
	for i, e := range res {
		if withScores {
			out[i] = Array(Bulk(e.member), Double(e.score))
		} else {
			out[i] = Bulk(e.member)
		}
	}
	if withScores {
		return pairs(out)
	}
	return Array(out...)
}

func (c *ctx) zrangeByRank(o *obj, start, end int64, rev bool) ([]zent, error) {
	from, to, ok := clampRange(start, end, o.m.count)
	if !ok {
		return nil, nil
	}
	if !rev {
		return c.zrangeIndex(o, from, to)
	}
	res, err := c.zrangeIndex(o, o.m.count-1-to, o.m.count-1-from)
	slices.Reverse(res)
	return res, err
}

// walkRange applies the listpack range walk shared by score and lex ranges:
// find the first element in range from the chosen end (or none, if
// outOfRange says so up front), skip offset elements, then take up to limit
// (negative: all) while inRange holds.
func walkRange(all []zent, rev bool, offset, limit int64, first func(e zent) (bool, bool), inRange func(e zent) bool) []zent {
	if offset < 0 {
		return nil
	}
	if rev {
		all = slices.Clone(all)
		slices.Reverse(all)
	}
	i := 0
	for ; i < len(all); i++ {
		found, stop := first(all[i])
		if stop {
			return nil
		}
		if found {
			break
		}
	}
	i += int(min(offset, int64(len(all))))
	var out []zent
	for ; i < len(all) && limit != 0; i++ {
		if !inRange(all[i]) {
			break
		}
		out = append(out, all[i])
		limit--
	}
	return out
}

// zrangeByScore reads only the index records within the range: it starts
// at the range's minimum and stops past its maximum (a reverse range is read
// forwards, then reversed).
func (c *ctx) zrangeByScore(o *obj, r scoreRange, offset, limit int64, rev bool) ([]zent, error) {
	if r.empty() || offset < 0 || (offset > 0 && offset >= o.m.count) {
		return nil, nil
	}
	p := scorePrefix(o.rk)
	start := p
	if !math.IsInf(r.min, -1) {
		start = binary.BigEndian.AppendUint64(append([]byte(nil), p...), orderedFloat(r.min))
	}
	full := func(in []zent) bool { return limit >= 0 && int64(len(in)) >= limit }
	var in []zent
	err := c.each(start, prefixEnd(p), func(kv KV) (bool, error) {
		e, err := decodeScoreKey(o, kv.Key)
		if err != nil {
			return false, err
		}
		if !r.gteMin(e.score) {
			return true, nil // equal to an exclusive minimum
		}
		if !r.lteMax(e.score) {
			return false, nil
		}
		if !rev {
			if offset > 0 {
				offset--
				return true, nil
			}
			if full(in) {
				return false, nil
			}
		}
		in = append(in, e)
		return true, nil
	})
	if err != nil || !rev {
		return in, err
	}
	slices.Reverse(in)
	if offset >= int64(len(in)) {
		return nil, nil
	}
	in = in[offset:]
	if limit >= 0 && int64(len(in)) > limit {
		in = in[:limit]
	}
	return in, nil
}

// zrangeByLex follows Redis's listpack walk exactly, which is only
// meaningful when all scores are equal (as Redis documents); for mixed
// scores it gives what a small Redis sorted set gives.
func (c *ctx) zrangeByLex(o *obj, r lexRange, offset, limit int64, rev bool) ([]zent, error) {
	if r.empty() {
		return nil, nil
	}
	all, err := c.zall(o)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	if !r.gteMin(all[len(all)-1].member) || !r.lteMax(all[0].member) {
		return nil, nil
	}
	if rev {
		return walkRange(all, true, offset, limit,
			func(e zent) (bool, bool) {
				if r.lteMax(e.member) {
					return true, !r.gteMin(e.member)
				}
				return false, false
			},
			func(e zent) bool { return r.gteMin(e.member) }), nil
	}
	return walkRange(all, false, offset, limit,
		func(e zent) (bool, bool) {
			if r.gteMin(e.member) {
				return true, !r.lteMax(e.member)
			}
			return false, false
		},
		func(e zent) bool { return r.lteMax(e.member) }), nil
}

// storeZSet replaces dst (of any type) with the given elements, or deletes
// it if there are none. Its events are Redis's: the command's event (a
// key it creates is "new" first: setKey's dbAdd), or "del" for an
// existing dst it deletes.
func (c *ctx) storeZSet(dst *obj, elems []zent, event string) error {
	existed := dst.exists
	if existed {
		if err := c.remove(dst); err != nil {
			return err
		}
	}
	if len(elems) == 0 {
		if existed {
			c.notify(NotifyGeneric, "del", dst.key)
		}
		return nil
	}
	dst.m = meta{typ: typeZSet}
	dst.exists = true
	for _, e := range elems {
		if err := c.zput(dst, e.member, e.score); err != nil {
			return err
		}
	}
	if err := c.save(dst); err != nil {
		return err
	}
	if !existed {
		c.notify(NotifyNew, "new", dst.key)
	}
	c.notify(NotifyZSet, event, dst.key)
	return nil
}

func cmdZRange(c *ctx) (Reply, error) { return c.zrangeGeneric(1, false, rangeAuto, false, false) }
func cmdZRangeByScore(c *ctx) (Reply, error) {
	return c.zrangeGeneric(1, false, rangeScore, false, true)
}
func cmdZRevRange(c *ctx) (Reply, error) { return c.zrangeGeneric(1, false, rangeRank, true, true) }
func cmdZRevRangeByScore(c *ctx) (Reply, error) {
	return c.zrangeGeneric(1, false, rangeScore, true, true)
}
func cmdZRangeByLex(c *ctx) (Reply, error) { return c.zrangeGeneric(1, false, rangeLex, false, true) }
func cmdZRevRangeByLex(c *ctx) (Reply, error) {
	return c.zrangeGeneric(1, false, rangeLex, true, true)
}
func cmdZRangeStore(c *ctx) (Reply, error) { return c.zrangeGeneric(2, true, rangeAuto, false, false) }

func cmdZCount(c *ctx) (Reply, error) {
	r, err := parseScoreRange(c.args[2], c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Int(0), err
	}
	res, err := c.zrangeByScore(o, r, 0, -1, false)
	return Int(int64(len(res))), err
}

func (c *ctx) zrank(rev bool) (Reply, error) {
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Null(), err
	}
	score, found, err := c.zscore(o, c.args[2])
	if err != nil || !found {
		return Null(), err
	}
	// The rank is the number of index records before this element's.
	p := scorePrefix(o.rk)
	var rank int64
	err = c.each(p, scoreKey(o.rk, score, c.args[2]), func(KV) (bool, error) { rank++; return true, nil })
	if err != nil {
		return Reply{}, err
	}
	if rev {
		rank = o.m.count - 1 - rank
	}
	return Int(rank), nil
}

func cmdZRank(c *ctx) (Reply, error)    { return c.zrank(false) }
func cmdZRevRank(c *ctx) (Reply, error) { return c.zrank(true) }

func (c *ctx) zpop(max bool) (Reply, error) {
	if len(c.args) > 3 {
		return Reply{}, errSyntax
	}
	count := int64(-1)
	if len(c.args) == 3 {
		var err error
		if count, err = argPositive(c.args[2], ""); err != nil {
			return Reply{}, err
		}
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists || count == 0 {
		return Array(), nil
	}
	n := count
	if n == -1 {
		n = 1
	}
	res, err := c.zpopN(o, n, max)
	if err != nil {
		return Reply{}, err
	}
	if count == -1 {
		return Array(Bulk(res[0].member), Double(res[0].score)), nil
	}
	return zentsReply(res, true), nil
}

// zpopN removes up to n members from the low end of the sorted set (the
// high end if max), saves it, and returns them in the order taken: what
// ZPOPMIN/ZPOPMAX, ZMPOP and BZPOPMIN/BZPOPMAX share (genericZpopCommand),
// their events ("zpopmin" or "zpopmax", and "del" for the last member)
// included.
func (c *ctx) zpopN(o *obj, n int64, max bool) ([]zent, error) {
	n = min(n, o.m.count)
	var res []zent
	var err error
	if max {
		res, err = c.zrangeIndex(o, o.m.count-n, o.m.count-1)
		slices.Reverse(res)
	} else {
		res, err = c.zrangeIndex(o, 0, n-1)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range res {
		if _, err := c.zdel(o, e.member); err != nil {
			return nil, err
		}
	}
	event := "zpopmin"
	if max {
		event = "zpopmax"
	}
	if err := c.removed(o, NotifyZSet, event); err != nil {
		return nil, err
	}
	return res, nil
}

func cmdZPopMin(c *ctx) (Reply, error) { return c.zpop(false) }
func cmdZPopMax(c *ctx) (Reply, error) { return c.zpop(true) }

// zsetSource is one input of ZUNIONSTORE or ZINTERSTORE: a sorted set, or a
// plain set whose members score 1.
type zsetSource struct {
	elems  []zent
	index  map[string]float64
	weight float64
}

const (
	aggSum = iota
	aggMin
	aggMax
)

func aggregate(target *float64, v float64, agg int) {
	switch agg {
	case aggSum:
		*target += v
		if math.IsNaN(*target) {
			*target = 0
		}
	case aggMin:
		if v < *target {
			*target = v
		}
	case aggMax:
		if v > *target {
			*target = v
		}
	}
}

// zsetAlgebra is zunionInterDiffGenericCommand: ZUNION, ZINTER, ZDIFF
// (numkeys at 1, WITHSCORES allowed) and their STORE forms (destination at
// 1, numkeys at 2). Inputs may be plain sets, whose members score 1.
func (c *ctx) zsetAlgebra(op setOp, store bool) (Reply, error) {
	numkeysIdx := 1
	if store {
		numkeysIdx = 2
	}
	setnum, err := argInt(c.args[numkeysIdx])
	if err != nil {
		return Reply{}, err
	}
	if setnum < 1 {
		return Reply{}, errorf("ERR at least 1 input key is needed for '%s' command", c.spec.Name)
	}
	if setnum > int64(len(c.args)-numkeysIdx-1) {
		return Reply{}, errSyntax
	}
	srcs := make([]zsetSource, setnum)
	objs := make([]*obj, setnum)
	j := numkeysIdx + 1
	for i := range srcs {
		o, err := c.lookup(c.args[j])
		if err != nil {
			return Reply{}, err
		}
		if o.exists && o.m.typ != typeZSet && o.m.typ != typeSet {
			return Reply{}, errWrongType
		}
		objs[i] = o
		srcs[i].weight = 1
		j++
	}
	agg := aggSum
	withScores := false
	card := c.spec.Name == "zintercard" // the result's size only, up to limit
	var limit int64
	for j < len(c.args) {
		remaining := len(c.args) - j
		switch {
		case card && remaining >= 2 && eqFold(c.args[j], "limit"):
			if limit, err = argPositive(c.args[j+1], "LIMIT can't be negative"); err != nil {
				return Reply{}, err
			}
			j += 2
		case card:
			return Reply{}, errSyntax
		case op != opDiff && remaining >= int(setnum)+1 && eqFold(c.args[j], "weights"):
			j++
			for i := range srcs {
				f, ok := parseFloat(c.args[j])
				if !ok {
					return Reply{}, userError("ERR weight value is not a float")
				}
				srcs[i].weight = f
				j++
			}
		case op != opDiff && remaining >= 2 && eqFold(c.args[j], "aggregate"):
			switch a := c.args[j+1]; {
			case eqFold(a, "sum"):
				agg = aggSum
			case eqFold(a, "min"):
				agg = aggMin
			case eqFold(a, "max"):
				agg = aggMax
			default:
				return Reply{}, errSyntax
			}
			j += 2
		case !store && eqFold(c.args[j], "withscores"):
			withScores = true
			j++
		default:
			return Reply{}, errSyntax
		}
	}
	for i, o := range objs {
		if !o.exists {
			continue
		}
		if o.m.typ == typeSet {
			ms, err := c.setMembers(o)
			if err != nil {
				return Reply{}, err
			}
			for _, m := range ms {
				srcs[i].elems = append(srcs[i].elems, zent{member: m, score: 1})
			}
		} else if srcs[i].elems, err = c.zall(o); err != nil {
			return Reply{}, err
		}
		srcs[i].index = make(map[string]float64, len(srcs[i].elems))
		for _, e := range srcs[i].elems {
			srcs[i].index[string(e.member)] = e.score
		}
	}
	result := combineZSets(op, srcs, agg)
	if card {
		n := int64(len(result))
		if limit > 0 {
			n = min(n, limit)
		}
		return Int(n), nil
	}
	if store {
		dst, err := c.lookup(c.args[1])
		if err != nil {
			return Reply{}, err
		}
		event := map[setOp]string{opUnion: "zunionstore", opInter: "zinterstore", opDiff: "zdiffstore"}[op]
		return Int(int64(len(result))), c.storeZSet(dst, result, event)
	}
	slices.SortFunc(result, func(a, b zent) int {
		if c := cmp.Compare(normScore(a.score), normScore(b.score)); c != 0 {
			return c
		}
		return bytes.Compare(a.member, b.member)
	})
	return zentsReply(result, withScores), nil
}

// combineZSets computes a union, intersection or difference of sorted-set
// inputs the way Redis does, so that floating-point sums associate alike:
// for union and intersection the inputs are taken smallest first (a stable
// sort, as glibc's qsort is), each score weighted (NaN counts as 0, but
// for the later inputs of an intersection).
func combineZSets(op setOp, srcs []zsetSource, agg int) []zent {
	weighted := func(w, s float64) float64 {
		v := w * s
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	var result []zent
	switch op {
	case opDiff:
		for _, e := range srcs[0].elems {
			in := false
			for _, s := range srcs[1:] {
				if _, ok := s.index[string(e.member)]; ok {
					in = true
					break
				}
			}
			if !in {
				result = append(result, e)
			}
		}
		return result
	}
	slices.SortStableFunc(srcs, func(a, b zsetSource) int { return cmp.Compare(len(a.elems), len(b.elems)) })
	if op == opUnion {
		acc := map[string]int{} // member -> index in result
		for _, s := range srcs {
			for _, e := range s.elems {
				v := weighted(s.weight, e.score)
				if k, ok := acc[string(e.member)]; ok {
					aggregate(&result[k].score, v, agg)
				} else {
					acc[string(e.member)] = len(result)
					result = append(result, zent{member: e.member, score: v})
				}
			}
		}
		return result
	}
	for _, e := range srcs[0].elems {
		score := weighted(srcs[0].weight, e.score)
		in := true
		for _, s := range srcs[1:] {
			v, ok := s.index[string(e.member)]
			if !ok {
				in = false
				break
			}
			// Unlike the first input's, these weighted scores are not
			// cleared of NaN (0 * inf) before aggregating, as in Redis:
			// SUM makes the result 0, MIN and MAX keep what they had.
			aggregate(&score, v*s.weight, agg)
		}
		if in {
			result = append(result, zent{member: e.member, score: score})
		}
	}
	return result
}

func cmdZUnionStore(c *ctx) (Reply, error) { return c.zsetAlgebra(opUnion, true) }
func cmdZInterStore(c *ctx) (Reply, error) { return c.zsetAlgebra(opInter, true) }
func cmdZDiffStore(c *ctx) (Reply, error)  { return c.zsetAlgebra(opDiff, true) }
func cmdZUnion(c *ctx) (Reply, error)      { return c.zsetAlgebra(opUnion, false) }
func cmdZInter(c *ctx) (Reply, error)      { return c.zsetAlgebra(opInter, false) }
func cmdZInterCard(c *ctx) (Reply, error)  { return c.zsetAlgebra(opInter, false) }

// cmdZMPop is ZMPOP numkeys key... MIN|MAX [COUNT count]: the first
// non-empty sorted set among the keys gives up to count members from the
// chosen end, as [key, [[member, score], ...]]; none, a null array.
func cmdZMPop(c *ctx) (Reply, error) {
	keys, fromMax, count, err := c.mpopArgs("min", "max")
	if err != nil {
		return Reply{}, err
	}
	for _, k := range keys {
		o, err := c.lookupType(k, typeZSet)
		if err != nil {
			return Reply{}, err
		}
		if !o.exists {
			continue
		}
		res, err := c.zpopN(o, count, fromMax)
		if err != nil {
			return Reply{}, err
		}
		out := make([]Reply, len(res))
		for i, e := range res {
			out[i] = Array(Bulk(e.member), Double(e.score))
		}
		return Array(Bulk(k), Array(out...)), nil
	}
	return NullArray(), nil
}
func cmdZDiff(c *ctx) (Reply, error) { return c.zsetAlgebra(opDiff, false) }

// zremRange is zremrangeGenericCommand: the elements ZRANGE would give for
// the same range (the walks are the same), removed.
func (c *ctx) zremRange(kind rangeKind) (Reply, error) {
	var start, end int64
	var sr scoreRange
	var lr lexRange
	var err error
	switch kind {
	case rangeRank:
		if start, err = argInt(c.args[2]); err != nil {
			return Reply{}, err
		}
		if end, err = argInt(c.args[3]); err != nil {
			return Reply{}, err
		}
	case rangeScore:
		sr, err = parseScoreRange(c.args[2], c.args[3])
	case rangeLex:
		lr, err = parseLexRange(c.args[2], c.args[3])
	}
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Int(0), err
	}
	var res []zent
	switch kind {
	case rangeRank:
		res, err = c.zrangeByRank(o, start, end, false)
	case rangeScore:
		res, err = c.zrangeByScore(o, sr, 0, -1, false)
	case rangeLex:
		res, err = c.zrangeByLex(o, lr, 0, -1, false)
	}
	if err != nil || len(res) == 0 {
		return Int(0), err
	}
	for _, e := range res {
		if _, err := c.zdel(o, e.member); err != nil {
			return Reply{}, err
		}
	}
	event := map[rangeKind]string{rangeRank: "zremrangebyrank", rangeScore: "zremrangebyscore", rangeLex: "zremrangebylex"}[kind]
	if err := c.removed(o, NotifyZSet, event); err != nil {
		return Reply{}, err
	}
	return Int(int64(len(res))), nil
}

func cmdZRemRangeByRank(c *ctx) (Reply, error)  { return c.zremRange(rangeRank) }
func cmdZRemRangeByScore(c *ctx) (Reply, error) { return c.zremRange(rangeScore) }
func cmdZRemRangeByLex(c *ctx) (Reply, error)   { return c.zremRange(rangeLex) }

func cmdZLexCount(c *ctx) (Reply, error) {
	r, err := parseLexRange(c.args[2], c.args[3])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], typeZSet)
	if err != nil || !o.exists {
		return Int(0), err
	}
	res, err := c.zrangeByLex(o, r, 0, -1, false)
	return Int(int64(len(res))), err
}

func cmdZRandMember(c *ctx) (Reply, error) {
	return c.randomFields(typeZSet, "withscores", func(v []byte) (Reply, error) {
		f, err := decodeScore(v)
		return Double(f), err
	})
}

func cmdZScan(c *ctx) (Reply, error) {
	return c.scanKey(typeZSet, func(out []Reply, member, value []byte) ([]Reply, error) {
		f, err := decodeScore(value)
		if err != nil {
			return nil, err
		}
		return append(out, Bulk(member), BulkString(formatDouble(f))), nil
	})
}
