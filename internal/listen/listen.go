// Package listen words the failure to listen on an address the same way
// for every listener of `orbit serve` (RESP, PostgreSQL, HTTP, gRPC).
package listen

import (
	"errors"
	"net"
)

// Error words a listen failure on one line: "listen ADDR: REASON", with
// the reason as the system says it ("address already in use").
func Error(addr string, err error) error {
	reason := err.Error()
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		reason = op.Err.Error()
		var se interface{ Unwrap() error }
		if errors.As(op.Err, &se) && se.Unwrap() != nil {
			reason = se.Unwrap().Error() // "bind: address already in use" -> "address already in use"
		}
	}
	return errors.New("listen " + addr + ": " + reason)
}
