package redis

// globMatch is Redis's stringmatchlen (util.c, 7.0.15), case-sensitive: the
// MATCH of SCAN and KEYS. It keeps Redis's quirks: bytes compare as C's
// signed char inside [a-z] ranges, a '[' without ']' matches up to the
// pattern's end, and '*' recursion stops after 1000 levels (the CVE-2022-36021
// fix), all so that a pattern selects exactly the keys Redis would.
func globMatch(pattern, s []byte) bool {
	skip := false
	return globMatchImpl(pattern, s, &skip, 0)
}

func globMatchImpl(pattern, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	// at reads the pattern as the NUL-terminated C string it is in Redis.
	at := func(i int) byte {
		if i < len(pattern) {
			return pattern[i]
		}
		return 0
	}
	for len(pattern) > 0 && len(s) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && at(1) == '*' {
				pattern = pattern[1:]
			}
			if len(pattern) == 1 {
				return true
			}
			for len(s) > 0 {
				if globMatchImpl(pattern[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			pattern = pattern[1:]
			not := at(0) == '^'
			if not {
				pattern = pattern[1:]
			}
			match := false
			for {
				if at(0) == '\\' && len(pattern) >= 2 {
					pattern = pattern[1:]
					if pattern[0] == s[0] {
						match = true
					}
				} else if at(0) == ']' {
					break
				} else if len(pattern) == 0 {
					// Unterminated class: step back onto the last byte so the
					// advance below consumes it, as the C code does.
					pattern = []byte{0}
					break
				} else if len(pattern) >= 3 && pattern[1] == '-' {
					start, end, c := int8(pattern[0]), int8(pattern[2]), int8(s[0])
					if start > end {
						start, end = end, start
					}
					pattern = pattern[2:]
					if c >= start && c <= end {
						match = true
					}
				} else if pattern[0] == s[0] {
					match = true
				}
				pattern = pattern[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(pattern) >= 2 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if pattern[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		pattern = pattern[1:]
		if len(s) == 0 {
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			break
		}
	}
	return len(pattern) == 0 && len(s) == 0
}
