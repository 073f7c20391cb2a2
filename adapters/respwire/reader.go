package respwire

import (
	"bytes"
	"errors"
	"io"

	"github.com/tidwall/redcon"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// requestReader reads a connection's requests whole: the guard judges
// the socket's bytes and marks where each request ends, and only whole
// requests are parsed, one at a time, by redcon's parser (redcon.Parse).
// So a connection holds one socket read and at most one unfinished
// request. (redcon's own Reader doubles its buffer whenever a read ends
// inside a request and never moves the rest back to the front: a client
// that pipelines without a pause, as redis-cli --pipe does, grew it to the
// size of everything it had sent, 200 MB for a million SETs.)
type requestReader struct {
	r   io.Reader
	g   guard
	buf []byte // one read's bytes
}

// readSize is the most one read of the socket takes.
const readSize = 16 << 10

func newRequestReader(r io.Reader) *requestReader {
	return &requestReader{r: r, buf: make([]byte, readSize)}
}

// ReadCommands returns the next whole requests, reading the socket until
// there is at least one; its error (a protocol error, or the socket's) comes
// once every request before it was returned.
func (rd *requestReader) ReadCommands() ([]redcon.Command, error) {
	g := &rd.g
	for len(g.ends) == 0 {
		if g.err != nil {
			return nil, g.err
		}
		n, err := rd.r.Read(rd.buf)
		g.judge(rd.buf[:n])
		if err != nil && g.err == nil {
			g.err = err // an unfinished request at the end is dropped
		}
	}
	// The commands keep slices of out's requests: the rest moves to a new
	// array, and this one is never written again.
	whole := g.out[:g.ends[len(g.ends)-1]]
	cmds := make([]redcon.Command, 0, len(g.ends))
	from := 0
	var bad error
	for _, end := range g.ends {
		raw := whole[from:end]
		from = end
		if raw[0] != '*' && len(bytes.Trim(raw, " \r\n")) == 0 {
			continue // an inline request of no arguments: ignored, as Redis does
		}
		cmd, err := redcon.Parse(raw)
		if err != nil {
			bad = err // what redcon refuses (unbalanced quotes): it ends the connection
			break
		}
		cmds = append(cmds, cmd)
	}
	g.out = append([]byte(nil), g.out[len(whole):]...)
	g.reqStart = max(0, g.reqStart-len(whole))
	g.ends = g.ends[:0]
	if bad != nil {
		g.out, g.hold, g.err = nil, nil, bad
	}
	return cmds, nil
}

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

// guard follows the RESP framing of a connection's bytes, so that a
// request breaking a limit fails before any of it is buffered (redcon's
// parser would grow its buffer to whatever length a header declares, wait
// for the end of a header line however long it grows, and loop over any
// count it is given), and marks where each whole request ends
// (requestReader). It judges every header itself, as Redis's
// processMultibulkBuffer does (redcon's parser is more lenient: "+1" and
// "01" are numbers to it), so that the framing it follows is the one
// redcon reads. The requests before the offending one are kept, so they
// still run, as in Redis. It also drops what Redis ignores and redcon
// would refuse: a request whose argument count is zero or negative ("*0",
// "*-10"), and line ends between requests.
type guard struct {
	err error // returned once every whole request before it was

	out []byte // bytes judged, not yet parsed
	// ends are where in out each whole request judged ends.
	ends []int
	hold []byte // an argument count's header, kept back until its end
	// reqStart is where in out the request being judged began: a request
	// that breaks a limit is dropped whole.
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

// endRequest marks the end of a whole request.
func (g *guard) endRequest() {
	g.state = gStart
	g.ends = append(g.ends, len(g.out))
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
			g.out = g.out[:len(g.out)-1] // between requests: ignored, as Redis does
		default:
			g.state, g.line = gInline, 1
		}
	case gInline:
		if c == '\n' {
			g.endRequest()
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
				g.endRequest()
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
