package redis

import (
	"bytes"
	"encoding/binary"
	"math"
)

// The HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT and
// PFMERGE. A HyperLogLog is a string value in Redis's own representation,
// byte for byte, so that GET returns what Redis returns and a value SET
// from Redis's bytes counts here:
//
//	"HYLL" | encoding (1 byte: 0 dense, 1 sparse) | 3 unused bytes |
//	cached cardinality (8 bytes, little endian; the top bit of the last
//	byte set means "stale") | registers
//
// 16384 registers of 6 bits, dense: 12288 bytes, register i at bit 6*i
// counted from each byte's least significant bit; or sparse: opcodes ZERO
// (00xxxxxx, 1 to 64 zero registers), XZERO (01xxxxxx yyyyyyyy, 1 to 16384
// zero registers) and VAL (1vvvvvxx, 1 to 4 registers of value 1 to 32).
// A new HyperLogLog is sparse; it becomes dense when a register needs a
// value above 32 or the sparse form would grow past hllSparseMaxBytes.
//
// PFCOUNT of one key stores the cardinality it computed in the value when
// the cache was stale, as Redis does (GET shows it, and WATCH sees it): so
// PFCOUNT is not run as a read here (table.go) though COMMAND INFO flags it
// "readonly" as Redis does.
//
// Corrupt values behave as in Redis, including its leniencies: a sparse
// value is checked only as far as each command walks it, a byte read past
// the end of the value reads as the C string's terminating zero, and PFADD
// keeps what it changed before meeting the corruption.

const (
	hllP              = 14
	hllQ              = 64 - hllP
	hllRegisters      = 1 << hllP
	hllBits           = 6
	hllRegisterMax    = 1<<hllBits - 1
	hllHdrSize        = 16
	hllDenseSize      = hllHdrSize + (hllRegisters*hllBits+7)/8
	hllEncDense       = 0
	hllEncSparse      = 1
	hllSparseValMax   = 32    // HLL_SPARSE_VAL_MAX_VALUE
	hllSparseValLen   = 4     // HLL_SPARSE_VAL_MAX_LEN
	hllSparseZeroLen  = 64    // HLL_SPARSE_ZERO_MAX_LEN
	hllSparseXZeroLen = 16384 // HLL_SPARSE_XZERO_MAX_LEN
	hllSeed           = 0xadc83b19
	hllAlphaInf       = 0.721347520444481703680 // 0.5/ln(2)

	// hllSparseMaxBytes is Redis's default hll-sparse-max-bytes. Orbit has
	// no such setting (CONFIG GET lists none): every node uses the default.
	hllSparseMaxBytes = 3000
)

const (
	errHLLWrongType userError = "WRONGTYPE Key is not a valid HyperLogLog string value."
	errHLLCorrupt   userError = "INVALIDOBJ Corrupted HLL object detected"
)

