// Package actor hosts virtual actors (issue 16; docs/actors.md is the
// design and its status): addressable objects, named by a type and a key,
// that the cluster activates on demand, one live instance each, reachable
// from any node.
//
// Safety does not rest on clocks or leases. An actor's directory entry, its
// state and its callers' last requests are records in the transactional
// keyspace (txn), next to each other. Every activation takes the directory
// entry with a new epoch, and every turn (one call) is a serializable
// transaction that reads the entry and commits only if the epoch is still
// its own: an activation deposed by a partition or a pause can never commit
// state, whatever it believes. The entry's lease decides only when another
// node may take over (liveness).
//
// Exactly-once state changes: each caller numbers its calls; the turn that
// changes state records the caller's number and reply in the same
// transaction, so a retry gets the recorded reply and a late duplicate of
// an older call is refused (ErrStaleRequest).
//
// Host runs activations on a node; Client routes calls to them. Both are
// under the runtime contract (DESIGN.md).
package actor
