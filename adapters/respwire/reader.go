package respwire

import (
	"errors"
	"io"

	"github.com/tidwall/redcon"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// newRequestReader is how every connection reads requests: the guard's
// limits first, then redcon's parser.
func newRequestReader(r io.Reader) *redcon.Reader { return redcon.NewReader(&guard{r: r}) }

// ReadRequests reads every request in r through a connection's reader, up
// to max requests, and returns their arguments. Its error is what the
// connection would have answered (a protocol error) or nil at the end of
// the input. It exists for fuzzing and tests: it is the production path
// without the socket.
func ReadRequests(r io.Reader, max int) ([][][]byte, error) {
	rd := newRequestReader(r)
	var out [][][]byte
	for len(out) < max {
		cmds, err := rd.ReadCommands()
		for _, cmd := range cmds {
			out = append(out, cmd.Args)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// protoError is a request that breaks a limit, worded as Redis words it.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "Protocol error: " + e.msg }

// guard sits between the socket and redcon's reader and follows the RESP
// framing of the bytes it passes, so that a request breaking a limit fails
// before any of it is buffered: redcon would grow its buffer to whatever
// length a header declares, wait for the end of a header line however long
// it grows, and loop over any count it is given. It judges every header
// itself, as Redis's processMultibulkBuffer does (redcon's parser is more
// lenient: "+1" and "01" are numbers to it), so that the framing it follows
// is the one redcon reads. Bytes before the offending header are passed on
// first, so the commands before it still run, as in Redis. It also drops
// what Redis ignores and redcon would refuse: a request whose argument
// count is zero or negative ("*0", "*-10").
type guard struct {
	r   io.Reader
	err error // returned once out is drained

	in   []byte // a read's bytes
	out  []byte // bytes judged, not yet handed to redcon
	hold []byte // an argument count's header, kept back until its end
	// reqStart is where in out the request being judged began (0 if it
	// began before out): a request that breaks a limit is not passed on at
	// all, since redcon drops every command of a read that ends in one it
	// refuses.
	reqStart int

	state     int
	num       int64 // the number being read in a header
	neg, any  bool  // a '-' began it; a digit was seen
	bad       bool  // it is not a number Redis's string2ll reads
	lead0     bool  // its first digit was a 0 (string2ll refuses "01", "-0")
	remaining int64 // arguments left in the request
	skip      int64 // bulk bytes (and CRLF) left
	line      int   // bytes of the inline request or header line so far
	countEnd  bool  // in gHeaderEnd: the header was an argument count
}

const (
	gStart     = iota // at a request's first byte
	gCount            // in "*<count>\r" (held back in hold)
	gBulkStart        // expecting '$'
	gBulkLen          // in "$<len>\r"
	gHeaderEnd        // the byte after a header's '\r' (Redis skips it)
	gBulk             // in a bulk's bytes
	gInline           // in an inline request
)

func (g *guard) Read(p []byte) (int, error) {
	for len(g.out) == 0 && g.err == nil {
		if cap(g.in) < len(p) {
			g.in = make([]byte, len(p))
		}
		n, err := g.r.Read(g.in[:len(p)])
		g.judge(g.in[:n])
		if err != nil && g.err == nil {
			g.release() // an unfinished header: redcon sees the input end in it
			g.err = err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	g.reqStart = max(0, g.reqStart-n)
	if len(g.out) > 0 {
		return n, nil
	}
	g.out = g.out[:0:0]
	if n > 0 {
		return n, nil
	}
	return 0, g.err
}

// judge follows b's framing into out (and hold), stopping at a limit.
func (g *guard) judge(b []byte) {
	for i := 0; i < len(b) && g.err == nil; i++ {
		if g.state == gBulk && g.skip > 1 {
			// Pass a bulk's bytes on without looking at them.
			k := min(g.skip-1, int64(len(b)-i))
			g.out = append(g.out, b[i:i+int(k)]...)
			g.skip -= k
			i += int(k) - 1
			continue
		}
		if err := g.step(b[i]); err != nil {
			g.err = err
			g.out = g.out[:min(g.reqStart, len(g.out))]
		}
	}
}

// release passes the held header on.
func (g *guard) release() {
	g.out = append(g.out, g.hold...)
	g.hold = g.hold[:0]
}

func (g *guard) startHeader(state int) {
	g.state, g.num, g.neg, g.any, g.bad, g.lead0, g.line = state, 0, false, false, false, false, 1
}

func (g *guard) step(c byte) error {
	if g.state == gCount || (g.state == gHeaderEnd && g.countEnd) {
		g.hold = append(g.hold, c)
	} else {
		g.out = append(g.out, c)
	}
	switch g.state {
	case gStart:
		g.reqStart = len(g.out) - 1
		switch c {
		case '*':
			g.out = g.out[:len(g.out)-1]
			g.hold = append(g.hold, c)
			g.startHeader(gCount)
		case '\r', '\n':
		default:
			g.state, g.line = gInline, 1
		}
	case gInline:
		if c == '\n' {
			g.state = gStart
			return nil
		}
		g.line++
		if g.line > MaxInline {
			return &protoError{"too big inline request"}
		}
	case gCount, gBulkLen:
		return g.header(c)
	case gHeaderEnd:
		switch {
		case !g.countEnd:
			g.state = gBulk
		case g.remaining == 0:
			g.hold, g.state = g.hold[:0], gStart // ignored: redcon never sees it
		default:
			g.release()
			g.state = gBulkStart
		}
	case gBulkStart:
		if c != '$' {
			return &protoError{"expected '$', got '" + string(c) + "'"}
		}
		g.startHeader(gBulkLen)
	case gBulk:
		g.skip--
		if g.skip == 0 {
			g.remaining--
			g.state = gBulkStart
			if g.remaining == 0 {
				g.state = gStart
			}
		}
	}
	return nil
}

// header follows "*<count>\r\n" or "$<len>\r\n" up to its '\r', judging
// the number as string2ll does, then takes the byte after the '\r'.
func (g *guard) header(c byte) error {
	count := g.state == gCount
	switch {
	case c == '\r':
		return g.endHeader(count)
	case c >= '0' && c <= '9' && !g.bad:
		if g.lead0 {
			g.bad = true
			break
		}
		g.lead0 = !g.any && c == '0'
		g.num, g.any = g.num*10+int64(c-'0'), true
		if count && g.num > MaxArgs {
			return &protoError{"invalid multibulk length"}
		}
		if !count && g.num > redis.MaxBulkLen {
			return &protoError{"invalid bulk length"}
		}
	case c == '-' && !g.any && !g.neg:
		g.neg = true
	default:
		g.bad = true
	}
	g.line++
	if g.line > MaxInline {
		// Redis gives up on a header line this long without a '\r'.
		if count {
			return &protoError{"too big mbulk count string"}
		}
		return &protoError{"too big bulk count string"}
	}
	return nil
}

// endHeader judges a header at its '\r' and moves on past the next byte.
func (g *guard) endHeader(count bool) error {
	valid := g.any && !g.bad && !(g.neg && g.lead0)
	if count {
		if !valid {
			return &protoError{"invalid multibulk length"}
		}
		if g.neg || g.num == 0 {
			g.remaining = 0 // Redis ignores a request of no arguments
		} else {
			g.remaining = g.num
		}
	} else {
		if !valid || g.neg {
			return &protoError{"invalid bulk length"}
		}
		g.skip = g.num + 2
	}
	g.countEnd = count
	g.state = gHeaderEnd
	return nil
}
