package redis

import "testing"

// TestStrtodPrefix: the longest prefix C's strtod would take, exponent
// rules included (a letter without digits is not part of the number).
func TestStrtodPrefix(t *testing.T) {
	for _, tc := range []struct {
		in       string
		num      string
		consumed int
	}{
		{"1e", "1", 1},
		{"1e+", "1", 1},
		{"1.5e3x", "1.5e3", 5},
		{"2E-2", "2e-2", 4},
		{"0x1p3", "0x1p3", 5},
		{"0x1p", "0x1p0", 3},
		{"-0x1.8P1", "-0x1.8p1", 8},
		{"0x", "0", 1},
		{"x", "", 0},
	} {
		num, consumed := strtodPrefix([]byte(tc.in))
		if num != tc.num || consumed != tc.consumed {
			t.Errorf("strtodPrefix(%q) = %q, %d; want %q, %d", tc.in, num, consumed, tc.num, tc.consumed)
		}
	}
}
