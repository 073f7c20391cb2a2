package query

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
)

// castValue converts v (not nil) of type from to type to, as an explicit
// CAST does: a varchar(n) truncates, a char(n) pads.
func castValue(v any, from, to Type) (any, error) {
	return convert(v, from, to, false)
}

// assignValue converts v for storing in a column of type to: as a cast,
// but a string too long for a varchar(n) or char(n) is an error.
func assignValue(v any, from, to Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	return convert(v, from, to, true)
}

func convert(v any, from, to Type, assign bool) (any, error) {
	ff, tf := from.family(), to.family()
	if tf == famString {
		var s string
		switch ff {
		case famString, famUnknown:
			s = v.(string)
		case famBool:
			s = "false"
			if v.(bool) {
				s = "true"
			}
		default:
			s = string(formatText(from, v))
		}
		return fitString(s, to, assign)
	}
	if ff == famString || ff == famUnknown {
		x, err := parseText(to, v.(string))
		if err != nil || tf != famNumeric {
			return x, err
		}
		return fitNumeric(x.(*apd.Decimal), to)
	}
	switch tf {
	case famInt:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case float64:
			if math.IsNaN(x) || x >= 9.223372036854775807e18 || x < -9.223372036854775808e18 {
				return nil, errOutOfRange(to)
			}
			n = int64(math.RoundToEven(x))
		case *apd.Decimal:
			var r apd.Decimal
			if _, err := numericCtx.RoundToIntegralValue(&r, x); err != nil {
				return nil, errOutOfRange(to)
			}
			var err error
			if n, err = r.Int64(); err != nil {
				return nil, errOutOfRange(to)
			}
		case bool:
			if to.OID != TypeInt4.OID {
				return nil, errCannotCast(from, to)
			}
			if x {
				n = 1
			}
		default:
			return nil, errCannotCast(from, to)
		}
		if lo, hi := intRange(to); n < lo || n > hi {
			return nil, errOutOfRange(to)
		}
		return n, nil
	case famFloat:
		var f float64
		switch x := v.(type) {
		case int64:
			f = float64(x)
		case float64:
			f = x
		case *apd.Decimal:
			var err error
			if f, err = x.Float64(); err != nil {
				return nil, errOutOfRange(to)
			}
		default:
			return nil, errCannotCast(from, to)
		}
		if to.OID == TypeFloat4.OID {
			f = float64(float32(f))
		}
		return f, nil
	case famNumeric:
		switch x := v.(type) {
		case int64:
			return fitNumeric(apd.New(x, 0), to)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, errorf("0A000", "numeric NaN and infinity are not supported")
			}
			d := new(apd.Decimal)
			if _, err := d.SetFloat64(x); err != nil {
				return nil, errOutOfRange(to)
			}
			return fitNumeric(d, to)
		case *apd.Decimal:
			return fitNumeric(x, to)
		}
	case famBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if from.OID == TypeInt4.OID {
				return x != 0, nil
			}
		}
	case famTime:
		if x, ok := v.(time.Time); ok {
			if to.OID == TypeDate.OID {
				return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC), nil
			}
			return x, nil
		}
	case famBytes:
		if x, ok := v.([]byte); ok {
			return x, nil
		}
	case famUUID:
		if x, ok := v.(uuidValue); ok {
			return x, nil
		}
	case famJSON:
		if x, ok := v.(jsonText); ok {
			return parseJSON(to, string(x)) // json <-> jsonb
		}
	case famInterval:
		if x, ok := v.(intervalValue); ok {
			return x, nil
		}
	case famTimeOfDay:
		switch x := v.(type) {
		case timeOfDay:
			return x, nil
		case time.Time:
			if from.OID != TypeDate.OID {
				return timeOfDayOf(x), nil
			}
		}
	}
	return nil, errCannotCast(from, to)
}

// fitString applies a varchar(n)'s or char(n)'s length: a cast truncates
// (and pads a char); an assignment refuses a longer value unless what is
// beyond the length is spaces, as PostgreSQL does.
func fitString(s string, to Type, assign bool) (any, error) {
	if to.Mod < 0 || (to.OID != TypeVarchar.OID && to.OID != TypeBpchar.OID) {
		return s, nil
	}
	n := int(to.Mod)
	if utf8.RuneCountInString(s) > n {
		cut := s
		for i := range s {
			if utf8.RuneCountInString(s[:i]) == n {
				cut = s[:i]
				break
			}
		}
		if assign && strings.TrimRight(s[len(cut):], " ") != "" {
			return nil, errorf("22001", "value too long for type %s", to)
		}
		s = cut
	}
	if to.OID == TypeBpchar.OID {
		if pad := n - utf8.RuneCountInString(s); pad > 0 {
			s += strings.Repeat(" ", pad)
		}
	}
	return s, nil
}

func errCannotCast(from, to Type) *Error {
	return errorf("42846", "cannot cast type %s to %s", from.shortName(), to.shortName())
}

// implicitCast reports whether PostgreSQL would convert from to to
// without being asked (in an assignment or to apply an operator).
func implicitCast(from, to Type) bool {
	ff, tf := from.family(), to.family()
	switch {
	case from.OID == to.OID, ff == famUnknown:
		return true
	case tf == famString && ff == famString:
		return true
	case ff == famInt && (tf == famInt || tf == famFloat || tf == famNumeric):
		return true
	case ff == famNumeric && (tf == famFloat || tf == famInt):
		return true
	case ff == famFloat && (tf == famFloat || tf == famInt || tf == famNumeric):
		return true
	case ff == famTime && tf == famTime:
		return true
	}
	return false
}

// fitNumeric rounds d to a numeric(p, s)'s scale and refuses it if its
// integer part needs more than p - s digits, as PostgreSQL does.
func fitNumeric(d *apd.Decimal, to Type) (any, error) {
	if d.IsZero() && d.Negative {
		d = new(apd.Decimal).Set(d)
		d.Negative = false // numeric has no negative zero
	}
	if to.Mod < 0 {
		return d, nil
	}
	precision, scale := int64(to.Mod>>16), int64(to.Mod&0xFFFF)
	r := new(apd.Decimal)
	if _, err := numericCtx.Quantize(r, d, int32(-scale)); err != nil {
		return nil, errorf("22003", "numeric field overflow")
	}
	if r.IsZero() {
		r.Negative = false
	}
	if !r.IsZero() && r.NumDigits()+int64(r.Exponent) > precision-scale {
		e := errorf("22003", "numeric field overflow")
		e.Detail = fmt.Sprintf("A field with precision %d, scale %d must round to an absolute value less than 10^%d.", precision, scale, precision-scale)
		return nil, e
	}
	return r, nil
}
