// Package consensus will hold multi-group Raft on go.etcd.io/raft/v3's
// RawNode and the replicated state machines (issue: replicated storage).
package consensus
