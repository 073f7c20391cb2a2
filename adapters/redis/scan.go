package redis

import (
	"encoding/binary"
	"strconv"
)

// HSCAN, SSCAN and ZSCAN: cursors inside one key.
//
// Redis returns a small key (listpack or intset encoded) whole, with cursor
// 0, whatever COUNT says; Orbit does the same up to smallScanElements. For a
// larger key the cursor is a position in the key's element order: 1 plus
// the first 8 bytes of the next element (zero-padded, big-endian) shifted
// right by 2, so it stays below 2^62 and every client can parse it. Resuming
// at a cursor starts at those bytes with trailing zero bytes dropped, which
// is at or before the element the cursor was made from: an element present
// for the whole iteration is returned at least once (duplicates are allowed,
// as in Redis). A scan call continues past COUNT until the cursor advances,
// so iteration always ends.

const smallScanElements = 128

// parseScanCursor is parseScanCursorOrReply: strtoul, so a sign is allowed
// (a negative cursor wraps around), and an empty string is cursor 0.
func parseScanCursor(b []byte) (uint64, error) {
	if len(b) > 0 && isCSpace(b[0]) {
		return 0, errInvalidCurs
	}
	s := string(b)
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
		if s == "" {
			return 0, errInvalidCurs
		}
	}
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s[0] == '+' || s[0] == '-' {
		return 0, errInvalidCurs
	}
	if neg {
		v = -v
	}
	return v, nil
}

// scanOpts are the options of a SCAN-family command.
type scanOpts struct {
	count   int64
	pattern []byte // nil: match everything
	typ     []byte // SCAN only
}

// parseScanOpts is the option loop of scanGenericCommand; allowType is set
// for SCAN over the keyspace.
func parseScanOpts(args [][]byte, allowType bool) (scanOpts, error) {
	o := scanOpts{count: 10}
	for i := 0; i < len(args); {
		left := len(args) - i
		switch {
		case eqFold(args[i], "count") && left >= 2:
			n, err := argInt(args[i+1])
			if err != nil {
				return o, err
			}
			if n < 1 {
				return o, errSyntax
			}
			o.count = n
			i += 2
		case eqFold(args[i], "match") && left >= 2:
			o.pattern = args[i+1]
			if len(o.pattern) == 1 && o.pattern[0] == '*' {
				o.pattern = nil
			}
			i += 2
		case eqFold(args[i], "type") && allowType && left >= 2:
			o.typ = args[i+1]
			i += 2
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

func (o scanOpts) matches(b []byte) bool { return o.pattern == nil || globMatch(o.pattern, b) }

func elementCursor(member []byte) uint64 {
	var p [8]byte
	copy(p[:], member)
	return 1 + binary.BigEndian.Uint64(p[:])>>2
}

func cursorStart(cursor uint64) []byte {
	if cursor == 0 {
		return nil
	}
	b := binary.BigEndian.AppendUint64(nil, (cursor-1)<<2)
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// scanKey is the element scan of HSCAN, SSCAN and ZSCAN: args are the
// command's, tag the element records to walk, and emit appends one
// element's reply items (field and value, member, member and score).
func (c *ctx) scanKey(t valueType, emit func(out []Reply, member, value []byte) ([]Reply, error)) (Reply, error) {
	cursor, err := parseScanCursor(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupType(c.args[1], t)
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return Array(BulkString("0"), Array()), nil
	}
	opts, err := parseScanOpts(c.args[3:], false)
	if err != nil {
		return Reply{}, err
	}
	prefix := memberPrefix(o.rk)
	start := prefix
	whole := o.m.count <= smallScanElements
	if !whole {
		start = append(append([]byte(nil), prefix...), cursorStart(cursor)...)
	}
	var out []Reply
	var seen int64
	next := uint64(0)
	err = c.each(start, prefixEnd(prefix), func(kv KV) (bool, error) {
		member := kv.Key[len(prefix):]
		if !whole && seen >= opts.count {
			if nc := elementCursor(member); nc > cursor {
				next = nc
				return false, nil
			}
		}
		seen++
		if !opts.matches(member) {
			return true, nil
		}
		var err error
		out, err = emit(out, member, kv.Value)
		return err == nil, err
	})
	if err != nil {
		return Reply{}, err
	}
	return Array(BulkString(strconv.FormatUint(next, 10)), Array(out...)), nil
}
