package kernel

import "fmt"

// NodeCrash is the panic value that means "this node must die now", as a
// process exits on a failed fsync. In the simulator it crashes the node (its
// tasks end, its disk keeps what was synced) instead of failing the run; any
// other panic in a task is reported as a bug. In production the process
// exits.
type NodeCrash struct{ Reason error }

func (c NodeCrash) Error() string { return fmt.Sprintf("node crash: %v", c.Reason) }

// Crash panics with NodeCrash. Components call it when continuing could lose
// acknowledged data (an I/O error on the log, a failed sync).
func Crash(format string, args ...any) {
	panic(NodeCrash{Reason: fmt.Errorf(format, args...)})
}
