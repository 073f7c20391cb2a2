package main

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// clusterSpec is what every node of a cluster must agree on, computed from
// the flags alone, identically on every node: the nodes, the number of
// ranges (spans of hash slots) and the replicas of each.
type clusterSpec struct {
	// peers maps every node, this one included, to its gRPC address.
	// Empty for a single node without --peers (no network at all).
	peers    map[kernel.NodeID]string
	nodes    []kernel.NodeID // sorted
	ranges   int
	replicas int
	// historyWindow is --history-window (0: the default), kept in the
	// record of a cluster started from these flags.
	historyWindow time.Duration
	// id names the cluster: --cluster-id, or derived from the layout.
	id uint64
}

// parsePeers reads "1=host:port,2=host:port,...".
func parsePeers(s string) (map[kernel.NodeID]string, error) {
	out := map[kernel.NodeID]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		idText, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("--peers: %q is not ID=HOST:PORT", item)
		}
		id, err := strconv.ParseUint(idText, 10, 32)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--peers: %q: the node ID must be a number from 1 to %d", item, uint32(1<<32-1))
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--peers: %q: the address must be HOST:PORT", item)
		}
		if _, dup := out[kernel.NodeID(id)]; dup {
			return nil, fmt.Errorf("--peers: node %d is listed twice", id)
		}
		out[kernel.NodeID(id)] = addr
	}
	return out, nil
}

// newClusterSpec checks the flags that shape the cluster and derives the
// rest.
func newClusterSpec(self kernel.NodeID, peers map[kernel.NodeID]string, ranges, replicas int, historyWindow time.Duration, id uint64) (clusterSpec, error) {
	spec := clusterSpec{peers: peers, ranges: ranges, replicas: replicas, historyWindow: historyWindow, id: id}
	if len(peers) == 0 {
		spec.nodes = []kernel.NodeID{self}
	} else {
		if _, ok := peers[self]; !ok {
			return clusterSpec{}, fmt.Errorf("--peers does not list this node (--node-id %d)", self)
		}
		for n := range peers {
			spec.nodes = append(spec.nodes, n)
		}
		slices.Sort(spec.nodes)
	}
	if spec.ranges == 0 {
		spec.ranges = len(spec.nodes) // one range led by each node, as a start
	}
	if spec.ranges < 1 || spec.ranges > redis.SlotCount {
		return clusterSpec{}, fmt.Errorf("--ranges must be between 1 and %d", redis.SlotCount)
	}
	if spec.replicas == 0 {
		spec.replicas = 3
	}
	if spec.replicas < 1 {
		return clusterSpec{}, fmt.Errorf("--replicas must be at least 1")
	}
	if spec.id == 0 {
		spec.id = spec.derivedID()
	}
	return spec, nil
}

// derivedID hashes what the layout is made of (never addresses, which may
// change): nodes started from the same flags agree on it, and a node
// started for another cluster differs.
func (c clusterSpec) derivedID() uint64 {
	h := fnv.New64a()
	h.Write([]byte("orbit cluster v1"))
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(c.ranges))
	b = binary.BigEndian.AppendUint64(b, uint64(min(c.replicas, len(c.nodes))))
	for _, n := range c.nodes {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if c.historyWindow != 0 && c.historyWindow != txn.DefaultGCTTL {
		// Peers started with different windows must not form one
		// cluster; clusters with the default keep the IDs they had.
		b = binary.BigEndian.AppendUint64(append(b, "history"...), uint64(c.historyWindow))
	}
	h.Write(b)
	return h.Sum64() | 1
}

// clusterInfo is what GET /cluster answers, for operators and for a node
// joining (which takes the cluster's shape from it).
type clusterInfo struct {
	ClusterID string `json:"cluster_id"`
	Node      uint64 `json:"node"` // the node answering
	Replicas  int    `json:"replicas"`
	// Initial lists the nodes the cluster was started with: the layout
	// places the ranges' first replicas on them.
	Initial []uint64 `json:"initial"`
	// LayoutRanges is how many ranges the cluster started with (its
	// record's; Ranges below are the ranges now, after splits and
	// merges). A node that joins keeps it in its own record.
	LayoutRanges int                 `json:"layout_ranges"`
	Nodes        map[string]nodeInfo `json:"nodes"`
	Ranges       []rangeInfo         `json:"ranges"`
	// HistoryWindow is the cluster's (its record's), which a joining
	// node takes.
	HistoryWindow time.Duration `json:"history_window"`
}

// nodeInfo is a node in GET /cluster: its directory entry, and its health
// as the answering node sees it.
type nodeInfo struct {
	cluster.NodeEntry
	// Alive: the node's gossip arrived lately; Dead: silent for
	// --dead-after (its replicas are being replaced). Neither: not heard
	// from since the answering node started.
	Alive bool `json:"alive"`
	Dead  bool `json:"dead"`
	// LeaderLoad is the requests a second it serves as a leader.
	LeaderLoad float64 `json:"leader_load"`
}

type rangeInfo struct {
	ID         uint64 `json:"id"`
	Generation uint64 `json:"generation"`
	// Start and End are the range's span in hex (End "": to the end of
	// the keyspace); Slots the Redis hash slots it covers.
	Start string `json:"start"`
	End   string `json:"end"`
	Slots string `json:"slots"`
	// Replicas are the nodes in the range's configuration now, as its
	// leader has it (absent: the range did not answer in time).
	Replicas []uint64 `json:"replicas,omitempty"`
	// Leader is true when this node leads the range now.
	Leader bool `json:"leader"`
	// LeaderNode is the node that answered for the range as its leader
	// during this request's walk (absent: the range did not answer).
	LeaderNode uint64 `json:"leader_node,omitempty"`
}

func slotSpan(d consensus.Descriptor) string {
	first, last := 0, redis.SlotCount-1
	if len(d.Start) >= 2 {
		first = int(d.Start[0])<<8 | int(d.Start[1])
	}
	if len(d.End) >= 2 {
		last = (int(d.End[0])<<8 | int(d.End[1])) - 1
	}
	return fmt.Sprintf("%d-%d", first, last)
}

// spec is the cluster's shape as the record has it: the layout comes from
// the nodes it started with, whatever joined or left since.
func recordSpec(rec cluster.Record) clusterSpec {
	spec := clusterSpec{peers: map[kernel.NodeID]string{}, nodes: slices.Clone(rec.Initial), ranges: rec.Ranges, replicas: rec.Replicas, id: rec.ClusterID}
	for n, e := range rec.Nodes {
		if e.Addr != "" {
			spec.peers[n] = e.Addr
		}
	}
	return spec
}
