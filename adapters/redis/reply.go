package redis

import (
	"math"
	"strconv"
)

// Kind is the RESP type of a Reply. RESP2 has only the first seven; the
// encoders map the RESP3-only kinds onto RESP2 the way Redis 7 does.
type Kind uint8

const (
	KindSimple    Kind = iota + 1 // +OK
	KindError                     // -ERR ...
	KindInt                       // :1
	KindBulk                      // $3 foo
	KindNull                      // a missing value: $-1 in RESP2, _ in RESP3
	KindArray                     // *n
	KindNullArray                 // *-1 in RESP2, _ in RESP3
	KindDouble                    // ,1.5 in RESP3; a bulk string in RESP2
	KindMap                       // %n in RESP3; a flat array of 2n in RESP2
	KindSet                       // ~n in RESP3; an array in RESP2
	KindBool                      // #t in RESP3; :1 or :0 in RESP2
	KindVerbatim                  // =n txt:... in RESP3; a bulk string in RESP2
	KindPush                      // >n in RESP3; an array in RESP2
	// KindLocked is the state machine's answer to a command that names a
	// key a cross-range transaction holds (Locked, locks.go); the session
	// waits or resolves, and never sends it to a client.
	KindLocked
)

// Reply is one command's answer, built without knowing the protocol version;
// AppendRESP2 and AppendRESP3 encode it. The zero Reply is invalid.
type Reply struct {
	Kind Kind
	// Str is the text of Simple, Error, Bulk and Verbatim replies (for an
	// Error, without the leading '-').
	Str []byte
	// Int is the value of Int and Bool (0 or 1) replies.
	Int int64
	// Float is the value of a Double reply.
	Float float64
	// HumanDouble marks a Double that Redis replies with
	// addReplyHumanLongDouble (GEOPOS, GEOSEARCH WITHCOORD): "%.17Lf"
	// without trailing zeros, not addReplyDouble's "%.17g".
	HumanDouble bool
	// Elems are the elements of Array, Set and Push replies; for a Map, keys
	// and values alternate (len(Elems) is even).
	Elems []Reply
	// Format is a Verbatim reply's three-letter format ("txt", "mkd").
	Format string
	// FlatInRESP2 marks an array of two-element arrays that RESP2 flattens
	// into one array, as Redis 7 replies to ZRANGE WITHSCORES, ZPOPMIN with
	// a count or HRANDFIELD WITHVALUES: nested pairs in RESP3, a flat list in
	// RESP2.
	FlatInRESP2 bool
	// PairsInRESP2 marks a map that RESP2 sends as an array of [key,
	// value] arrays, as Redis 7 replies to XREAD and XREADGROUP.
	PairsInRESP2 bool
	// Events are the keyspace events of the command this replies to, when
	// its sender asked for them (WithNotify); the session publishes them
	// and never sends them to its client.
	Events []Event
	// Err, when non-nil, is the internal failure behind an Error reply: a
	// corrupt record or a storage error. It is never sent to the client; the
	// caller logs it and must discard the Store's writes of this command.
	Err error
}

// Reply constructors, named after what Redis's networking.c calls them.

func SimpleString(s string) Reply { return Reply{Kind: KindSimple, Str: []byte(s)} }
func OK() Reply                   { return SimpleString("OK") }
func Error(msg string) Reply      { return Reply{Kind: KindError, Str: []byte(msg)} }
func Int(n int64) Reply           { return Reply{Kind: KindInt, Int: n} }
func Bulk(b []byte) Reply         { return Reply{Kind: KindBulk, Str: b} }
func BulkString(s string) Reply   { return Reply{Kind: KindBulk, Str: []byte(s)} }
func Null() Reply                 { return Reply{Kind: KindNull} }
func NullArray() Reply            { return Reply{Kind: KindNullArray} }
func Array(elems ...Reply) Reply  { return Reply{Kind: KindArray, Elems: nonNil(elems)} }
func Double(f float64) Reply      { return Reply{Kind: KindDouble, Float: f} }
func Set(elems ...Reply) Reply    { return Reply{Kind: KindSet, Elems: nonNil(elems)} }
func Push(elems ...Reply) Reply   { return Reply{Kind: KindPush, Elems: nonNil(elems)} }

// Map builds a map reply from alternating keys and values.
func Map(kvs ...Reply) Reply { return Reply{Kind: KindMap, Elems: nonNil(kvs)} }

func Bool(b bool) Reply {
	if b {
		return Reply{Kind: KindBool, Int: 1}
	}
	return Reply{Kind: KindBool}
}

// Verbatim is a RESP3 verbatim string; format is three letters ("txt").
func Verbatim(format, text string) Reply {
	return Reply{Kind: KindVerbatim, Format: format, Str: []byte(text)}
}

// pairs is an array of two-element arrays that RESP2 flattens.
func pairs(ps []Reply) Reply { return Reply{Kind: KindArray, Elems: nonNil(ps), FlatInRESP2: true} }

// bulks turns byte strings into an array of bulk replies.
func bulks(items [][]byte) Reply {
	r := make([]Reply, len(items))
	for i, it := range items {
		r[i] = Bulk(it)
	}
	return Array(r...)
}

func nonNil(r []Reply) []Reply {
	if r == nil {
		return []Reply{}
	}
	return r
}

// IsError reports whether r is an error reply.
func (r Reply) IsError() bool { return r.Kind == KindError }

