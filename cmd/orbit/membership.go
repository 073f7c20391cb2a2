package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Adding and removing nodes: the HTTP face of cluster.Manager (its
// comment says what a join and a removal do).
//
// `orbit serve --join ADDR` starts a node that bootstraps nothing: it reads
// the cluster's shape from ADDR's GET /cluster (cluster ID, ranges,
// replicas, nodes and their addresses), starts empty, then asks ADDR (POST
// /join) to add it. `orbit node remove ID` asks a node (POST /remove) to
// take node ID out.

// membershipTimeout bounds one join or remove request.
const membershipTimeout = 2 * time.Minute

// admin serves the operator's requests on this node.
type admin struct {
	mgr    *cluster.Manager
	router *consensus.Router // the node's range cache
	layout consensus.Layout
	self   kernel.NodeID
	logger *slog.Logger
	guard  *adminGuard // who may use the endpoints that change the cluster
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
	if kernel.NodeID(req.Node) == a.self {
		http.Error(w, fmt.Sprintf("node %d is the node asked: a node cannot join itself", req.Node), http.StatusConflict)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	changes, err := a.mgr.Join(ctx, kernel.NodeID(req.Node), req.Addr)
	if errors.Is(err, cluster.ErrIDTaken) {
		http.Error(w, oneLine(err), http.StatusConflict)
		return
	}
	writeMembershipReply(w, membershipReply{Node: req.Node, Changes: changes}, err)
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
	changes, err := a.mgr.Remove(ctx, kernel.NodeID(id))
	if errors.Is(err, cluster.ErrUnknownNode) {
		http.Error(w, fmt.Sprintf("node %d: %v", id, err), http.StatusNotFound)
		return
	}
	writeMembershipReply(w, membershipReply{Node: id, Changes: changes}, err)
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
	err := a.mgr.WithClient(ctx, func(cl *consensus.Client) (err error) {
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
	err := a.mgr.WithClient(ctx, func(cl *consensus.Client) error {
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
	err = a.mgr.WithClient(ctx, func(cl *consensus.Client) error {
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

// fetchCluster reads GET /cluster from a node's HTTP address, over plain
// HTTP (the tests' shorthand).
func fetchCluster(ctx context.Context, addr string) (clusterInfo, error) {
	return plainWeb.fetchCluster(ctx, addr)
}

// fetchCluster reads GET /cluster from a node's HTTP address.
func (w webClient) fetchCluster(ctx context.Context, addr string) (clusterInfo, error) {
	var info clusterInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url(addr, "/cluster"), nil)
	if err != nil {
		return info, err
	}
	resp, err := w.do(req)
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
func joinRecord(join string, info clusterInfo, self kernel.NodeID, addr string) (cluster.Record, error) {
	id, err := strconv.ParseUint(info.ClusterID, 16, 64)
	if err != nil || id == 0 {
		return cluster.Record{}, fmt.Errorf("--join %s: the cluster ID %q is not valid", join, info.ClusterID)
	}
	if len(info.Nodes) == 0 {
		return cluster.Record{}, fmt.Errorf("--join %s: that cluster has no network between nodes (it was started without --peers) and cannot take new nodes", join)
	}
	// The record keeps the layout the cluster started with, not the
	// ranges there are now: a joined node restarted with the cluster's
	// --ranges must find the same number in it (a Jepsen txn-list run:
	// n3 joined after the ranges had split to 7 and could not restart
	// with --ranges 3).
	rec := cluster.Record{ClusterID: id, Ranges: info.LayoutRanges, Replicas: info.Replicas, Joined: true, Nodes: map[kernel.NodeID]cluster.NodeEntry{},
		HistoryWindow: info.HistoryWindow}
	for _, n := range info.Initial {
		rec.Initial = append(rec.Initial, kernel.NodeID(n))
	}
	if len(rec.Initial) == 0 || rec.Ranges == 0 {
		return cluster.Record{}, fmt.Errorf("--join %s: GET /cluster did not describe a cluster", join)
	}
	for text, n := range info.Nodes {
		nid, err := strconv.ParseUint(text, 10, 32)
		if err != nil || nid == 0 {
			return cluster.Record{}, fmt.Errorf("--join %s: node %q is not a node ID", join, text)
		}
		rec.Nodes[kernel.NodeID(nid)] = n.NodeEntry
	}
	// This node's own entry is what it says now; the node that takes the
	// join request makes it official (with a newer version).
	rec.Nodes[self] = cluster.NodeEntry{Addr: addr, Version: rec.Nodes[self].Version}
	return rec, nil
}

// askToJoin asks the node at join (HTTP, through web) to add this node,
// again and again until it answers or ctx ends: the cluster may be
// electing, or busy.
func askToJoin(ctx context.Context, web webClient, join string, self kernel.NodeID, addr string, logger *slog.Logger) {
	body, _ := json.Marshal(joinRequest{Node: uint64(self), Addr: addr})
	wait := 500 * time.Millisecond
	for {
		reply, status, err := web.postJSON(ctx, web.url(join, "/join"), body)
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
func (w webClient) postJSON(ctx context.Context, url string, body []byte) (membershipReply, int, error) {
	var reply membershipReply
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return reply, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.do(req)
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
