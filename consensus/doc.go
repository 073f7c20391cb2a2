// Package consensus replicates ranges of the keyspace with etcd Raft
// (go.etcd.io/raft/v3 v3.6.0, RawNode) over the storage package, on the
// kernel runtime: one driver task per node runs every replica of that node.
//
// Work in progress (issue: replicated storage): the layout of ranges is here;
// the driver, the replicated key-value state machine and the client API are
// not built yet.
package consensus
