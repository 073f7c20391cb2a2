package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Adding and removing nodes.
//
// `orbit serve --join ADDR` starts a node that bootstraps nothing: it reads
// the cluster's shape from ADDR's GET /cluster (cluster ID, ranges,
// replicas, nodes and their addresses), starts empty, then asks ADDR (POST
// /join) to add it. The node that takes the request records the new node in
// its directory (gossip spreads it) and, through Raft membership changes,
// adds it to every range that has fewer replicas than the cluster's
// --replicas: a learner first, caught up by a streamed snapshot, then a
// voter. A node that joins a full cluster takes no replicas yet: moving
// replicas of full ranges onto it (rebalancing) is not done.
//
// `orbit node remove ID` asks a node (POST /remove) to take node ID out:
// for every range holding a replica there, a replica is first added on an
// active node that lacks one (when there is such a node, so the range keeps
// its replica count), then ID's replica is removed; then ID is marked
// removed in the directory. The removed node's replicas are destroyed when
// it applies its removal or hears of it (replica GC); the process itself
// keeps running, holding nothing, until it is stopped. A node that comes
// back with a wiped disk joins again with --join (same or new ID: its
// replicas are new Raft peers, generations apart from the old ones).
//
// Both requests are idempotent: each step is a compare-and-swap on the
// range's configuration, so a retried or repeated request goes on from
// where the configuration is.
//
// A removal is refused, range by range, when the voters it would leave do
// not hold a quorum of replicas the range's leader heard from within an
// election timeout (etcd's strict reconfiguration check): removing a node
// of a three-replica range while another of its nodes is down would stop
// the range until that node came back.

// membershipTimeout bounds one join or remove request.
const membershipTimeout = 2 * time.Minute

// admin runs membership requests (and /cluster's reads) on this node.
type admin struct {
	layout   consensus.Layout
	router   *consensus.Router // the node's range cache
	dir      *directory
	replicas int
	logger   *slog.Logger
	// pool holds the consensus clients admin requests take turns with: a
	// client lives as long as the node (its reply port and task), so they
	// are made once, not per request.
	pool chan *consensus.Client
}

const adminClients = 4

func newAdmin(router *consensus.Router, dir *directory, replicas int, logger *slog.Logger) *admin {
	layout := router.Layout()
	a := &admin{layout: layout, router: router, dir: dir, replicas: replicas, logger: logger, pool: make(chan *consensus.Client, adminClients)}
	for i := range adminClients {
		a.pool <- consensus.NewClient(router, fmt.Sprintf("admin-%d", i))
	}
	return a
}

