package redis

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// The bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
// BITOP, BITFIELD and BITFIELD_RO. A bitmap is a string value: bit 0 is the
// most significant bit of the first byte, and the bits past the end of the
// string read as zero. Commands that write grow the string with zero bytes
// to reach their highest bit, keep its TTL, and write nothing when nothing
// changed (as Redis, which only then counts a change).
//
// A bit offset is bounded as Redis bounds it, by proto-max-bulk-len: its
// byte must lie below it. Here that is MaxBulkLen (64 MB, as CONFIG GET
// proto-max-bulk-len says), so no command allocates more than a string may
// hold (BITFIELD, as in Redis, up to 8 bytes more: its last field may start
// at the last byte).

const (
	errBitOffset userError = "ERR bit offset is not an integer or out of range"
	errBitValue  userError = "ERR bit is not an integer or out of range"
	errBitArg    userError = "ERR The bit argument must be 1 or 0."
	errBitType   userError = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)

// cEqualFold is Redis's strcasecmp(b, s) == 0: ASCII case folding, with b
// read as a C string (up to its first NUL byte).
func cEqualFold(b []byte, s string) bool {
	b = cstr(b)
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// bitOffset is getBitOffsetFromArgument: a bit offset, or with hash (for
// BITFIELD) also "#n", the n-th field of width bits. n*bits wraps on
// overflow, as the C multiplication does on every platform Redis runs on.
func bitOffset(arg []byte, hash bool, width int) (int64, error) {
	useHash := hash && width > 0 && len(arg) > 0 && arg[0] == '#'
	if useHash {
		arg = arg[1:]
	}
	n, ok := parseInt(arg)
	if !ok {
		return 0, errBitOffset
	}
	if useHash {
		n *= int64(width)
	}
	if n < 0 || n>>3 >= MaxBulkLen {
		return 0, errBitOffset
	}
	return n, nil
}

// growBits returns a copy of value long enough to hold bit maxBit, grown
// with zero bytes, and whether it grew.
func growBits(value []byte, maxBit int64) ([]byte, bool) {
	need := int(maxBit>>3) + 1
	if need <= len(value) {
		return bytes.Clone(value), false
	}
	v := make([]byte, need)
	copy(v, value)
	return v, true
}

func cmdSetBit(c *ctx) (Reply, error) {
	off, err := bitOffset(c.args[2], false, 0)
	if err != nil {
		return Reply{}, err
	}
	on, ok := parseInt(c.args[3])
	if !ok || on&^1 != 0 {
		return Reply{}, errBitValue
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	created := !o.exists
	v, grown := growBits(o.m.value, off)
	i, mask := off>>3, byte(1)<<(7-off&7)
	old := v[i]&mask != 0
	if on == 1 {
		v[i] |= mask
	} else if !mutation.On(MutSetBitKeepsOnes) {
		v[i] &^= mask
	}
	if created || grown || old != (on == 1) {
		if created {
			o.m = meta{typ: typeString}
		}
		o.m.value = v
		if err := c.save(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyString, "setbit", c.args[1])
	}
	return Int(b2i(old)), nil
}

func cmdGetBit(c *ctx) (Reply, error) {
	off, err := bitOffset(c.args[2], false, 0)
	if err != nil {
		return Reply{}, err
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	return Int(int64(bitAt(o.m.value, off))), nil
}

// bitAt is bit off of p, 0 past its end.
func bitAt(p []byte, off int64) byte {
	if off>>3 >= int64(len(p)) {
		return 0
	}
	return p[off>>3] >> (7 - off&7) & 1
}

// bitUnit parses BITCOUNT's and BITPOS's BYTE|BIT.
func bitUnit(arg []byte) (isBit bool, err error) {
	switch {
	case cEqualFold(arg, "bit"):
		return true, nil
	case cEqualFold(arg, "byte"):
		return false, nil
	}
	return false, errSyntax
}

// bitRange clamps a start..end range as BITCOUNT and BITPOS do, over total
// units (bytes or bits): negative indexes count from the end, and both are
// then kept within 0..total-1 (start may end up past end: an empty range).
func bitRange(start, end, total int64) (int64, int64) {
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	if end >= total {
		end = total - 1
	}
	return start, end
}

// cmdBitCount is bitcountCommand: the key is looked up (and a missing one
// answers 0) before the arguments are parsed, as in Redis.
func cmdBitCount(c *ctx) (Reply, error) {
	o, err := c.lookupString(c.args[1])
	if err != nil || !o.exists {
		return Int(0), err
	}
	p := o.m.value
	var from, to int64 // bits, inclusive
	switch len(c.args) {
	case 2:
		from, to = 0, int64(len(p))*8-1
	case 4, 5:
		start, err := argInt(c.args[2])
		if err != nil {
			return Reply{}, err
		}
		end, err := argInt(c.args[3])
		if err != nil {
			return Reply{}, err
		}
		if start < 0 && end < 0 && start > end {
			return Int(0), nil
		}
		isBit := false
		if len(c.args) == 5 {
			if isBit, err = bitUnit(c.args[4]); err != nil {
				return Reply{}, err
			}
		}
		if isBit {
			from, to = bitRange(start, end, int64(len(p))*8)
		} else if start, end = bitRange(start, end, int64(len(p))); start <= end {
			from, to = start*8, end*8+7 // (start may be huge when past end)
		} else {
			return Int(0), nil
		}
	default:
		return Reply{}, errSyntax
	}
	if from > to {
		return Int(0), nil
	}
	return Int(countBits(p, from, to)), nil
}

// countBits counts the set bits from bit from to bit to (inclusive) of p.
func countBits(p []byte, from, to int64) int64 {
	first, last := from>>3, to>>3
	if first == last {
		return int64(bits.OnesCount8(p[first] & (0xFF >> (from & 7)) & (0xFF << (7 - to&7))))
	}
	n := int64(bits.OnesCount8(p[first] & (0xFF >> (from & 7))))
	n += int64(bits.OnesCount8(p[last] & (0xFF << (7 - to&7))))
	mid := p[first+1 : last]
	for len(mid) >= 8 {
		n += int64(bits.OnesCount64(binary.LittleEndian.Uint64(mid)))
		mid = mid[8:]
	}
	for _, b := range mid {
		n += int64(bits.OnesCount8(b))
	}
	return n
}

// cmdBitPos is bitposCommand. The search runs over bits from..to; not
// finding a 0 answers the bit after the range when no end was given (the
// string reads as zero-padded on the right), -1 otherwise.
func cmdBitPos(c *ctx) (Reply, error) {
	bit, ok := parseInt(c.args[2])
	if !ok {
		return Reply{}, errNotInt
	}
	if bit != 0 && bit != 1 {
		return Reply{}, errBitArg
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return Int(-bit), nil
	}
	p := o.m.value
	n := int64(len(p))
	var from, to int64 // bits, inclusive
	endGiven := false
	switch len(c.args) {
	case 3:
		from, to = 0, n*8-1
	case 4, 5, 6:
		start, err := argInt(c.args[3])
		if err != nil {
			return Reply{}, err
		}
		isBit := false
		if len(c.args) == 6 {
			if isBit, err = bitUnit(c.args[5]); err != nil {
				return Reply{}, err
			}
		}
		end := n - 1
		if len(c.args) >= 5 {
			if end, err = argInt(c.args[4]); err != nil {
				return Reply{}, err
			}
			endGiven = true
		}
		if isBit {
			from, to = bitRange(start, end, n*8)
		} else if start, end = bitRange(start, end, n); start <= end {
			from, to = start*8, end*8+7 // (start may be huge when past end)
		} else {
			return Int(-1), nil
		}
	default:
		return Reply{}, errSyntax
	}
	if from > to {
		return Int(-1), nil
	}
	if pos := findBit(p, byte(bit), from, to); pos >= 0 {
		return Int(pos), nil
	}
	if bit == 1 || endGiven {
		return Int(-1), nil
	}
	return Int(to + 1), nil
}

// findBit returns the first bit of p from bit from to bit to (inclusive)
// that equals bit, or -1.
func findBit(p []byte, bit byte, from, to int64) int64 {
	flip := byte(0)
	if bit == 0 {
		flip = 0xFF
	}
	first, last := from>>3, to>>3
	for i := first; i <= last; i++ {
		b := p[i] ^ flip // the bits sought are ones
		if i == first {
			b &= 0xFF >> (from & 7)
		}
		if i == last {
			b &= 0xFF << (7 - to&7)
		}
		if b != 0 {
			return i*8 + int64(bits.LeadingZeros8(b))
		}
	}
	return -1
}

// cmdBitOp is bitopCommand: the destination takes the result (a new string
// without TTL, whatever it held) or, when every source is empty or
// missing, is deleted.
func cmdBitOp(c *ctx) (Reply, error) {
	const (
		opAnd = iota
		opOr
		opXor
		opNot
	)
	var op int
	switch name := c.args[1]; {
	case cEqualFold(name, "and"):
		op = opAnd
	case cEqualFold(name, "or"):
		op = opOr
	case cEqualFold(name, "xor"):
		op = opXor
	case cEqualFold(name, "not"):
		op = opNot
	default:
		return Reply{}, errSyntax
	}
	if op == opNot && len(c.args) != 4 {
		return Reply{}, userError("ERR BITOP NOT must be called with a single source key.")
	}
	srcs := make([][]byte, 0, len(c.args)-3)
	maxLen := 0
	for _, k := range c.args[3:] {
		o, err := c.lookupString(k)
		if err != nil {
			return Reply{}, err
		}
		srcs = append(srcs, o.m.value)
		maxLen = max(maxLen, len(o.m.value))
	}
	dest := c.args[2]
	if maxLen == 0 {
		o, err := c.lookup(dest)
		if err != nil || !o.exists {
			return Int(0), err
		}
		if err := c.remove(o); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyGeneric, "del", dest)
		return Int(0), nil
	}
	res := make([]byte, maxLen)
	copy(res, srcs[0])
	if op == opNot {
		for i := range res {
			res[i] = ^res[i]
		}
	}
	for _, s := range srcs[1:] {
		switch op {
		case opAnd:
			for i := range res {
				if i < len(s) {
					res[i] &= s[i]
				} else {
					res[i] = 0
				}
			}
		case opOr:
			for i := range s {
				res[i] |= s[i]
			}
		case opXor:
			for i := range s {
				res[i] ^= s[i]
			}
		}
	}
	if err := c.setString(dest, res, false, 0); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "set", dest)
	return Int(int64(maxLen)), nil
}

// BITFIELD's operations and overflow behaviours.
const (
	bfGet = iota
	bfSet
	bfIncrBy
)

const (
	bfWrap = iota
	bfSat
	bfFail
)

type bitfieldOp struct {
	offset   int64
	value    int64 // SET's value, INCRBY's increment
	opcode   int
	overflow int
	width    int
	signed   bool
}

// bitfieldType is getBitfieldTypeFromArgument: i1..i64 or u1..u63.
func bitfieldType(arg []byte) (signed bool, width int, err error) {
	if len(arg) == 0 || (arg[0] != 'i' && arg[0] != 'u') {
		return false, 0, errBitType
	}
	signed = arg[0] == 'i'
	n, ok := parseInt(cstr(arg[1:]))
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, errBitType
	}
	return signed, int(n), nil
}

