package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/grpcnet"
	"github.com/orbitkernel/orbit/storage"
)

// The node directory: what a node knows of its cluster's nodes, kept on
// its disk (storage's cluster record) and spread by gossip.
//
// A cluster starts from --peers. Nodes that join later (orbit serve --join)
// and nodes that are removed (orbit node remove) change it: the node that
// handles the change records it, and every node sends its whole directory
// to every other node every gossipPeriod (and at once after a change), so
// that all of them learn a new node's address, and that a node is removed.
// Entries merge by version, the newest wins (last writer wins: a change is
// made by one node at a time, through an operator's command, and versions
// come from the wall clock of the node that made the change, kept above the
// entry's previous version).
//
// Addresses given on this node's command line (--peers) win over gossiped
// ones: an operator (or the Jepsen harness, which routes every link through
// a fault proxy) decides how this node reaches the nodes it names.
//
// The directory says who the nodes are and how to reach them. Which node
// holds which range is Raft's business (each range's configuration), never
// the directory's.

const (
	directoryPort = "node-directory"
	gossipPeriod  = 2 * time.Second
)

// nodeEntry is one node as the directory knows it.
type nodeEntry struct {
	Addr    string `json:"addr"` // its gRPC address, as it advertises it
	Removed bool   `json:"removed,omitempty"`
	Version uint64 `json:"version"`
}

// clusterRecord is what a node keeps on disk about its cluster (JSON in
// storage's cluster record). The layout (ranges on hash-slot splits,
// replicas) is fixed at the cluster's first start.
type clusterRecord struct {
	ClusterID uint64 `json:"cluster_id"`
	Ranges    int    `json:"ranges"`
	Replicas  int    `json:"replicas"`
	// Joined: this node joined a running cluster. It never bootstraps
	// replicas of its own; Raft membership changes give it its replicas.
	Joined bool `json:"joined,omitempty"`
	// Initial are the nodes the cluster started with: the layout's
	// placement of first replicas (consensus.NewLayout), fixed for good.
	Initial []kernel.NodeID             `json:"initial"`
	Nodes   map[kernel.NodeID]nodeEntry `json:"nodes"`
}

func loadRecord(eng *storage.Engine) (clusterRecord, bool, error) {
	b, err := eng.ClusterRecord()
	if errors.Is(err, storage.ErrNotFound) {
		return clusterRecord{}, false, nil
	}
	if err != nil {
		return clusterRecord{}, false, err
	}
	var rec clusterRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return clusterRecord{}, false, fmt.Errorf("the cluster record in the data directory: %w", err)
	}
	return rec, true, nil
}

func saveRecord(eng *storage.Engine, rec clusterRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	batch := eng.NewBatch()
	batch.SetClusterRecord(b)
	return batch.Commit(true)
}

// directory is a running node's view of its cluster's nodes.
type directory struct {
	self   kernel.NodeID
	eng    *storage.Engine
	tr     *grpcnet.Transport // nil for a single node without a network
	logger *slog.Logger
	// pinned addresses came from this node's --peers: they win.
	pinned map[kernel.NodeID]string

	mu      sync.Mutex
	rec     clusterRecord
	changed chan struct{} // signalled after a change, to gossip at once
}

func newDirectory(self kernel.NodeID, eng *storage.Engine, rec clusterRecord, pinned map[kernel.NodeID]string, tr *grpcnet.Transport, logger *slog.Logger) *directory {
	return &directory{self: self, eng: eng, rec: rec, pinned: pinned, tr: tr, logger: logger, changed: make(chan struct{}, 1)}
}

// addrOf is the address this node uses to reach n.
func (d *directory) addrOf(n kernel.NodeID, e nodeEntry) string {
	if a, ok := d.pinned[n]; ok {
		return a
	}
	return e.Addr
}

