package report

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration formats ns for people: three significant digits at most, in
// the largest unit that keeps the number at least 1 (1.23s, 315ms, 45.6µs,
// 800ns), so that a table of recovery times reads at a glance rather than
// as 1.234567891s. Durations of 1000 s and more are whole seconds.
func Duration(ns int64) string {
	if ns < 0 {
		return "-" + Duration(-ns)
	}
	v := roundSignificant(float64(ns), 3)
	for _, u := range []struct {
		name string
		size float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}} {
		if v >= u.size {
			return trimZeros(strconv.FormatFloat(v/u.size, 'f', decimals(v/u.size), 64)) + u.name
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "ns"
}

// D is Duration of a time.Duration.
func D(d time.Duration) string { return Duration(int64(d)) }

// roundSignificant rounds v to n significant digits.
func roundSignificant(v float64, n int) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, float64(n)-math.Ceil(math.Log10(v)))
	return math.Round(v*p) / p
}

// decimals is how many decimals show three significant digits of v.
func decimals(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	}
	return 2
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