func cmdBitField(c *ctx) (Reply, error)   { return c.bitfield(false) }
func cmdBitFieldRO(c *ctx) (Reply, error) { return c.bitfield(true) }

// bitfield is bitfieldGeneric: every operation is parsed before any runs;
// one that writes (SET, INCRBY) makes the command grow the string to its
// highest field first, even if OVERFLOW FAIL then leaves every field alone.
func (c *ctx) bitfield(readOnly bool) (Reply, error) {
	var ops []bitfieldOp
	overflow := bfWrap
	writes := false
	var maxBit int64
	args := c.args
	for j := 2; j < len(args); j++ {
		rem := len(args) - j - 1
		var opcode int
		switch sub := args[j]; {
		case cEqualFold(sub, "get") && rem >= 2:
			opcode = bfGet
		case cEqualFold(sub, "set") && rem >= 3:
			opcode = bfSet
		case cEqualFold(sub, "incrby") && rem >= 3:
			opcode = bfIncrBy
		case cEqualFold(sub, "overflow") && rem >= 1:
			j++
			switch t := args[j]; {
			case cEqualFold(t, "wrap"):
				overflow = bfWrap
			case cEqualFold(t, "sat"):
				overflow = bfSat
			case cEqualFold(t, "fail"):
				overflow = bfFail
			default:
				return Reply{}, userError("ERR Invalid OVERFLOW type specified")
			}
			continue
		default:
			return Reply{}, errSyntax
		}
		signed, width, err := bitfieldType(args[j+1])
		if err != nil {
			return Reply{}, err
		}
		off, err := bitOffset(args[j+2], true, width)
		if err != nil {
			return Reply{}, err
		}
		var value int64
		if opcode != bfGet {
			writes = true
			maxBit = max(maxBit, off+int64(width)-1)
			if value, err = argInt(args[j+3]); err != nil {
				return Reply{}, err
			}
			j++
		}
		ops = append(ops, bitfieldOp{offset: off, value: value, opcode: opcode, overflow: overflow, width: width, signed: signed})
		j += 2
	}
	if writes && readOnly {
		return Reply{}, userError("ERR BITFIELD_RO only supports the GET subcommand")
	}
	o, err := c.lookupString(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	p := o.m.value
	created, grown := false, false
	if writes {
		created = !o.exists
		p, grown = growBits(p, maxBit)
	}
	out := make([]Reply, 0, len(ops))
	changes := 0 // Redis's: the writes done, if they changed their field or the string grew
	for _, op := range ops {
		r, wrote, changed := op.run(p)
		if wrote && (created || grown || changed) {
			changes++
		}
		out = append(out, r)
	}
	if writes && (created || grown || !bytes.Equal(p, o.m.value)) {
		if created {
			o.m = meta{typ: typeString}
		}
		o.m.value = p
		if err := c.save(o); err != nil {
			return Reply{}, err
		}
	}
	if changes > 0 {
		c.notify(NotifyString, "setbit", c.args[1])
	}
	return Array(out...), nil
}

// run executes one BITFIELD operation on p, which holds every field a SET
// or INCRBY writes (a GET reads zeros past its end), and returns its reply,
// whether it wrote its field (a SET or INCRBY that OVERFLOW FAIL did not
// stop) and whether that changed the field's value.
func (op bitfieldOp) run(p []byte) (r Reply, wrote, changed bool) {
	w := op.width
	if op.opcode == bfGet {
		if op.signed {
			return Int(getSigned(p, op.offset, w)), false, false
		}
		return Int(int64(getUnsigned(p, op.offset, w))), false, false
	}
	if op.signed {
		old := getSigned(p, op.offset, w)
		var next, reply int64
		var over bool
		if op.opcode == bfIncrBy {
			var limit int64
			limit, over = signedOverflow(old, op.value, w, op.overflow)
			next = old + op.value
			if over {
				next = limit
			}
			reply = next
		} else {
			var limit int64
			next = op.value
			if limit, over = signedOverflow(next, 0, w, op.overflow); over {
				next = limit
			}
			reply = old
		}
		if over && op.overflow == bfFail {
			return Null(), false, false
		}
		setUnsigned(p, op.offset, w, uint64(next))
		return Int(reply), true, next != old
	}
	old := getUnsigned(p, op.offset, w)
	var next, reply uint64
	var over bool
	if op.opcode == bfIncrBy {
		var limit uint64
		next = old + uint64(op.value)
		if limit, over = unsignedOverflow(old, op.value, w, op.overflow); over {
			next = limit
		}
		reply = next
	} else {
		var limit uint64
		next = uint64(op.value)
		if limit, over = unsignedOverflow(next, 0, w, op.overflow); over {
			next = limit
		}
		reply = old
	}
	if over && op.overflow == bfFail {
		return Null(), false, false
	}
	setUnsigned(p, op.offset, w, next)
	return Int(int64(reply)), true, next != old
}

// getUnsigned reads the width-bit big-endian field at bit off of p (zeros
// past its end).
func getUnsigned(p []byte, off int64, width int) uint64 {
	var v uint64
	for range width {
		v = v<<1 | uint64(bitAt(p, off))
		off++
	}
	return v
}

// getSigned reads a two's complement field.
func getSigned(p []byte, off int64, width int) int64 {
	v := int64(getUnsigned(p, off, width))
	if width < 64 && v&(1<<(width-1)) != 0 {
		v |= -1 << width
	}
	return v
}

// setUnsigned writes the low width bits of v at bit off of p, which must
// hold them.
func setUnsigned(p []byte, off int64, width int, v uint64) {
	for j := range width {
		mask := byte(1) << (7 - off&7)
		if v&(1<<(width-1-j)) != 0 {
			p[off>>3] |= mask
		} else {
			p[off>>3] &^= mask
		}
		off++
	}
}

// unsignedOverflow is checkUnsignedBitfieldOverflow: whether value+incr
// leaves a width-bit unsigned field, and then what the field gets under
// WRAP (the sum modulo 2^width) or SAT (the bound crossed).
func unsignedOverflow(value uint64, incr int64, width, behaviour int) (limit uint64, over bool) {
	maxV := uint64(1)<<width - 1
	maxIncr := int64(maxV - value)
	minIncr := -int64(value)
	switch {
	case value > maxV || (incr > 0 && incr > maxIncr):
		limit = maxV
	case incr < 0 && incr < minIncr:
		limit = 0
	default:
		return 0, false
	}
	if behaviour == bfWrap {
		limit = (value + uint64(incr)) & maxV
	}
	return limit, true
}

// signedOverflow is checkSignedBitfieldOverflow, for a width-bit two's
// complement field. Its arithmetic wraps as the C code's does.
func signedOverflow(value, incr int64, width, behaviour int) (limit int64, over bool) {
	maxV := int64(math.MaxInt64)
	if width < 64 {
		maxV = 1<<(width-1) - 1
	}
	minV := -maxV - 1
	maxIncr := int64(uint64(maxV) - uint64(value))
	minIncr := minV - value
	switch {
	case value > maxV || (width != 64 && incr > maxIncr) || (value >= 0 && incr > 0 && incr > maxIncr):
		limit = maxV
	case value < minV || (width != 64 && incr < minIncr) || (value < 0 && incr < 0 && incr < minIncr):
		limit = minV
	default:
		return 0, false
	}
	if behaviour == bfWrap {
		c := uint64(value) + uint64(incr)
		if width < 64 {
			mask := ^uint64(0) << width
			if c&(1<<(width-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		limit = int64(c)
	}
	return limit, true
}
