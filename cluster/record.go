package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// NodeEntry is one node as the directory knows it.
type NodeEntry struct {
	Addr string `json:"addr"` // its gRPC address, as it advertises it
	// Leaving: a removal is under way (Manager.Remove): nothing new is
	// placed on the node, and rebalancers move its replicas away.
	Leaving bool   `json:"leaving,omitempty"`
	Removed bool   `json:"removed,omitempty"`
	Version uint64 `json:"version"`
}

// Record is what a node keeps on disk about its cluster (JSON in storage's
// cluster record). The layout (ranges on hash-slot splits, replicas) is
// fixed at the cluster's first start.
type Record struct {
	ClusterID uint64 `json:"cluster_id"`
	Ranges    int    `json:"ranges"`
	Replicas  int    `json:"replicas"`
	// Joined: this node joined a running cluster. It never bootstraps
	// replicas of its own; Raft membership changes give it its replicas.
	Joined bool `json:"joined,omitempty"`
	// Initial are the nodes the cluster started with: the layout's
	// placement of first replicas (consensus.NewLayout), fixed for good.
	Initial []kernel.NodeID             `json:"initial"`
	Nodes   map[kernel.NodeID]NodeEntry `json:"nodes"`
	// HistoryWindow is how long old versions of the transactional
	// keyspace stay readable (txn.Options.GCTTL): the reach of backups'
	// --as-of (point-in-time restore). Fixed when the cluster starts and
	// the same on every node (a leaseholder with a longer window would
	// serve reads at times another one collected). 0: the default.
	HistoryWindow time.Duration `json:"history_window,omitempty"`
}

// LoadRecord reads the cluster record from eng (found false: there is
// none, a fresh data directory).
func LoadRecord(eng *storage.Engine) (rec Record, found bool, err error) {
	b, err := eng.ClusterRecord()
	if errors.Is(err, storage.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, false, fmt.Errorf("the cluster record in the data directory: %w", err)
	}
	return rec, true, nil
}

// SaveRecord writes rec to eng, synced.
func SaveRecord(eng *storage.Engine, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	batch := eng.NewBatch()
	batch.SetClusterRecord(b)
	return batch.Commit(true)
}
