package redis

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

var (
	posInf = math.Inf(1)
	negInf = math.Inf(-1)
)

const (
	minInt64 = math.MinInt64
	maxInt64 = math.MaxInt64
)

// parseInt is Redis's string2ll: an optional '-', then either "0" or a
// digit 1-9 followed by digits, fitting in an int64, at most 20 bytes. No
// '+', no spaces, no leading zeros, no "-0".
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) >= 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	i := 0
	if b[0] == '-' {
		i++
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	for _, c := range b[i:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

// parseUint is Redis's string2ull: a string2ll number if it is one (a
// negative one is refused), else what strtoull reads in full: C spaces, an
// optional sign ('-' negates modulo 2^64, as strtoull does), at least one
// digit and nothing after, without overflow.
func parseUint(b []byte) (uint64, bool) {
	if v, ok := parseInt(b); ok {
		return uint64(v), v >= 0
	}
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	neg := i < len(b) && b[i] == '-'
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	digits := i
	var v uint64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false // ERANGE
		}
		v = v*10 + d
	}
	if i == digits || i != len(b) {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// strtodPrefix scans the longest prefix of s that C's strtod would
// convert, after any leading white space, and returns it in a form Go's
// parsers accept, together with the number of bytes consumed (0 if there is
// no number). It accepts what glibc does: decimal and hexadecimal (with an
// optional binary exponent) numbers, "inf", "infinity" and "nan", any case,
// with an optional sign.
func strtodPrefix(s []byte) (num string, consumed int) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	var out strings.Builder
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		out.WriteByte(s[i])
		i++
	}
	sign := out.String()
	rest := strings.ToLower(string(s[i:min(len(s), i+8)]))
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return out.String() + "inf", i + 8
	case strings.HasPrefix(rest, "inf"):
		return out.String() + "inf", i + 3
	case strings.HasPrefix(rest, "nan"):
		// glibc also takes "nan(chars)"; nobody sends that, and every caller
		// rejects NaN anyway.
		return "nan", i + 3
	}
	digits := func(hex bool) int {
		n := 0
		for i < len(s) {
			c := s[i]
			ok := c >= '0' && c <= '9'
			if hex {
				ok = ok || (c|0x20 >= 'a' && c|0x20 <= 'f')
			}
			if !ok {
				break
			}
			out.WriteByte(c)
			i++
			n++
		}
		return n
	}
	// exponent takes an exponent introduced by letter ('e', or 'p' for
	// hex), if one with digits follows; a letter without digits is not
	// part of the number.
	exponent := func(letter byte) {
		mark, markLen := i, out.Len()
		if i >= len(s) || s[i]|0x20 != letter {
			return
		}
		out.WriteByte(letter)
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			out.WriteByte(s[i])
			i++
		}
		if digits(false) == 0 {
			i = mark
			trimmed := out.String()[:markLen]
			out.Reset()
			out.WriteString(trimmed)
		}
	}
	if i+1 < len(s) && s[i] == '0' && s[i+1]|0x20 == 'x' {
		// "0x" followed by no hex digit is the number 0 followed by "x".
		save := i
		i += 2
		out.WriteString("0x")
		n := digits(true)
		if i < len(s) && s[i] == '.' {
			out.WriteByte('.')
			i++
			n += digits(true)
		}
		if n == 0 {
			return sign + "0", save + 1
		}
		exponent('p')
		if !strings.Contains(out.String(), "p") {
			out.WriteString("p0")
		}
		return out.String(), i
	}
	n := digits(false)
	if i < len(s) && s[i] == '.' {
		out.WriteByte('.')
		i++
		n += digits(false)
	}
	if n == 0 {
		return "", 0
	}
	exponent('e')
	return out.String(), i
}

// hasNonzeroDigit tells an underflow (a nonzero number that rounds to zero)
// from a true zero.
func hasNonzeroDigit(num string) bool {
	num = strings.TrimPrefix(strings.TrimPrefix(num, "-"), "+")
	num = strings.TrimPrefix(num, "0x")
	for _, c := range num {
		if c == 'e' || c == 'p' {
			break
		}
		if c >= '1' && c <= '9' || c >= 'a' && c <= 'f' {
			return true
		}
	}
	return false
}

// parseFloat is Redis's getDoubleFromObject (strtod, strictly): the whole
// argument must be a number, without leading space; NaN, overflow and
// underflow to zero are refused. Infinities are accepted.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	num, n := strtodPrefix(b)
	if n != len(b) || num == "nan" {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	if math.IsInf(f, 0) && !strings.HasSuffix(num, "inf") {
		return 0, false // overflow: ERANGE with HUGE_VAL
	}
	if f == 0 && hasNonzeroDigit(num) {
		return 0, false // underflow to zero
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// parseFloatLoose is strtod as zslParseRange uses it: leading white space is
// skipped, the number may end at a NUL byte, overflow gives an infinity, an
// empty string is 0. Only trailing garbage and NaN are refused.
func parseFloatLoose(b []byte) (float64, bool) {
	num, n := strtodPrefix(b)
	if n < len(b) && b[n] != 0 {
		return 0, false
	}
	if n == 0 {
		// No conversion: strtod leaves the end pointer at the start.
		if len(b) == 0 || b[0] == 0 {
			return 0, true
		}
		return 0, false
	}
	if num == "nan" {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

// Long doubles. INCRBYFLOAT and HINCRBYFLOAT compute in C's long double, which
// on x86-64 is the x87 80-bit format: a 64-bit mantissa and a 15-bit
// exponent. A big.Float with 64 bits of precision rounds exactly as it does;
// the exponent range is checked by hand.

const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384  // values >= 2^16384 overflow
	longDoubleMinExp = -16445 // smallest denormal is 2^-16445
)

// parseLongDouble is Redis's string2ld: strtold on the whole argument, no
// leading space, refusing NaN and overflow or underflow to zero. The
// result is finite or an infinity spelled out.
func parseLongDouble(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= 5*1024 || isCSpace(b[0]) {
		return nil, false
	}
	num, n := strtodPrefix(b)
	if n != len(b) || num == "nan" {
		return nil, false
	}
	f := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven)
	if strings.HasSuffix(num, "inf") {
		return f.SetInf(strings.HasPrefix(num, "-")), true
	}
	if _, _, err := f.Parse(num, 0); err != nil {
		return nil, false
	}
	if f.Sign() != 0 {
		exp := f.MantExp(nil)
		if exp > longDoubleMaxExp {
			return nil, false
		}
		if exp < longDoubleMinExp {
			return nil, false
		}
	}
	return f, true
}

// addLongDouble adds as the FPU would and reports false if the sum is NaN
// (inf + -inf) or infinite, the cases Redis refuses with "increment would
// produce NaN or Infinity".
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > longDoubleMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble is ld2string in LD_STR_HUMAN mode: "%.17Lf", then trailing
// zeros after the point removed, and "-0" written "0".
func formatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