// connect tells the transport how to reach every node it knows, removed
// ones included: a removed node that has not heard of its removal is told
// to destroy its replicas when it talks to a range (consensus's replica
// GC), which needs an address to answer.
func (d *directory) connect() {
	if d.tr == nil {
		return
	}
	d.mu.Lock()
	nodes := maps.Clone(d.rec.Nodes)
	d.mu.Unlock()
	for n, e := range nodes {
		if n == d.self {
			continue
		}
		if err := d.tr.SetPeer(n, d.addrOf(n, e)); err != nil && !errors.Is(err, grpcnet.ErrClosed) {
			d.logger.Warn("node directory: cannot reach node", "node", n, "addr", e.Addr, "err", err)
		}
	}
}

// record returns a copy of the cluster record.
func (d *directory) record() clusterRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.rec
	rec.Nodes = maps.Clone(d.rec.Nodes)
	return rec
}

// active lists the nodes not removed, sorted (this one included, unless it
// was removed).
func (d *directory) active() []kernel.NodeID {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []kernel.NodeID
	for n, e := range d.rec.Nodes {
		if !e.Removed {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// entry returns what the directory knows of n.
func (d *directory) entry(n kernel.NodeID) (nodeEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.rec.Nodes[n]
	return e, ok
}

// set records a change this node makes (a join, a removal): its version
// is above the entry's current one.
func (d *directory) set(n kernel.NodeID, addr string, removed bool) error {
	d.mu.Lock()
	cur := d.rec.Nodes[n]
	if addr == "" {
		addr = cur.Addr
	}
	e := nodeEntry{Addr: addr, Removed: removed, Version: max(uint64(time.Now().UnixNano()), cur.Version+1)}
	d.mu.Unlock()
	_, err := d.merge(map[kernel.NodeID]nodeEntry{n: e})
	return err
}

// merge takes every entry newer than the one it has, persists the result
// if anything changed, and reports whether it did.
func (d *directory) merge(in map[kernel.NodeID]nodeEntry) (bool, error) {
	d.mu.Lock()
	changed := false
	for n, e := range in {
		if n == 0 {
			continue
		}
		if cur, ok := d.rec.Nodes[n]; ok && cur.Version >= e.Version {
			continue
		}
		if d.rec.Nodes == nil {
			d.rec.Nodes = map[kernel.NodeID]nodeEntry{}
		}
		if cur := d.rec.Nodes[n]; cur.Removed != e.Removed || cur.Addr != e.Addr {
			d.logger.Info("node directory: node changed", "node", n, "addr", e.Addr, "removed", e.Removed)
		}
		d.rec.Nodes[n] = e
		changed = true
	}
	rec := d.rec
	d.mu.Unlock()
	if !changed {
		return false, nil
	}
	if err := saveRecord(d.eng, rec); err != nil {
		return true, fmt.Errorf("saving the node directory: %w", err)
	}
	d.connect()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return true, nil
}

// gossip sends the directory to every other node now and then, and merges
// what the others send, until ctx ends. Messages may be lost: the next
// round repairs that.
func (d *directory) gossip(ctx context.Context, rt kernel.Runtime) {
	if d.tr == nil {
		return
	}
	inbox := rt.Net().Listen(directoryPort)
	rt.Go("node-directory-inbox", func(ctx context.Context) {
		for {
			env, err := inbox.Recv(ctx)
			if err != nil {
				return
			}
			var in map[kernel.NodeID]nodeEntry
			if err := json.Unmarshal(env.Body, &in); err != nil {
				d.logger.Warn("node directory: a malformed message", "from", env.From, "err", err)
				continue
			}
			if _, err := d.merge(in); err != nil {
				d.logger.Error("node directory", "err", err)
			}
		}
	})
	rt.Go("node-directory-gossip", func(ctx context.Context) {
		for {
			rec := d.record()
			body, err := json.Marshal(rec.Nodes)
			if err != nil {
				kernel.Crash("node directory: %v", err)
			}
			for n, e := range rec.Nodes {
				if n != d.self && !e.Removed {
					rt.Net().Send(n, directoryPort, body)
				}
			}
			wait, cancel := rt.WithTimeout(ctx, gossipPeriod)
			select {
			case <-wait.Done():
			case <-d.changed:
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
		}
	})
}
