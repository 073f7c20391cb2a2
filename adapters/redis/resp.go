package redis

import (
	"errors"
	"strconv"
)

// errIncomplete means the buffer ends inside a reply.
var errIncomplete = errors.New("redis: incomplete RESP reply")

// maxRespDepth bounds nesting so a hostile buffer cannot exhaust the stack.
const maxRespDepth = 64

// ParseReply decodes one RESP2 or RESP3 reply from the start of b and
// returns it with the number of bytes it used. It is the inverse of
// AppendRESP3 (and of AppendRESP2 up to the kinds RESP2 lacks): the command
// table is stored in this form, and the tests and fuzz target read replies
// with it.
func ParseReply(b []byte) (Reply, int, error) { return parseReply(b, 0) }

func parseReply(b []byte, depth int) (Reply, int, error) {
	if depth > maxRespDepth {
		return Reply{}, 0, errors.New("redis: RESP nested too deeply")
	}
	line, n, err := respLine(b)
	if err != nil {
		return Reply{}, 0, err
	}
	if len(line) == 0 {
		return Reply{}, 0, errors.New("redis: empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return Reply{Kind: KindSimple, Str: body}, n, nil
	case '-':
		return Reply{Kind: KindError, Str: body}, n, nil
	case ':':
		v, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return Reply{}, 0, err
		}
		return Int(v), n, nil
	case '_':
		return Null(), n, nil
	case '#':
		switch string(body) {
		case "t":
			return Bool(true), n, nil
		case "f":
			return Bool(false), n, nil
		}
		return Reply{}, 0, errors.New("redis: bad RESP boolean")
	case ',':
		f, err := parseRespDouble(string(body))
		if err != nil {
			return Reply{}, 0, err
		}
		return Double(f), n, nil
	case '$', '=':
		size, err := strconv.Atoi(string(body))
		if err != nil || size < -1 {
			return Reply{}, 0, errors.New("redis: bad RESP length")
		}
		if size == -1 && line[0] == '$' {
			return Null(), n, nil
		}
		if size < 0 || len(b)-n < size+2 {
			return Reply{}, 0, errIncomplete
		}
		data := b[n : n+size]
		if b[n+size] != '\r' || b[n+size+1] != '\n' {
			return Reply{}, 0, errors.New("redis: bulk string without CRLF")
		}
		n += size + 2
		if line[0] == '$' {
			return Bulk(data), n, nil
		}
		if size < 4 || data[3] != ':' {
			return Reply{}, 0, errors.New("redis: bad verbatim string")
		}
		return Verbatim(string(data[:3]), string(data[4:])), n, nil
	case '*', '~', '%', '>':
		count, err := strconv.Atoi(string(body))
		if err != nil || count < -1 {
			return Reply{}, 0, errors.New("redis: bad RESP length")
		}
		if count == -1 && line[0] == '*' {
			return NullArray(), n, nil
		}
		if count < 0 {
			return Reply{}, 0, errors.New("redis: bad RESP length")
		}
		kind := map[byte]Kind{'*': KindArray, '~': KindSet, '%': KindMap, '>': KindPush}[line[0]]
		if kind == KindMap {
			count *= 2
		}
		// Every element takes at least 3 bytes: never trust count for the allocation.
		if count > (len(b)-n)/3 {
			return Reply{}, 0, errIncomplete
		}
		elems := make([]Reply, 0, count)
		for range count {
			e, m, err := parseReply(b[n:], depth+1)
			if err != nil {
				return Reply{}, 0, err
			}
			elems = append(elems, e)
			n += m
		}
		return Reply{Kind: kind, Elems: elems}, n, nil
	}
	return Reply{}, 0, errors.New("redis: unknown RESP type byte")
}

func respLine(b []byte) ([]byte, int, error) {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' {
			return b[:i], i + 2, nil
		}
	}
	return nil, 0, errIncomplete
}

func parseRespDouble(s string) (float64, error) {
	switch s {
	case "inf":
		return posInf, nil
	case "-inf":
		return negInf, nil
	}
	return strconv.ParseFloat(s, 64)
}
