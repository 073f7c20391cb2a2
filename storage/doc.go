// Package storage is a node's disk: Pebble opened on the runtime's vfs.FS,
// one keyspace laid out below, and the Raft log store of each range.
//
// # Key layout
//
// Everything lives in one Pebble keyspace, compared bytewise. Integers are
// big-endian so that byte order is numeric order; the layout is therefore
// order-preserving: a range's log is one contiguous span in index order, and
// user keys sort as their bytes do.
//
//	key                                  value
//	\x00 <name>                           node metadata
//	  \x00 "version"                       format version, uint64 BE (1)
//	  \x00 "cluster-id"                    uint64 BE
//	  \x00 "node-id"                       uint64 BE
//	  \x00 "cluster"                       the server's record of its cluster (opaque here)
//	  \x00 "incarnation"                   the node's incarnation, uint64 BE (its starts, counted up)
//	  \x00 "replica/" <rangeID u64 BE>     replica record: replica ID u64 BE, tombstone u64 BE
//	\x01 <rangeID u64 BE> <suffix> ...    per-range Raft state
//	  ... 'a'                              applied state: applied index u64 BE, then raftpb.ConfState
//	  ... 'h'                              raftpb.HardState
//	  ... 'l' <index u64 BE>               raftpb.Entry at index
//	  ... 'r' <key>                        range-local replicated data (client table, ...)
//	  ... 's'                              raftpb.SnapshotMetadata of the latest snapshot
//	  ... 't'                              truncated state: index u64 BE, term u64 BE
//	\x02 <user key>                        user data, the value as given
//
// Per-range state is not user data: it is never part of a user scan, and
// a range's whole state is one span ([\x01 id, \x01 id+1)) that can be
// dropped at once when a replica is removed. Range-local data lives there
// too, but it is state machine data: replicated, belonging to a range
// rather than to a user key (the table that makes a retried write apply
// once), and carried by the range's snapshots.
//
// The truncated state is the entry just before the first one kept
// (raft.Storage's "FirstIndex()-1", whose term is still needed for log
// matching). The applied state keeps the ConfState as of the applied index,
// so that a restarted node hands Raft a configuration that matches
// Config.Applied.
//
// # Writes
//
// Every write goes through a Batch, which is atomic and, with Commit(true),
// durable (pebble.Sync) when Commit returns. A LogStore stages its writes
// into a caller's Batch so that one synced write can carry the Raft state of
// many ranges (group commit); its in-memory view (first and last index,
// entry cache) changes only in the batch's post-commit hook, never for a
// write that did not happen.
//
// # Failures
//
// A failed WAL write or sync, and any other error Pebble considers fatal,
// panics with kernel.NodeCrash: the node dies, as a process does on a failed
// fsync, instead of going on with a disk it can no longer trust.
package storage
