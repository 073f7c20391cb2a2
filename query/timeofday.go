package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// time (without time zone): a time of day, kept as microseconds since
// midnight (timeOfDay), from 00:00:00 to 24:00:00 as PostgreSQL allows.

// timeOfDay is a time value.
type timeOfDay int64

var TypeTime = Type{OID: 1083, Name: "time without time zone", Size: 8, Mod: -1}

func init() {
	typeNames["time"] = TypeTime
	typeNames["time without time zone"] = TypeTime
	typesByOID[TypeTime.OID] = TypeTime
}

const microsPerDayTime = 24 * 3600 * 1_000_000

// parseTimeOfDay reads HH:MM[:SS[.ffffff]] (or a timestamp's time part).
func parseTimeOfDay(s string) (timeOfDay, error) {
	bad := errorf("22007", "invalid input syntax for type time: %q", s)
	text := strings.TrimSpace(s)
	if i := strings.LastIndexAny(text, " T"); i >= 0 {
		text = text[i+1:] // a date before it: its time of day
	}
	parts := strings.Split(text, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	var sec float64
	var err3 error
	if len(parts) == 3 {
		sec, err3 = strconv.ParseFloat(parts[2], 64)
	}
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, bad
	}
	if h < 0 || h > 24 || m < 0 || m > 59 || sec < 0 || sec >= 61 {
		return 0, errorf("22008", "date/time field value out of range: %q", s)
	}
	v := int64(h)*3600_000_000 + int64(m)*60_000_000 + int64(sec*1e6+0.5)
	if v > microsPerDayTime {
		return 0, errorf("22008", "date/time field value out of range: %q", s)
	}
	return timeOfDay(v), nil
}

func formatTimeOfDay(v timeOfDay) []byte {
	m := int64(v)
	out := twoDigits(m/3600_000_000) + ":" + twoDigits(m/60_000_000%60) + ":" + twoDigits(m/1_000_000%60)
	if frac := m % 1_000_000; frac != 0 {
		out += strings.TrimRight("."+strconv.FormatInt(frac+1_000_000, 10)[1:], "0")
	}
	return []byte(out)
}

// timeOfDayOf is a timestamp's time of day.
func timeOfDayOf(t time.Time) timeOfDay {
	h, m, s := t.Clock()
	return timeOfDay(int64(h)*3600_000_000 + int64(m)*60_000_000 + int64(s)*1_000_000 + int64(t.Nanosecond()/1000))
}

func timeOfDayBinary(v timeOfDay) pgtype.Time {
	return pgtype.Time{Microseconds: int64(v), Valid: true}
}