// murmurHash64A is Redis's MurmurHash64A, endian-neutral.
func murmurHash64A(key []byte, seed uint32) uint64 {
	const m = 0xc6a4a7935bd1e995
	const r = 47
	h := uint64(seed) ^ uint64(len(key))*m
	n := len(key) - len(key)&7
	for i := 0; i < n; i += 8 {
		k := binary.LittleEndian.Uint64(key[i:])
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
	}
	if rest := key[n:]; len(rest) > 0 {
		for i := len(rest) - 1; i >= 0; i-- {
			h ^= uint64(rest[i]) << (8 * i)
		}
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// hllPatLen is hllPatLen: the register ele falls in, and the length of the
// 00..01 pattern of the rest of its hash (1 to hllQ+1).
func hllPatLen(ele []byte) (int, uint8) {
	hash := murmurHash64A(ele, hllSeed)
	index := int(hash & (hllRegisters - 1))
	hash >>= hllP
	hash |= 1 << hllQ
	count := uint8(1)
	for bit := uint64(1); hash&bit == 0; bit <<= 1 {
		count++
	}
	return index, count
}

// hllAt reads byte i of v, or 0 past its end: the terminating zero every
// sds string has, which Redis's walks may read.
func hllAt(v []byte, i int) byte {
	if i < len(v) {
		return v[i]
	}
	return 0
}

// newHLL is createHLLObject: an empty sparse HyperLogLog.
func newHLL() []byte {
	v := make([]byte, hllHdrSize, hllHdrSize+4)
	copy(v, "HYLL")
	v[4] = hllEncSparse
	for n := hllRegisters; n > 0; n -= min(n, hllSparseXZeroLen) {
		l := min(n, hllSparseXZeroLen) - 1
		v = append(v, byte(l>>8)|0x40, byte(l))
	}
	return v
}

// hllValid is isHLLObjectOrReply's check of a string value.
func hllValid(v []byte) bool {
	if len(v) < hllHdrSize || !bytes.HasPrefix(v, []byte("HYLL")) || v[4] > hllEncSparse {
		return false
	}
	return v[4] != hllEncDense || len(v) == hllDenseSize
}

func hllInvalidate(v []byte) { v[15] |= 0x80 }

// Dense registers; v is the whole value.

func hllDenseGet(v []byte, i int) uint8 {
	b := hllHdrSize + i*hllBits/8
	fb := uint(i * hllBits & 7)
	return uint8((uint(v[b])>>fb | uint(hllAt(v, b+1))<<(8-fb)) & hllRegisterMax)
}

func hllDenseSetReg(v []byte, i int, val uint8) {
	b := hllHdrSize + i*hllBits/8
	fb := uint(i * hllBits & 7)
	x := uint(val)
	v[b] &^= byte(uint(hllRegisterMax) << fb)
	v[b] |= byte(x << fb)
	if b+1 < len(v) {
		v[b+1] &^= byte(uint(hllRegisterMax) >> (8 - fb))
		v[b+1] |= byte(x >> (8 - fb))
	}
}

// hllDenseSet is hllDenseSet: raise register i to count, 1 if it changed.
func hllDenseSet(v []byte, i int, count uint8) int {
	if count > hllDenseGet(v, i) {
		hllDenseSetReg(v, i, count)
		return 1
	}
	return 0
}

// Sparse opcodes at v[p].

func hllIsZero(b byte) bool  { return b&0xc0 == 0 }
func hllIsXZero(b byte) bool { return b&0xc0 == 0x40 }
func hllIsVal(b byte) bool   { return b&0x80 != 0 }

func hllZeroLen(b byte) int           { return int(b&0x3f) + 1 }
func hllXZeroLen(v []byte, p int) int { return (int(v[p]&0x3f)<<8 | int(hllAt(v, p+1))) + 1 }
func hllValValue(b byte) uint8        { return (b>>2)&0x1f + 1 }
func hllValLen(b byte) int            { return int(b&3) + 1 }
func hllVal(val uint8, n int) byte    { return (val-1)<<2 | byte(n-1) | 0x80 }

// hllAppendZeros appends a ZERO or XZERO opcode for n registers.
func hllAppendZeros(seq []byte, n int) []byte {
	if n > hllSparseZeroLen {
		return append(seq, byte((n-1)>>8)|0x40, byte(n-1))
	}
	return append(seq, byte(n-1))
}

// hllSparseWalk calls fn for each VAL opcode's run and returns the number
// of registers the opcodes cover, stopping (with false) at a VAL run that
// would pass the last register, as hllSparseToDense and hllMerge do.
func hllSparseWalk(v []byte, fn func(first, n int, val uint8)) (int, bool) {
	idx := 0
	for p := hllHdrSize; p < len(v); {
		switch b := v[p]; {
		case hllIsZero(b):
			idx += hllZeroLen(b)
			p++
		case hllIsXZero(b):
			idx += hllXZeroLen(v, p)
			p += 2
		default:
			n := hllValLen(b)
			if idx+n > hllRegisters {
				return idx, false
			}
			fn(idx, n, hllValValue(b))
			idx += n
			p++
		}
	}
	return idx, true
}

// hllSparseToDense is hllSparseToDense: v as a new dense value (v itself if
// dense already), or false if the sparse form is corrupt.
func hllSparseToDense(v []byte) ([]byte, bool) {
	if v[4] == hllEncDense {
		return v, true
	}
	d := make([]byte, hllDenseSize)
	copy(d, v[:hllHdrSize]) // the magic and the cached cardinality
	d[4] = hllEncDense
	idx, ok := hllSparseWalk(v, func(first, n int, val uint8) {
		for i := first; i < first+n; i++ {
			hllDenseSetReg(d, i, val)
		}
	})
	if !ok || idx != hllRegisters {
		return v, false
	}
	return d, true
}

// hllSparseSet is hllSparseSet: raise register index to count in the
// sparse value v, splitting and merging opcodes as Redis does, or promote v
// to dense. It returns the new value and 1 (changed), 0 (unchanged) or -1
// (corrupt; v unchanged).
func hllSparseSet(v []byte, index int, count uint8) ([]byte, int) {
	if count > hllSparseValMax {
		return hllPromote(v, index, count)
	}
	// Step 1: find the opcode covering index.
	end := len(v)
	p, prev := hllHdrSize, -1
	first, span := 0, 0
	for p < end {
		oplen := 1
		switch b := v[p]; {
		case hllIsZero(b):
			span = hllZeroLen(b)
		case hllIsVal(b):
			span = hllValLen(b)
		default:
			span = hllXZeroLen(v, p)
			oplen = 2
		}
		if index <= first+span-1 {
			break
		}
		prev = p
		p += oplen
		first += span
	}
	if span == 0 || p >= end {
		return v, -1
	}
	b := v[p]
	isZero, isXZero, isVal := hllIsZero(b), hllIsXZero(b), hllIsVal(b)
	var runlen int
	switch {
	case isZero:
		runlen = hllZeroLen(b)
	case isXZero:
		runlen = hllXZeroLen(v, p)
	default:
		runlen = hllValLen(b)
	}
	// Step 2: the trivial cases, A to C. (v is the caller's copy: it is
	// changed in place, as in Redis.)
	switch {
	case isVal && hllValValue(b) >= count:
		return v, 0
	case isVal && runlen == 1, isZero && runlen == 1:
		v[p] = hllVal(count, 1)
		return hllSparseMerge(v, prev), 1
	}
	// D: split the opcode into up to three.
	last := first + span - 1
	seq := make([]byte, 0, 5)
	if isZero || isXZero {
		if index != first {
			seq = hllAppendZeros(seq, index-first)
		}
		seq = append(seq, hllVal(count, 1))
		if index != last {
			seq = hllAppendZeros(seq, last-index)
		}
	} else {
		cur := hllValValue(b)
		if index != first {
			seq = append(seq, hllVal(cur, index-first))
		}
		seq = append(seq, hllVal(count, 1))
		if index != last {
			seq = append(seq, hllVal(cur, last-index))
		}
	}
	// Step 3: put seq in the opcode's place, or promote when that would
	// make the value too long.
	oldlen := 1
	if isXZero {
		oldlen = 2
	}
	delta := len(seq) - oldlen
	if delta > 0 && len(v)+delta > hllSparseMaxBytes {
		return hllPromote(v, index, count)
	}
	out := make([]byte, 0, len(v)+max(delta, 0))
	out = append(append(out, v[:p]...), seq...)
	out = append(out, v[min(p+oldlen, len(v)):]...)
	// A truncated XZERO at the very end: Redis's length arithmetic drops
	// the last byte of seq.
	out = out[:len(v)+delta]
	return hllSparseMerge(out, prev), 1
}

// hllSparseMerge is hllSparseSet's step 4: from the opcode before the one
// changed (prev, or the first), merge up to five adjacent VAL opcodes of
// equal value; then mark the cache stale.
func hllSparseMerge(v []byte, prev int) []byte {
	p := prev
	if p < 0 {
		p = hllHdrSize
	}
	for scan := 5; p < len(v) && scan > 0; {
		scan--
		switch {
		case hllIsXZero(v[p]):
			p += 2
			continue
		case hllIsZero(v[p]):
			p++
			continue
		}
		if p+1 < len(v) && hllIsVal(v[p+1]) {
			v1, v2 := hllValValue(v[p]), hllValValue(v[p+1])
			if n := hllValLen(v[p]) + hllValLen(v[p+1]); v1 == v2 && n <= hllSparseValLen {
				v[p+1] = hllVal(v1, n)
				v = append(v[:p], v[p+1:]...)
				continue
			}
		}
		p++
	}
	hllInvalidate(v)
	return v
}

// hllPromote is hllSparseSet's promotion: v dense, with register index set.
func hllPromote(v []byte, index int, count uint8) ([]byte, int) {
	d, ok := hllSparseToDense(v)
	if !ok {
		return v, -1
	}
	hllDenseSet(d, index, count)
	return d, 1
}

// hllAdd is hllAdd: add ele to v (a valid HyperLogLog), returning the new
// value and 1 (a register changed), 0 or -1 (corrupt).
func hllAdd(v []byte, ele []byte) ([]byte, int) {
	index, count := hllPatLen(ele)
	if v[4] == hllEncDense {
		return v, hllDenseSet(v, index, count)
	}
	return hllSparseSet(v, index, count)
}

// hllMerge is hllMerge: raise max to v's registers; false if v is a
// corrupt sparse value.
func hllMerge(max *[hllRegisters]uint8, v []byte) bool {
	if v[4] == hllEncDense {
		for i := range max {
			if r := hllDenseGet(v, i); r > max[i] {
				max[i] = r
			}
		}
		return true
	}
	idx, ok := hllSparseWalk(v, func(first, n int, val uint8) {
		for i := first; i < first+n; i++ {
			if val > max[i] {
				max[i] = val
			}
		}
	})
	return ok && idx == hllRegisters
}

// hllCountValue is hllCount of a value: its estimate, or false for a
// corrupt sparse value.
func hllCountValue(v []byte) (uint64, bool) {
	var histo [64]int
	if v[4] == hllEncDense {
		for i := range hllRegisters {
			histo[hllDenseGet(v, i)]++
		}
		return hllEstimate(&histo), true
	}
	idx := 0
	for p := hllHdrSize; p < len(v); {
		switch b := v[p]; {
		case hllIsZero(b):
			n := hllZeroLen(b)
			idx += n
			histo[0] += n
			p++
		case hllIsXZero(b):
			n := hllXZeroLen(v, p)
			idx += n
			histo[0] += n
			p += 2
		default:
			n := hllValLen(b)
			idx += n
			histo[hllValValue(b)] += n
			p++
		}
	}
	return hllEstimate(&histo), idx == hllRegisters
}

// hllEstimate is hllCount's estimate from the register histogram (Ertl,
// "New cardinality estimation algorithms for HyperLogLog sketches"). The
// float64 conversions keep Go from fusing a multiply and an add, which C
// compiled for x86-64 does not.
func hllEstimate(histo *[64]int) uint64 {
	const m = float64(hllRegisters)
	z := float64(m * hllTau((m-float64(histo[hllQ+1]))/m))
	for j := hllQ; j >= 1; j-- {
		z += float64(histo[j])
		z *= 0.5
	}
	z += float64(m * hllSigma(float64(histo[0])/m))
	return uint64(math.Round(float64(float64(hllAlphaInf*m)*m) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += float64(x * y)
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		d := 1 - x
		z -= float64(float64(d*d) * y)
		if z == prev {
			return z / 3
		}
	}
}

// lookupHLL looks key up as a HyperLogLog: nil if absent, Redis's
// WRONGTYPE errors for another type or a string that is not one.
func (c *ctx) lookupHLL(key []byte) (*obj, error) {
	o, err := c.lookupString(key)
	if err != nil || !o.exists {
		return o, err
	}
	if !hllValid(o.m.value) {
		return nil, errHLLWrongType
	}
	return o, nil
}

// PFADD key [element ...]
func cmdPFAdd(c *ctx) (Reply, error) {
	o, err := c.lookupHLL(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	updated := 0
	var v []byte
	if !o.exists {
		o.m = meta{typ: typeString}
		v, updated = newHLL(), 1
	} else {
		v = bytes.Clone(o.m.value)
	}
	for _, ele := range c.args[2:] {
		var r int
		v, r = hllAdd(v, ele)
		if r < 0 {
			// Redis changed its value in place: what the elements before
			// this one changed stays (the key existed, so updated counts
			// only them).
			if updated > 0 {
				o.m.value = v
				if err := c.save(o); err != nil {
					return Reply{}, err
				}
			}
			return Reply{}, errHLLCorrupt
		}
		updated += r
	}
	if updated == 0 {
		return Int(0), nil
	}
	hllInvalidate(v)
	o.m.value = v
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyString, "pfadd", c.args[1])
	return Int(1), nil
}

// PFCOUNT key [key ...]
func cmdPFCount(c *ctx) (Reply, error) {
	if len(c.args) > 2 {
		// The union, computed afresh: no key's cache is read or written.
		var max [hllRegisters]uint8
		for _, key := range c.args[1:] {
			o, err := c.lookupHLL(key)
			if err != nil {
				return Reply{}, err
			}
			if o.exists && !hllMerge(&max, o.m.value) {
				return Reply{}, errHLLCorrupt
			}
		}
		var histo [64]int
		for _, r := range max {
			histo[r]++
		}
		return Int(int64(hllEstimate(&histo))), nil
	}
	o, err := c.lookupHLL(c.args[1])
	if err != nil || !o.exists {
		return Int(0), err
	}
	v := o.m.value
	if v[15]&0x80 == 0 {
		return Int(int64(binary.LittleEndian.Uint64(v[8:16]))), nil
	}
	card, ok := hllCountValue(v)
	if !ok {
		return Reply{}, errHLLCorrupt
	}
	// Redis stores the cardinality it computed: a write, as in Redis.
	v = bytes.Clone(v)
	binary.LittleEndian.PutUint64(v[8:16], card)
	o.m.value = v
	return Int(int64(card)), c.save(o)
}

// PFMERGE destkey [sourcekey ...]
func cmdPFMerge(c *ctx) (Reply, error) {
	var max [hllRegisters]uint8
	dense := false
	for _, key := range c.args[1:] {
		o, err := c.lookupHLL(key)
		if err != nil {
			return Reply{}, err
		}
		if !o.exists {
			continue
		}
		if o.m.value[4] == hllEncDense {
			dense = true
		}
		if !hllMerge(&max, o.m.value) {
			return Reply{}, errHLLCorrupt
		}
	}
	o, err := c.lookupHLL(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	var v []byte
	if !o.exists {
		o.m = meta{typ: typeString}
		v = newHLL()
	} else {
		v = bytes.Clone(o.m.value)
	}
	if dense {
		var ok bool
		if v, ok = hllSparseToDense(v); !ok {
			return Reply{}, errHLLCorrupt
		}
	}
	for i, r := range max {
		if r == 0 {
			continue
		}
		if v[4] == hllEncDense {
			hllDenseSet(v, i, r)
		} else {
			// Redis ignores a failure here: the destination was merged
			// above, so it is not corrupt.
			v, _ = hllSparseSet(v, i, r)
		}
	}
	hllInvalidate(v)
	o.m.value = v
	if err := c.save(o); err != nil {
		return Reply{}, err
	}
	// A PFMERGE is a "pfadd", as in Redis (a mass-add of elements).
	c.notify(NotifyString, "pfadd", c.args[1])
	return OK(), nil
}
