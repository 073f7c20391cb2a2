package respwire

import (
	"errors"
	"io"

	"github.com/tidwall/redcon"
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
