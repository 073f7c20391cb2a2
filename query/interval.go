package query

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// interval, as PostgreSQL keeps it: months, days and microseconds apart
// (a month is not a fixed number of days, nor a day of hours across a
// daylight change), compared and grouped as if a month were 30 days and
// a day 24 hours. Input: number-unit pairs ("1 year 2 mons", "3 days",
// "1.5 hours", "2 weeks ago"), a clock part ("04:05:06.5"), or ISO 8601
// ("P1Y2M3DT4H5M6S"); output in PostgreSQL's default style
// ("1 year 2 mons 3 days 04:05:06").

// intervalValue is an interval's value.
type intervalValue struct {
	months, days int32
	micros       int64
}

var TypeInterval = Type{OID: 1186, Name: "interval", Size: 16, Mod: -1}

func init() {
	typeNames["interval"] = TypeInterval
	typesByOID[TypeInterval.OID] = TypeInterval
}

const (
	microsPerDay   = int64(24 * time.Hour / time.Microsecond)
	daysPerMonth   = 30
	microsPerMonth = daysPerMonth * microsPerDay
)

// span is the interval as whole days (30 per month) and the microseconds
// beyond them, for comparing and grouping.
func (v intervalValue) span() (days, micros int64) {
	days = int64(v.months)*daysPerMonth + int64(v.days) + v.micros/microsPerDay
	micros = v.micros % microsPerDay
	if micros < 0 {
		days, micros = days-1, micros+microsPerDay
	}
	return days, micros
}

func compareIntervals(a, b intervalValue) int {
	ad, am := a.span()
	bd, bm := b.span()
	if ad != bd {
		return cmpOrdered(ad, bd)
	}
	return cmpOrdered(am, bm)
}

// appendIntervalKey is the interval's grouping key: equal intervals
// ('1 day' and '24 hours') get the same bytes.
func appendIntervalKey(dst []byte, v intervalValue) []byte {
	d, m := v.span()
	dst = binary.BigEndian.AppendUint64(dst, uint64(d)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, uint64(m))
}

var intervalUnits = map[string]struct {
	months int64
	micros float64 // per unit, when not months
	days   int64
}{
	"microsecond": {micros: 1}, "microseconds": {micros: 1}, "us": {micros: 1}, "usec": {micros: 1}, "usecs": {micros: 1},
	"millisecond": {micros: 1e3}, "milliseconds": {micros: 1e3}, "ms": {micros: 1e3}, "msec": {micros: 1e3}, "msecs": {micros: 1e3},
	"second": {micros: 1e6}, "seconds": {micros: 1e6}, "sec": {micros: 1e6}, "secs": {micros: 1e6}, "s": {micros: 1e6},
	"minute": {micros: 60e6}, "minutes": {micros: 60e6}, "min": {micros: 60e6}, "mins": {micros: 60e6}, "m": {micros: 60e6},
	"hour": {micros: 3600e6}, "hours": {micros: 3600e6}, "hr": {micros: 3600e6}, "hrs": {micros: 3600e6}, "h": {micros: 3600e6},
	"day": {days: 1}, "days": {days: 1}, "d": {days: 1},
	"week": {days: 7}, "weeks": {days: 7}, "w": {days: 7},
	"month": {months: 1}, "months": {months: 1}, "mon": {months: 1}, "mons": {months: 1},
	"year": {months: 12}, "years": {months: 12}, "yr": {months: 12}, "yrs": {months: 12}, "y": {months: 12},
	"decade": {months: 120}, "decades": {months: 120},
	"century": {months: 1200}, "centuries": {months: 1200},
	"millennium": {months: 12000}, "millennia": {months: 12000},
}

// parseInterval reads PostgreSQL's interval input.
func parseInterval(s string) (intervalValue, error) {
	bad := func() (intervalValue, error) { return intervalValue{}, errIntervalSyntax(s) }
	text := strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(text, "p") {
		return parseISOInterval(s, text[1:])
	}
	text = strings.TrimPrefix(text, "@")
	fields := strings.Fields(text)
	ago := len(fields) > 0 && fields[len(fields)-1] == "ago"
	if ago {
		fields = fields[:len(fields)-1]
	}
	if len(fields) == 0 {
		return bad()
	}
	var months, days int64
	var micros float64
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Contains(f, ":") {
			m, ok := parseClock(f)
			if !ok {
				return bad()
			}
			micros += m
			continue
		}
		// A number, with its unit in the same field ("3days") or the next.
		j := 0
		for j < len(f) && (f[j] == '-' || f[j] == '+' || f[j] == '.' || (f[j] >= '0' && f[j] <= '9')) {
			j++
		}
		n, err := strconv.ParseFloat(f[:j], 64)
		if err != nil {
			return bad()
		}
		unit := f[j:]
		if unit == "" {
			if i+1 == len(fields) {
				micros += n * 1e6 // a bare number is seconds
				continue
			}
			i++
			unit = fields[i]
		}
		u, ok := intervalUnits[unit]
		if !ok {
			return bad()
		}
		switch {
		case u.months != 0:
			whole, frac := math.Modf(n * float64(u.months))
			months += int64(whole)
			fd, ff := math.Modf(frac * daysPerMonth)
			days += int64(fd)
			micros += ff * float64(microsPerDay)
		case u.days != 0:
			whole, frac := math.Modf(n * float64(u.days))
			days += int64(whole)
			micros += frac * float64(microsPerDay)
		default:
			micros += n * u.micros
		}
	}
	v := intervalValue{months: int32(months), days: int32(days), micros: int64(math.Round(micros))}
	if int64(v.months) != months || int64(v.days) != days || math.Abs(micros) > math.MaxInt64/2 {
		return intervalValue{}, errorf("22015", "interval field value out of range: %q", s)
	}
	if ago {
		v = negateInterval(v)
	}
	return v, nil
}