// String is the reply in RESP2, for tests and logs.
func (r Reply) String() string { return string(AppendRESP2(nil, r)) }

// formatDouble renders a double as Redis 7.0's addReplyDouble does
// ("%.17g", with inf and -inf spelled out).
func formatDouble(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// doubleText is a Double reply's text.
func (r Reply) doubleText() string {
	if r.HumanDouble {
		return humanDouble(r.Float)
	}
	return formatDouble(r.Float)
}

// AppendRESP2 appends r encoded in RESP2 to dst. RESP3-only kinds degrade as
// Redis 7 degrades them: doubles and verbatim strings become bulk strings,
// maps flat arrays, sets and pushes arrays, booleans integers.
func AppendRESP2(dst []byte, r Reply) []byte {
	switch r.Kind {
	case KindSimple:
		return appendLine(append(dst, '+'), r.Str)
	case KindError:
		return appendLine(append(dst, '-'), r.Str)
	case KindInt, KindBool:
		return appendInt(append(dst, ':'), r.Int)
	case KindBulk, KindVerbatim:
		return appendBulk(dst, r.Str)
	case KindNull:
		return append(dst, "$-1\r\n"...)
	case KindNullArray:
		return append(dst, "*-1\r\n"...)
	case KindDouble:
		return appendBulk(dst, []byte(r.doubleText()))
	case KindArray, KindSet, KindMap, KindPush:
		if r.PairsInRESP2 {
			dst = appendInt(append(dst, '*'), int64(len(r.Elems)/2))
			for i := 0; i+1 < len(r.Elems); i += 2 {
				dst = append(dst, "*2\r\n"...)
				dst = AppendRESP2(AppendRESP2(dst, r.Elems[i]), r.Elems[i+1])
			}
			return dst
		}
		if r.FlatInRESP2 {
			dst = appendInt(append(dst, '*'), int64(2*len(r.Elems)))
			for _, pair := range r.Elems {
				for _, e := range pair.Elems {
					dst = AppendRESP2(dst, e)
				}
			}
			return dst
		}
		dst = appendInt(append(dst, '*'), int64(len(r.Elems)))
		for _, e := range r.Elems {
			dst = AppendRESP2(dst, e)
		}
		return dst
	}
	return appendLine(dst, []byte("-ERR invalid reply"))
}

// AppendRESP3 appends r encoded in RESP3 to dst.
func AppendRESP3(dst []byte, r Reply) []byte {
	switch r.Kind {
	case KindSimple:
		return appendLine(append(dst, '+'), r.Str)
	case KindError:
		return appendLine(append(dst, '-'), r.Str)
	case KindInt:
		return appendInt(append(dst, ':'), r.Int)
	case KindBool:
		if r.Int != 0 {
			return append(dst, "#t\r\n"...)
		}
		return append(dst, "#f\r\n"...)
	case KindBulk:
		return appendBulk(dst, r.Str)
	case KindVerbatim:
		f := r.Format
		if len(f) != 3 {
			f = "txt"
		}
		dst = appendInt(append(dst, '='), int64(len(r.Str)+4))
		dst = append(dst, f...)
		dst = append(dst, ':')
		dst = append(dst, r.Str...)
		return append(dst, '\r', '\n')
	case KindNull, KindNullArray:
		return append(dst, "_\r\n"...)
	case KindDouble:
		return appendLine(append(dst, ','), []byte(r.doubleText()))
	case KindArray, KindSet, KindPush:
		lead := byte('*')
		if r.Kind == KindSet {
			lead = '~'
		} else if r.Kind == KindPush {
			lead = '>'
		}
		dst = appendInt(append(dst, lead), int64(len(r.Elems)))
		for _, e := range r.Elems {
			dst = AppendRESP3(dst, e)
		}
		return dst
	case KindMap:
		dst = appendInt(append(dst, '%'), int64(len(r.Elems)/2))
		for _, e := range r.Elems {
			dst = AppendRESP3(dst, e)
		}
		return dst
	}
	return appendLine(dst, []byte("-ERR invalid reply"))
}

func appendInt(dst []byte, n int64) []byte {
	return append(strconv.AppendInt(dst, n, 10), '\r', '\n')
}

func appendBulk(dst, b []byte) []byte {
	dst = appendInt(append(dst, '$'), int64(len(b)))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// appendLine appends a simple-string body; CR and LF would break the framing,
// so they become spaces, as Redis's addReplyErrorLength does for errors.
func appendLine(dst, s []byte) []byte {
	for _, c := range s {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// wellFormed reports whether r can be encoded: a known kind, maps with an
// even number of elements, all the way down. The fuzz target checks it.
func wellFormed(r Reply) bool {
	switch r.Kind {
	case KindSimple, KindError, KindInt, KindBulk, KindNull, KindNullArray,
		KindDouble, KindBool, KindVerbatim:
		return true
	case KindMap:
		if len(r.Elems)%2 != 0 {
			return false
		}
	case KindArray, KindSet, KindPush:
		if r.PairsInRESP2 {
			return false
		}
	default:
		return false
	}
	for _, e := range r.Elems {
		if !wellFormed(e) {
			return false
		}
		if r.FlatInRESP2 && (e.Kind != KindArray || len(e.Elems) != 2 || e.FlatInRESP2) {
			return false
		}
	}
	return true
}

// WellFormed reports whether r and every nested reply has a known kind and
// every map an even number of elements.
func WellFormed(r Reply) bool { return wellFormed(r) }
