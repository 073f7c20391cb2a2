package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
)

// The node directory in the meta range.
//
// Every entry of the directory also lives in the meta range
// (consensus.MetaNodeKey), replicated like any range: a join or a removal
// is acknowledged only once its entry is there, so it survives the node
// that took the request (the simulator's cluster seed 281: a join
// recorded on one node, which died before its gossip left, was forgotten
// by the cluster, and the joined node got nothing). Each node reads the
// entries back every gossip period and merges them into its own copy (the
// one on its disk, which it needs to reach anyone at start-up), and writes
// there what it knows newer (its own address, advertised at start-up, and
// the first nodes of a new cluster).
//
// Entries change by compare-and-set on their exact bytes in the meta
// range, each change one version above the entry it replaces: two nodes
// changing one entry at once cannot both succeed, and no clock orders
// anything. The gossip still spreads entries (faster, and to nodes that
// cannot reach the meta range), and still says who is alive.

// errEntryRaced: another node changed the entry between the read and the
// compare-and-set; read again.
var errEntryRaced = errors.New("the entry changed meanwhile")

// readNodes returns the node entries the meta range holds, with each
// one's stored bytes (for compare-and-set).
func readNodes(ctx context.Context, cl *consensus.Client) (map[kernel.NodeID]NodeEntry, map[kernel.NodeID][]byte, error) {
	entries, raw := map[kernel.NodeID]NodeEntry{}, map[kernel.NodeID][]byte{}
	pos := consensus.MetaNodesStart
	for pos != nil {
		kvs, resume, err := cl.Scan(ctx, pos, consensus.MetaNodesEnd, consensus.MaxScanLimit)
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range kvs {
			if len(kv.Key) != len(consensus.MetaNodesStart)+8 {
				return nil, nil, fmt.Errorf("node directory: a meta key %q", kv.Key)
			}
			n := kernel.NodeID(binary.BigEndian.Uint64(kv.Key[len(consensus.MetaNodesStart):]))
			var e NodeEntry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return nil, nil, fmt.Errorf("node directory: node %d's entry in the meta range: %w", n, err)
			}
			entries[n], raw[n] = e, kv.Value
		}
		pos = resume
	}
	return entries, raw, nil
}

// changeEntry applies change to node n's entry as the meta range holds it
// (or as this directory has it, if newer or absent there), one version
// up, by compare-and-set, then merges the result here. It retries a
// compare-and-set another node's change beat.
func (d *directory) changeEntry(ctx context.Context, cl *consensus.Client, n kernel.NodeID, change func(e *NodeEntry)) error {
	for {
		err := d.changeOnce(ctx, cl, n, change)
		if !errors.Is(err, errEntryRaced) || ctx.Err() != nil {
			return err
		}
	}
}

func (d *directory) changeOnce(ctx context.Context, cl *consensus.Client, n kernel.NodeID, change func(e *NodeEntry)) error {
	key := consensus.MetaNodeKey(n)
	stored, found, err := cl.Get(ctx, key)
	if err != nil {
		return err
	}
	var base NodeEntry
	if found {
		if err := json.Unmarshal(stored, &base); err != nil {
			return fmt.Errorf("node directory: node %d's entry in the meta range: %w", n, err)
		}
	}
	if local, ok := d.entry(n); ok && local.Version > base.Version {
		base = local
	}
	e := base
	change(&e)
	e.Version = base.Version + 1
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	swapped, err := cl.CompareAndSet(ctx, key, stored, b)
	if err != nil {
		return err
	}
	if !swapped {
		return errEntryRaced
	}
	_, err = d.merge(map[kernel.NodeID]NodeEntry{n: e})
	return err
}

// syncMeta merges the meta range's entries into this directory, and
// writes there the entries this directory has newer (or that it lacks).
func (d *directory) syncMeta(ctx context.Context, cl *consensus.Client) error {
	stored, raw, err := readNodes(ctx, cl)
	if err != nil {
		return err
	}
	if _, err := d.merge(stored); err != nil {
		kernel.Crash("node directory: %v", err) // the disk failed
	}
	local := d.record().Nodes
	for _, n := range slices.Sorted(maps.Keys(local)) {
		e := local[n]
		if cur, ok := stored[n]; e.Version == 0 || (ok && !newer(e, cur)) {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := cl.CompareAndSet(ctx, consensus.MetaNodeKey(n), raw[n], b); err != nil {
			return err
		}
	}
	return nil
}