// withClient runs fn with a client of the pool, waiting for one until ctx
// ends.
func (a *admin) withClient(ctx context.Context, fn func(*consensus.Client) error) error {
	select {
	case cl := <-a.pool:
		defer func() { a.pool <- cl }()
		return fn(cl)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// joinRequest is POST /join's body.
type joinRequest struct {
	Node uint64 `json:"node"`
	Addr string `json:"addr"` // its gRPC address
}

// membershipReply is what POST /join and /remove answer.
type membershipReply struct {
	Node    uint64   `json:"node"`
	Changes []string `json:"changes"` // one line per replica added or removed
}

// errIDTaken refuses a join under the ID of an active node at another
// address: two processes with one ID would each take the other's messages.
var errIDTaken = errors.New("a node with this ID is already a member")

func (a *admin) join(ctx context.Context, req joinRequest) (membershipReply, error) {
	node := kernel.NodeID(req.Node)
	if e, ok := a.dir.entry(node); ok && !e.Removed && e.Addr != "" && e.Addr != req.Addr {
		return membershipReply{}, fmt.Errorf("%w at %s (this request says %s): remove it first (orbit node remove %d) or pick another --node-id", errIDTaken, e.Addr, req.Addr, node)
	}
	if err := a.dir.set(node, req.Addr, false); err != nil {
		return membershipReply{}, err
	}
	out := membershipReply{Node: req.Node}
	err := a.withClient(ctx, func(cl *consensus.Client) error {
		if err := a.untilSettled(func() (int, error) { return a.addToRanges(ctx, cl, node, &out) }); err != nil {
			return err
		}
		return a.untilSettled(func() (int, error) { return a.rebalance(ctx, cl, &out) })
	})
	return out, err
}

// maxPasses bounds the passes of a join or a removal over the ranges.
const maxPasses = 8

// untilSettled runs pass (a join's or a removal's walk over the ranges)
// until one changes nothing: a range that split during a pass shows up
// whole in the next one.
func (a *admin) untilSettled(pass func() (changes int, err error)) error {
	for range maxPasses {
		n, err := pass()
		if err != nil || n == 0 {
			return err
		}
	}
	return fmt.Errorf("the ranges kept changing over %d passes; run the request again", maxPasses)
}

// addToRanges adds node to every range with fewer than a.replicas, and
// returns how many it added to.
func (a *admin) addToRanges(ctx context.Context, cl *consensus.Client, node kernel.NodeID, out *membershipReply) (int, error) {
	ranges, err := cl.Ranges(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the ranges: %w", err)
	}
	changes := 0
	for _, d := range ranges {
		if slices.Contains(d.Replicas, node) || len(d.Replicas) >= a.replicas {
			continue
		}
		if err := cl.AddReplica(ctx, d.Start, node); err != nil {
			return changes, fmt.Errorf("range %d: adding node %d: %w", d.ID, node, err)
		}
		changes++
		out.Changes = append(out.Changes, fmt.Sprintf("range %d: added a replica on node %d", d.ID, node))
		a.logger.Info("membership: replica added", "range", d.ID, "node", node)
	}
	return changes, nil
}

// rebalance moves replicas, then leaderships (and with them the leases),
// toward an even spread over the active nodes: a range whose fullest
// member holds at least two replicas more than the emptiest node outside
// it moves a replica there (added first, then removed: the range never
// has fewer); a range whose leader's node leads at least two ranges more
// than another member's hands its leadership over. It returns how many
// steps it took; passes repeat until one takes none (untilSettled).
func (a *admin) rebalance(ctx context.Context, cl *consensus.Client, out *membershipReply) (int, error) {
	ranges, err := cl.Ranges(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the ranges: %w", err)
	}
	active := a.dir.active()
	replicas, leaders := map[kernel.NodeID]int{}, map[kernel.NodeID]int{}
	for _, d := range ranges {
		for _, n := range d.Replicas {
			replicas[n]++
		}
		leaders[a.router.Leader(d.ID)]++ // Ranges read each range at its leader
	}
	fewest := func(candidates []kernel.NodeID, count map[kernel.NodeID]int) kernel.NodeID {
		return slices.MinFunc(candidates, func(x, y kernel.NodeID) int { return cmp.Or(count[x]-count[y], cmp.Compare(x, y)) })
	}
	changes := 0
	for _, d := range ranges {
		var outside []kernel.NodeID
		for _, n := range active {
			if !slices.Contains(d.Replicas, n) {
				outside = append(outside, n)
			}
		}
		if len(outside) == 0 || len(d.Replicas) == 0 {
			continue
		}
		from := slices.MaxFunc(d.Replicas, func(x, y kernel.NodeID) int { return cmp.Or(replicas[x]-replicas[y], cmp.Compare(y, x)) })
		to := fewest(outside, replicas)
		if replicas[from]-replicas[to] < 2 {
			continue
		}
		if err := cl.AddReplica(ctx, d.Start, to); err != nil {
			return changes, fmt.Errorf("range %d: moving a replica to node %d: %w", d.ID, to, err)
		}
		if err := cl.RemoveLiveReplica(ctx, d.Start, from); err != nil {
			return changes, fmt.Errorf("range %d: moving a replica off node %d: %w", d.ID, from, err)
		}
		replicas[to]++
		replicas[from]--
		changes++
		out.Changes = append(out.Changes, fmt.Sprintf("range %d: moved a replica from node %d to node %d", d.ID, from, to))
		a.logger.Info("rebalance: replica moved", "range", d.ID, "from", from, "to", to)
	}
	if changes > 0 {
		return changes, nil // leaderships on the next pass, over the replicas as they are now
	}
	for _, d := range ranges {
		lead := a.router.Leader(d.ID)
		if lead == 0 || !slices.Contains(d.Replicas, lead) {
			continue
		}
		to := fewest(d.Replicas, leaders)
		if leaders[lead]-leaders[to] < 2 {
			continue
		}
		if err := cl.TransferLeadership(ctx, d.Start, to); err != nil {
			return changes, fmt.Errorf("range %d: handing its leadership to node %d: %w", d.ID, to, err)
		}
		leaders[to]++
		leaders[lead]--
		changes++
		out.Changes = append(out.Changes, fmt.Sprintf("range %d: leadership moved from node %d to node %d", d.ID, lead, to))
		a.logger.Info("rebalance: leadership moved", "range", d.ID, "from", lead, "to", to)
	}
	return changes, nil
}

func (a *admin) remove(ctx context.Context, node kernel.NodeID) (membershipReply, error) {
	if _, known := a.dir.entry(node); !known {
		return membershipReply{}, errUnknownNode
	}
	out := membershipReply{Node: uint64(node)}
	err := a.withClient(ctx, func(cl *consensus.Client) error {
		return a.untilSettled(func() (int, error) { return a.removeFromRanges(ctx, cl, node, &out) })
	})
	if err != nil {
		return out, err
	}
	return out, a.dir.set(node, "", true)
}

// removeFromRanges takes node's replicas out of every range, adding one on
// a spare node first where the range would otherwise lose a replica, and
// returns how many ranges it changed.
func (a *admin) removeFromRanges(ctx context.Context, cl *consensus.Client, node kernel.NodeID, out *membershipReply) (int, error) {
	changes := 0
	holds := map[kernel.NodeID]int{} // replicas per node, to place moved ones on the emptiest
	ranges, err := cl.Ranges(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing the ranges: %w", err)
	}
	for _, d := range ranges {
		for _, n := range d.Replicas {
			holds[n]++
		}
	}
	for _, d := range ranges {
		m := d.Replicas
		if !slices.Contains(m, node) {
			continue
		}
		var spare []kernel.NodeID
		for _, n := range a.dir.active() {
			if n != node && !slices.Contains(m, n) {
				spare = append(spare, n)
			}
		}
		if len(m)-1 < a.replicas && len(spare) > 0 {
			to := slices.MinFunc(spare, func(x, y kernel.NodeID) int { return holds[x] - holds[y] })
			if err := cl.AddReplica(ctx, d.Start, to); err != nil {
				return changes, fmt.Errorf("range %d: adding a replica on node %d before removing node %d: %w", d.ID, to, node, err)
			}
			holds[to]++
			out.Changes = append(out.Changes, fmt.Sprintf("range %d: added a replica on node %d", d.ID, to))
			a.logger.Info("membership: replica added", "range", d.ID, "node", to)
		}
		if len(m) == 1 && len(spare) == 0 {
			return changes, fmt.Errorf("range %d: node %d holds its only replica and no other node can take it: add a node first", d.ID, node)
		}
		if err := cl.RemoveLiveReplica(ctx, d.Start, node); err != nil {
			return changes, fmt.Errorf("range %d: removing node %d: %w", d.ID, node, err)
		}
		changes++
		out.Changes = append(out.Changes, fmt.Sprintf("range %d: removed node %d's replica", d.ID, node))
		a.logger.Info("membership: replica removed", "range", d.ID, "node", node)
	}
	return changes, nil
}

var errUnknownNode = errors.New("no such node in this cluster")

// handleJoin serves POST /join.
func (a *admin) handleJoin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		http.Error(w, "a join request is JSON {\"node\": ID, \"addr\": \"HOST:PORT\"}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Node == 0 || req.Node > 1<<32-1 {
		http.Error(w, "node must be between 1 and 4294967295", http.StatusBadRequest)
		return
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		http.Error(w, "addr must be HOST:PORT", http.StatusBadRequest)
		return
	}
	if kernel.NodeID(req.Node) == a.dir.self {
		http.Error(w, fmt.Sprintf("node %d is the node asked: a node cannot join itself", req.Node), http.StatusConflict)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	reply, err := a.join(ctx, req)
	if errors.Is(err, errIDTaken) {
		http.Error(w, oneLine(err), http.StatusConflict)
		return
	}
	writeMembershipReply(w, reply, err)
}

// handleRemove serves POST /remove?node=ID.
func (a *admin) handleRemove(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	id, err := strconv.ParseUint(r.URL.Query().Get("node"), 10, 32)
	if err != nil || id == 0 {
		http.Error(w, "node must be a node ID (1 to 4294967295)", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	reply, err := a.remove(ctx, kernel.NodeID(id))
	if errors.Is(err, errUnknownNode) {
		http.Error(w, fmt.Sprintf("node %d: %v", id, err), http.StatusNotFound)
		return
	}
	writeMembershipReply(w, reply, err)
}

// slotParam reads the query parameter slot, a Redis hash slot.
func slotParam(r *http.Request) (uint16, error) {
	slot, err := strconv.ParseUint(r.URL.Query().Get("slot"), 10, 16)
	if err != nil || slot >= redis.SlotCount {
		return 0, fmt.Errorf("slot must be a hash slot (0 to %d)", redis.SlotCount-1)
	}
	return uint16(slot), nil
}

// postedSlot reads the hash slot of a POST /split or /merge, which slot 0
// (the first range's start) is no use to (zero says why); it answers the
// request itself when it returns false.
func postedSlot(w http.ResponseWriter, r *http.Request, zero string) (uint16, bool) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return 0, false
	}
	slot, err := slotParam(r)
	if err == nil && slot == 0 {
		err = errors.New(zero)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return 0, false
	}
	return slot, true
}

// handleSplit is POST /split?slot=N: the range holding hash slot N splits
// so that a range starts at it (an operator's split, and the Jepsen
// "ranges" nemesis'); it answers the ID of that range. Slot 0 starts the
// first range already.
func (a *admin) handleSplit(w http.ResponseWriter, r *http.Request) {
	slot, ok := postedSlot(w, r, "slot 0 starts the first range: nothing to split")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	var id storage.RangeID
	err := a.withClient(ctx, func(cl *consensus.Client) (err error) {
		id, err = cl.Split(ctx, redis.SlotKey(slot))
		return err
	})
	if err != nil {
		http.Error(w, oneLine(err), http.StatusServiceUnavailable)
		return
	}
	a.logger.Info("split by request", "slot", slot, "range", id)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]uint64{"range": uint64(id)})
}

