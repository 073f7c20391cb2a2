package redis

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SORT and SORT_RO (Redis 7.0's sort.c): the elements of a list, set or
// sorted set, by their numeric value or (ALPHA) as strings, ASC or DESC,
// with LIMIT, GET # and STORE. The elements are read, and the result
// stored, through the command layer itself (LRANGE, SMEMBERS, ZRANGE, DEL,
// RPUSH on the same Store), so SORT sees keys and writes them as every
// other command does.
//
// BY and GET with a pattern that names other keys are refused as Redis
// Cluster refuses them when the keys may lie in other slots: Orbit places
// a command by the keys it names, and a pattern's keys are not named.
// BY with a pattern without '*' (BY nosort) is accepted: no sorting.

// SORT calls back into the command layer, so it joins handlers in init
// (as EVAL does, scripting.go).
func init() { handlers["sort"], handlers["sort_ro"] = cmdSort, cmdSort }

type sortOptions struct {
	desc, alpha, dontSort  bool
	limitStart, limitCount int64
	store                  []byte // nil: reply
	getOps                 int    // GET # count
}

var (
	errSortBy  = userError("ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.")
	errSortGet = userError("ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.")
	errSortNum = userError("ERR One or more scores can't be converted into double")
)

func parseSort(args [][]byte, readOnly bool) (sortOptions, error) {
	o := sortOptions{limitStart: 0, limitCount: -1}
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		switch {
		case eqFold(args[j], "asc"):
			o.desc = false
		case eqFold(args[j], "desc"):
			o.desc = true
		case eqFold(args[j], "alpha"):
			o.alpha = true
		case eqFold(args[j], "limit") && left >= 2:
			start, ok1 := parseInt(args[j+1])
			count, ok2 := parseInt(args[j+2])
			if !ok1 || !ok2 {
				return o, errNotInt
			}
			o.limitStart, o.limitCount = start, count
			j += 2
		case !readOnly && eqFold(args[j], "store") && left >= 1:
			o.store = args[j+1]
			j++
		case eqFold(args[j], "by") && left >= 1:
			if bytes.IndexByte(args[j+1], '*') < 0 {
				o.dontSort = true
			} else {
				return o, errSortBy
			}
			j++
		case eqFold(args[j], "get") && left >= 1:
			if string(args[j+1]) != "#" {
				return o, errSortGet
			}
			o.getOps++
			j++
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

// sortKeys are SORT's keys: the key sorted, and STORE's destination.
func sortKeys(args [][]byte) [][]byte {
	keys := args[1:2:2]
	for j := 2; j < len(args); j++ {
		switch {
		case eqFold(args[j], "limit"):
			j += 2
		case eqFold(args[j], "by"), eqFold(args[j], "get"):
			j++
		case eqFold(args[j], "store") && j+1 < len(args):
			keys = append(keys, args[j+1])
			j++
		}
	}
	return keys
}

func cmdSort(c *ctx) (Reply, error) {
	o, err := parseSort(c.args, c.spec.Name == "sort_ro")
	if err != nil {
		return Reply{}, err
	}
	key := c.args[1]
	// The sub-commands' own events are not SORT's (it notifies
	// "sortstore" or "del" on its destination).
	sub := func(args ...[]byte) Reply { return execWith(c.st, c.now, c.rand, args, c.objCfg, nil) }
	kind := sub([]byte("type"), key)
	if kind.Err != nil {
		return kind, nil
	}
	var elems [][]byte
	switch t := string(kind.Str); t {
	case "none":
	case "list", "set", "zset":
		var r Reply
		switch t {
		case "list":
			r = sub([]byte("lrange"), key, []byte("0"), []byte("-1"))
		case "set":
			r = sub([]byte("smembers"), key)
		default:
			r = sub([]byte("zrange"), key, []byte("0"), []byte("-1"))
		}
		if r.Err != nil || r.Kind == KindError {
			return r, nil
		}
		for _, e := range r.Elems {
			elems = append(elems, e.Str)
		}
		if t == "set" && o.dontSort && o.store != nil {
			// A set has no order of its own: stored, it is sorted
			// (ALPHA), as Redis does for replication's sake.
			o.dontSort, o.alpha = false, true
		}
	default:
		return Reply{}, errWrongType
	}
	if o.dontSort {
		if o.desc {
			slices.Reverse(elems)
		}
	} else if err := sortElements(elems, o); err != nil {
		return Reply{}, err
	}
	elems = sortLimit(elems, o.limitStart, o.limitCount)
	var out [][]byte
	for _, e := range elems {
		if o.getOps == 0 {
			out = append(out, e)
		}
		for range o.getOps {
			out = append(out, e) // GET #: the element itself
		}
	}
	if o.store == nil {
		return bulks(out), nil
	}
	dst, err := c.lookup(o.store)
	if err != nil {
		return Reply{}, err
	}
	if r := sub([]byte("del"), o.store); r.Err != nil || r.Kind == KindError {
		return r, nil
	}
	if len(out) > 0 {
		if r := sub(append([][]byte{[]byte("rpush"), o.store}, out...)...); r.Err != nil || r.Kind == KindError {
			return r, nil
		}
		if !dst.exists {
			c.notify(NotifyNew, "new", o.store) // Redis's setKey adds it
		}
		c.notify(NotifyList, "sortstore", o.store)
	} else if dst.exists {
		c.notify(NotifyGeneric, "del", o.store)
	}
	return Int(int64(len(out))), nil
}

// sortElements sorts as sortCompare does: by numeric value, equal values
// by their bytes; or ALPHA, as strcoll in the C locale (bytes up to a
// NUL; Redis compares whole strings when it stores).
func sortElements(elems [][]byte, o sortOptions) error {
	if o.alpha {
		cmp := func(a, b []byte) int { return bytes.Compare(cstr(a), cstr(b)) }
		if o.store != nil {
			cmp = bytes.Compare
		}
		slices.SortStableFunc(elems, func(a, b []byte) int { return sign(cmp(a, b), o.desc) })
		return nil
	}
	scores := make(map[string]float64, len(elems))
	for _, e := range elems {
		f, ok := sortScore(e)
		if !ok {
			return errSortNum
		}
		scores[string(e)] = f
	}
	slices.SortStableFunc(elems, func(a, b []byte) int {
		fa, fb := scores[string(a)], scores[string(b)]
		switch {
		case fa < fb:
			return sign(-1, o.desc)
		case fa > fb:
			return sign(1, o.desc)
		}
		return sign(bytes.Compare(a, b), o.desc)
	})
	return nil
}

func sign(c int, desc bool) int {
	if desc {
		return -c
	}
	return c
}

// sortScore is SORT's strtod: leading space skipped, the number may end
// at a NUL, an empty string is 0; trailing garbage, NaN and overflow or
// underflow (ERANGE) are refused.
func sortScore(b []byte) (float64, bool) {
	num, n := strtodPrefix(b)
	if n < len(b) && b[n] != 0 {
		return 0, false
	}
	if n == 0 {
		return 0, len(b) == 0 || b[0] == 0
	}
	if num == "nan" {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	if (math.IsInf(f, 0) && !strings.HasSuffix(num, "inf")) || (f == 0 && hasNonzeroDigit(num)) {
		return 0, false
	}
	return f, true
}

// sortLimit applies LIMIT as sortCommandGeneric computes it.
func sortLimit(elems [][]byte, limitStart, limitCount int64) [][]byte {
	n := int64(len(elems))
	start := max(limitStart, 0)
	end := n - 1
	if limitCount >= 0 {
		end = start + limitCount - 1
	}
	if start >= n {
		start, end = n-1, n-2
	}
	if end >= n {
		end = n - 1
	}
	if end < start {
		return nil
	}
	return elems[start : end+1]
}