// parseClock reads [-]hh:mm[:ss[.ffffff]] as microseconds.
func parseClock(f string) (float64, bool) {
	sign := 1.0
	if strings.HasPrefix(f, "-") {
		sign, f = -1, f[1:]
	}
	parts := strings.Split(f, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var total float64
	for i, p := range parts {
		n, err := strconv.ParseFloat(p, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		total += n * []float64{3600e6, 60e6, 1e6}[i]
	}
	return sign * total, true
}

// parseISOInterval reads ISO 8601's P[nY][nM][nW][nD][T[nH][nM][nS]].
func parseISOInterval(s, rest string) (intervalValue, error) {
	var v intervalValue
	inTime := false
	var micros float64
	for rest != "" {
		if rest[0] == 't' {
			inTime, rest = true, rest[1:]
			continue
		}
		j := 0
		for j < len(rest) && (rest[j] == '-' || rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		if j == 0 || j == len(rest) {
			return intervalValue{}, errIntervalSyntax(s)
		}
		n, err := strconv.ParseFloat(rest[:j], 64)
		if err != nil {
			return intervalValue{}, errIntervalSyntax(s)
		}
		switch unit := rest[j]; {
		case !inTime && unit == 'y':
			v.months += int32(n * 12)
		case !inTime && unit == 'm':
			v.months += int32(n)
		case !inTime && unit == 'w':
			v.days += int32(n * 7)
		case !inTime && unit == 'd':
			v.days += int32(n)
		case inTime && unit == 'h':
			micros += n * 3600e6
		case inTime && unit == 'm':
			micros += n * 60e6
		case inTime && unit == 's':
			micros += n * 1e6
		default:
			return intervalValue{}, errIntervalSyntax(s)
		}
		rest = rest[j+1:]
	}
	v.micros = int64(math.Round(micros))
	return v, nil
}

// errIntervalSyntax is PostgreSQL's refusal of an interval's text (a
// datetime format error, 22007).
func errIntervalSyntax(s string) *Error {
	return errorf("22007", "invalid input syntax for type interval: %q", s)
}

func negateInterval(v intervalValue) intervalValue {
	return intervalValue{months: -v.months, days: -v.days, micros: -v.micros}
}

// formatInterval writes v in PostgreSQL's default style.
func formatInterval(v intervalValue) []byte {
	var parts []string
	plural := func(n int64, unit string) {
		if n == 0 {
			return
		}
		s := strconv.FormatInt(n, 10) + " " + unit
		if n != 1 {
			s += "s" // "-1 days", as PostgreSQL writes it
		}
		parts = append(parts, s)
	}
	plural(int64(v.months/12), "year")
	plural(int64(v.months%12), "mon")
	plural(int64(v.days), "day")
	if v.micros != 0 || len(parts) == 0 {
		m := v.micros
		sign := ""
		if m < 0 {
			sign, m = "-", -m
		}
		h, rem := m/3600e6, m%3600e6
		clock := sign + twoDigits(h) + ":" + twoDigits(rem/60e6) + ":" + twoDigits(rem%60e6/1e6)
		if frac := rem % 1e6; frac != 0 {
			clock += strings.TrimRight("."+strconv.FormatInt(frac+1e6, 10)[1:], "0")
		}
		parts = append(parts, clock)
	}
	return []byte(strings.Join(parts, " "))
}

func twoDigits(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

func addIntervals(a, b intervalValue, sign int32) (intervalValue, error) {
	out := intervalValue{months: a.months + sign*b.months, days: a.days + sign*b.days, micros: a.micros + int64(sign)*b.micros}
	if (int64(a.months)+int64(sign)*int64(b.months)) != int64(out.months) || (int64(a.days)+int64(sign)*int64(b.days)) != int64(out.days) {
		return intervalValue{}, errorf("22008", "interval out of range")
	}
	return out, nil
}

// addToTime is t + sign × v: the months (a day past the new month's end
// becomes its last day: January 31 plus a month is February 28), then
// the days, then the time, as PostgreSQL adds them.
func addToTime(t time.Time, v intervalValue, sign int) time.Time {
	if m := sign * int(v.months); m != 0 {
		y, mon, d := t.Date()
		first := time.Date(y, mon, 1, 0, 0, 0, 0, time.UTC).AddDate(0, m, 0)
		last := first.AddDate(0, 1, -1).Day()
		h, mi, sec := t.Clock()
		t = time.Date(first.Year(), first.Month(), min(d, last), h, mi, sec, t.Nanosecond(), time.UTC)
	}
	return t.AddDate(0, 0, sign*int(v.days)).Add(time.Duration(int64(sign)*v.micros) * time.Microsecond)
}

// scaleInterval is v × f: fractions of months become days (30 each) and
// fractions of days time, as PostgreSQL's interval_mul does.
func scaleInterval(v intervalValue, f float64) (intervalValue, error) {
	months := float64(v.months) * f
	wholeMonths, fracMonths := math.Modf(months)
	days := float64(v.days)*f + fracMonths*daysPerMonth
	wholeDays, fracDays := math.Modf(days)
	micros := float64(v.micros)*f + fracDays*float64(microsPerDay)
	if math.Abs(wholeMonths) > math.MaxInt32 || math.Abs(wholeDays) > math.MaxInt32 || math.Abs(micros) > math.MaxInt64/2 || math.IsNaN(micros) {
		return intervalValue{}, errorf("22008", "interval out of range")
	}
	return intervalValue{months: int32(wholeMonths), days: int32(wholeDays), micros: int64(math.Round(micros))}, nil
}

// intervalArith analyses +, - with an interval, or a timestamp minus a
// timestamp, and × and / of an interval by a number (false: none of
// these).
func (a *analyzer) intervalArith(e *pg.A_Expr, sc *scope, op string) (expr, bool, error) {
	l, r, err := a.sides(e, sc)
	if err != nil {
		return nil, false, err
	}
	isInterval := func(x expr) bool { return x.typ().OID == TypeInterval.OID }
	isTime := func(x expr) bool { return x.typ().family() == famTime }
	unknown := func(x expr) bool { return x.typ().family() == famUnknown }
	// An untyped literal beside an interval is one; after a timestamp it
	// is an interval for +, a timestamp of the same type for - (as
	// PostgreSQL resolves them: there is no timestamp + timestamp).
	isDate := l.typ().OID == TypeDate.OID
	switch {
	case unknown(r) && (isInterval(l) || (isTime(l) && !isDate && op == "+")):
		if r, err = a.coerce(r, TypeInterval); err != nil {
			return nil, true, err
		}
	case unknown(r) && isTime(l) && !isDate && op == "-":
		if r, err = a.coerce(r, l.typ()); err != nil {
			return nil, true, err
		}
	}
	if isInterval(r) && unknown(l) {
		if l, err = a.coerce(l, TypeInterval); err != nil {
			return nil, true, err
		}
	}
	switch {
	case (op == "+" || op == "-") && isInterval(l) && isInterval(r):
		sign := int32(1)
		if op == "-" {
			sign = -1
		}
		return immutable(strict([]expr{l, r}, TypeInterval, func(v []any) (any, error) {
			return addIntervals(v[0].(intervalValue), v[1].(intervalValue), sign)
		})), true, nil
	case (op == "+" || op == "-") && isTime(l) && isInterval(r), op == "+" && isInterval(l) && isTime(r):
		t, iv := l, r
		if isInterval(l) {
			t, iv = r, l
		}
		out := t.typ()
		if out.OID == TypeDate.OID {
			out = TypeTimestamp
		}
		sign := 1
		if op == "-" {
			sign = -1
		}
		return immutable(strict([]expr{t, iv}, out, func(v []any) (any, error) {
			return addToTime(v[0].(time.Time), v[1].(intervalValue), sign), nil
		})), true, nil
	case op == "-" && isTime(l) && isTime(r) && l.typ().OID != TypeDate.OID && r.typ().OID != TypeDate.OID:
		return immutable(strict([]expr{l, r}, TypeInterval, func(v []any) (any, error) {
			d := v[0].(time.Time).Sub(v[1].(time.Time)).Microseconds()
			return intervalValue{days: int32(d / microsPerDay), micros: d % microsPerDay}, nil
		})), true, nil
	case (op == "*" || op == "/") && isInterval(l) && numericFamily(r.typ()), op == "*" && numericFamily(l.typ()) && isInterval(r):
		iv, n := l, r
		if isInterval(r) {
			iv, n = r, l
		}
		if n, err = a.coerce(n, TypeFloat8); err != nil {
			return nil, true, err
		}
		if n, err = a.cast(n, TypeFloat8); err != nil {
			return nil, true, err
		}
		return immutable(strict([]expr{iv, n}, TypeInterval, func(v []any) (any, error) {
			f := v[1].(float64)
			if op == "/" {
				if f == 0 {
					return nil, errorf("22012", "division by zero")
				}
				f = 1 / f
			}
			return scaleInterval(v[0].(intervalValue), f)
		})), true, nil
	}
	return nil, false, nil
}

// intervalBinary is the interval's binary form, as pgx writes it.
func intervalBinary(v intervalValue) pgtype.Interval {
	return pgtype.Interval{Microseconds: v.micros, Days: v.days, Months: v.months, Valid: true}
}