// handleMerge is POST /merge?slot=N: the range starting at hash slot N
// merges into the range on its left (an operator's merge, and the Jepsen
// "ranges" nemesis' undoing of its split). It holds at most
// consensus.MaxMergeBytes of data.
func (a *admin) handleMerge(w http.ResponseWriter, r *http.Request) {
	slot, ok := postedSlot(w, r, "slot 0 starts the first range: it has nothing on its left to merge into")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	err := a.withClient(ctx, func(cl *consensus.Client) error {
		return cl.Merge(ctx, redis.SlotKey(slot))
	})
	if err != nil {
		http.Error(w, oneLine(err), http.StatusServiceUnavailable)
		return
	}
	a.logger.Info("merge by request", "slot", slot)
	fmt.Fprintln(w, "ok")
}

// handleTransfer is POST /transfer?slot=N&node=M: the range holding hash
// slot N hands its leadership (and lease) to node M, which must hold a
// voter of it.
func (a *admin) handleTransfer(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	slot, err := slotParam(r)
	node, nerr := strconv.ParseUint(r.URL.Query().Get("node"), 10, 32)
	if err == nil && (nerr != nil || node == 0) {
		err = errors.New("node must be a node ID (1 to 4294967295)")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err = a.withClient(ctx, func(cl *consensus.Client) error {
		return cl.TransferLeadership(ctx, redis.SlotKey(slot), kernel.NodeID(node))
	})
	if err != nil {
		http.Error(w, oneLine(err), http.StatusServiceUnavailable)
		return
	}
	a.logger.Info("leadership moved by request", "slot", slot, "node", node)
	fmt.Fprintln(w, "ok")
}

func writeMembershipReply(w http.ResponseWriter, reply membershipReply, err error) {
	if err != nil {
		msg := oneLine(err)
		if len(reply.Changes) > 0 {
			msg += " (done before that: " + strings.Join(reply.Changes, "; ") + ")"
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// fetchCluster reads GET /cluster from a node's HTTP address.
func fetchCluster(ctx context.Context, addr string) (clusterInfo, error) {
	var info clusterInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/cluster", nil)
	if err != nil {
		return info, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET /cluster: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<24)).Decode(&info); err != nil {
		return info, fmt.Errorf("GET /cluster: %w", err)
	}
	return info, nil
}

// joinRecord is the cluster record of a node joining the cluster that
// info describes, reachable itself at addr.
func joinRecord(join string, info clusterInfo, self kernel.NodeID, addr string) (clusterRecord, error) {
	id, err := strconv.ParseUint(info.ClusterID, 16, 64)
	if err != nil || id == 0 {
		return clusterRecord{}, fmt.Errorf("--join %s: the cluster ID %q is not valid", join, info.ClusterID)
	}
	if len(info.Nodes) == 0 {
		return clusterRecord{}, fmt.Errorf("--join %s: that cluster has no network between nodes (it was started without --peers) and cannot take new nodes", join)
	}
	rec := clusterRecord{ClusterID: id, Ranges: len(info.Ranges), Replicas: info.Replicas, Joined: true, Nodes: map[kernel.NodeID]nodeEntry{}}
	for _, n := range info.Initial {
		rec.Initial = append(rec.Initial, kernel.NodeID(n))
	}
	if len(rec.Initial) == 0 || rec.Ranges == 0 {
		return clusterRecord{}, fmt.Errorf("--join %s: GET /cluster did not describe a cluster", join)
	}
	for text, n := range info.Nodes {
		nid, err := strconv.ParseUint(text, 10, 32)
		if err != nil || nid == 0 {
			return clusterRecord{}, fmt.Errorf("--join %s: node %q is not a node ID", join, text)
		}
		rec.Nodes[kernel.NodeID(nid)] = n
	}
	// This node's own entry is what it says now; the node that takes the
	// join request makes it official (with a newer version).
	rec.Nodes[self] = nodeEntry{Addr: addr, Version: rec.Nodes[self].Version}
	return rec, nil
}

// askToJoin asks the node at join (HTTP) to add this node, again and again
// until it answers or ctx ends: the cluster may be electing, or busy.
func askToJoin(ctx context.Context, join string, self kernel.NodeID, addr string, logger *slog.Logger) {
	body, _ := json.Marshal(joinRequest{Node: uint64(self), Addr: addr})
	wait := 500 * time.Millisecond
	for {
		reply, status, err := postJSON(ctx, "http://"+join+"/join", body)
		switch {
		case err == nil:
			logger.Info("orbit serve: joined the cluster", "via", join, "changes", strings.Join(reply.Changes, "; "))
			return
		case status >= 400 && status < 500:
			logger.Error("orbit serve: the cluster refused to add this node", "via", join, "err", err)
			return
		}
		logger.Warn("orbit serve: joining the cluster; retrying", "via", join, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// postJSON posts body and decodes a membershipReply; a refusal's text
// becomes the error.
func postJSON(ctx context.Context, url string, body []byte) (membershipReply, int, error) {
	var reply membershipReply
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return reply, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return reply, resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(text)))
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return reply, resp.StatusCode, err
	}
	return reply, resp.StatusCode, nil
}
