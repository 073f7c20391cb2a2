package redis

import "strconv"

// LCS, as Redis 7.0's lcsCommand (t_string.c): the longest common
// subsequence of two strings by the textbook dynamic programme, walked
// back from the end to build the subsequence and, with IDX, its matching
// ranges (last first, as Redis emits them).
//
// Redis keeps the whole (len(a)+1)*(len(b)+1) table of uint32 lengths:
// two 64 MB strings would need 16 EB, and even two 1 MB strings 4 TB (it
// answers "Insufficient memory" when the allocation fails). Here the
// lengths are kept two rows at a time and the walk back reads one bit per
// cell (which of the two neighbours holds the longer subsequence), so the
// memory is (len(a)+1)*(len(b)+1)/8 bytes; the time is still one step per
// cell, so the command refuses inputs whose table exceeds lcsMaxCells
// (errLCSTooLong).

// lcsMaxCells bounds (len(a)+1)*(len(b)+1) when neither string is empty
// (against an empty or missing one, the answer needs no table): 64 Mi
// cells, an 8 MB bit table and about a tenth of a second of work, e.g.
// two strings of 8191 bytes, or 64 KB against 1 KB.
const lcsMaxCells = 1 << 26

var errLCSTooLong = userError("ERR LCS input too long: (len(a)+1)*(len(b)+1) must be at most " +
	strconv.Itoa(lcsMaxCells) + " (Orbit's bound on LCS's work)")

func cmdLCS(c *ctx) (Reply, error) {
	oa, err := c.lookup(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	ob, err := c.lookup(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if (oa.exists && oa.m.typ != typeString) || (ob.exists && ob.m.typ != typeString) {
		return Reply{}, userError("ERR The specified keys must contain string values")
	}
	a, b := oa.m.value, ob.m.value // nil (empty) for a missing key
	var getLen, getIdx, withMatchLen bool
	var minMatchLen int64
	for j := 3; j < len(c.args); j++ {
		opt := c.args[j]
		more := len(c.args) - 1 - j
		switch {
		case cEqualFold(opt, "idx"):
			getIdx = true
		case cEqualFold(opt, "len"):
			getLen = true
		case cEqualFold(opt, "withmatchlen"):
			withMatchLen = true
		case cEqualFold(opt, "minmatchlen") && more > 0:
			n, err := argInt(c.args[j+1])
			if err != nil {
				return Reply{}, err
			}
			minMatchLen = max(n, 0)
			j++
		default:
			return Reply{}, errSyntax
		}
	}
	if getIdx && getLen {
		return Reply{}, userError("ERR If you want both the length and indexes, please just use IDX.")
	}
	// Redis refuses lengths of 2^32-2 and more ("String too long for
	// LCS"); values here are at most 64 MB, so the bound below comes first.
	t := &lcsResult{cols: len(b) + 1} // an empty string's: no match, and no walk
	if len(a) > 0 && len(b) > 0 {
		if (uint64(len(a))+1)*(uint64(len(b))+1) > lcsMaxCells {
			return Reply{}, errLCSTooLong
		}
		t = lcsTable(a, b, !getLen || getIdx)
	}
	if getLen && !getIdx {
		return Int(int64(t.length)), nil
	}
	result := make([]byte, t.length)
	var matches []Reply
	idx := t.length
	alen := len(a)
	// A range under construction: astart == alen means none.
	astart, aend, bstart, bend := alen, 0, 0, 0
	i, j := len(a), len(b)
	for i > 0 && j > 0 {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			if astart == alen {
				astart, aend, bstart, bend = i-1, i-1, j-1, j-1
			} else if astart == i && bstart == j {
				astart--
				bstart--
			} else {
				emit = true
			}
			if astart == 0 || bstart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if t.upLonger(i, j) {
				i--
			} else {
				j--
			}
			if astart != alen {
				emit = true
			}
		}
		if emit {
			matchLen := int64(aend - astart + 1)
			if getIdx && (minMatchLen == 0 || matchLen >= minMatchLen) {
				m := []Reply{
					Array(Int(int64(astart)), Int(int64(aend))),
					Array(Int(int64(bstart)), Int(int64(bend))),
				}
				if withMatchLen {
					m = append(m, Int(matchLen))
				}
				matches = append(matches, Array(m...))
			}
			astart = alen
		}
	}
	if getIdx {
		return Map(BulkString("matches"), Array(matches...), BulkString("len"), Int(int64(t.length))), nil
	}
	return Bulk(result), nil
}

// lcsResult is what the walk back needs of the LCS table.
type lcsResult struct {
	length int // LCS(len(a), len(b))
	cols   int // len(b)+1
	// up holds, for cell (i, j) with a[i-1] != b[j-1], whether
	// LCS(i-1, j) > LCS(i, j-1): bit i*cols+j.
	up []uint64
}

func (t *lcsResult) upLonger(i, j int) bool {
	n := i*t.cols + j
	return t.up[n>>6]&(1<<(n&63)) != 0
}

// lcsTable fills the LCS table of a and b row by row. With walk it records
// the direction bits the walk back reads. Precondition:
// (len(a)+1)*(len(b)+1) <= lcsMaxCells.
func lcsTable(a, b []byte, walk bool) *lcsResult {
	cols := len(b) + 1
	t := &lcsResult{cols: cols}
	if walk {
		t.up = make([]uint64, ((len(a)+1)*cols+63)/64)
	}
	prev, cur := make([]uint32, cols), make([]uint32, cols)
	for i := 1; i <= len(a); i++ {
		cur[0] = 0
		ai := a[i-1]
		row := i * cols
		for j := 1; j < cols; j++ {
			if ai == b[j-1] {
				cur[j] = prev[j-1] + 1
				continue
			}
			up, left := prev[j], cur[j-1]
			if up > left {
				cur[j] = up
				if walk {
					n := row + j
					t.up[n>>6] |= 1 << (n & 63)
				}
			} else {
				cur[j] = left
			}
		}
		prev, cur = cur, prev
	}
	t.length = int(prev[cols-1])
	return t
}
