package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/storage"
)

// Pinned scans: a whole range read at one point (docs/backup.md, "The
// Redis keyspace").
//
// A scan page by page reads each page at whatever the range has applied
// by then. That is enough for a keyspace whose records carry versions (the
// transactional keyspace reads every page at one timestamp), not for
// Redis's, whose records are the state itself: a MULTI/EXEC applied
// between two pages would show half done. A pinned scan's first page is
// served like any read, by the leaseholder under its lease (or a ReadIndex
// round), from a Pebble view the store then keeps; the next pages come
// from that same view, asked of the node that served the first one
// directly (port pin), without the driver. The view holds the range as it
// was at that read: every write acknowledged before it, none after.
//
// A view goes when its last page is read, when nobody has asked for a
// page for PinTTL, or when the store closes; a node keeps at most maxPins
// (a request for another is refused as overloaded). A reader whose view
// went (ErrPinGone: its node restarted, or it waited too long) starts the
// range again.

const (
	pinPort = "pin"
	// PinTTL is how long a pinned view waits for its next page.
	PinTTL = 30 * time.Second
	// pinnedPageBytes bounds one pinned page's keys and values (at least
	// one pair goes), far below the transport's 16 MiB message.
	pinnedPageBytes = 4 << 20
	maxPins         = 16
	// PinView in a scan's Request.View asks for a pinned scan.
	PinView     = ^uint64(0)
	codePinGone = "consensus.pin-gone"
)

// ErrPinGone: the pinned view a page was asked of is gone (read to its
// end, expired after PinTTL, or its node restarted). Scan the range again.
var ErrPinGone = errors.New("consensus: the pinned view is gone; scan the range again")

// pinnedView is one range's state as a pinned scan's first page saw it.
type pinnedView struct {
	view     *storage.View
	desc     Descriptor // the range, as the view holds it
	lastUsed time.Duration
}

// pinTable is a node's pinned views, by ID. Pages are read on RPC tasks
// and first pages on the driver (or a leased reader's task): a mutex.
type pinTable struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*pinnedView
}

// pin keeps a new view of d's range and serves req's first page from it.
// The view is dropped at once if that page is the last.
func (s *Store) pin(d Descriptor, req Request) (Response, error) {
	t := &s.pins
	now := s.rt.Monotonic()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	if len(t.m) >= maxPins {
		// Refused before reading anything: the client comes back.
		return Response{}, fmt.Errorf("consensus: %d pinned scans on this node already; retry", maxPins)
	}
	pv := &pinnedView{view: s.eng.NewView(), desc: d, lastUsed: now}
	t.next++
	id := t.next
	resp := pv.page(req)
	if resp.Resume != nil {
		if t.m == nil {
			t.m = map[uint64]*pinnedView{}
		}
		t.m[id] = pv
		resp.View = id
	} else {
		pv.view.Close()
	}
	return resp, nil
}

// pinnedPage serves a page of an existing view (port pin).
func (s *Store) pinnedPage(req Request) (Response, error) {
	t := &s.pins
	now := s.rt.Monotonic()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	pv := t.m[req.View]
	if pv == nil || !pv.desc.Contains(req.Key) {
		return Response{}, coded{code: codePinGone, err: ErrPinGone}
	}
	pv.lastUsed = now
	var resp Response
	if mutation.On(MutPinnedLive) {
		live := &pinnedView{view: s.eng.NewView(), desc: pv.desc}
		resp = live.page(req)
		live.view.Close()
	} else {
		resp = pv.page(req)
	}
	resp.Range = pv.desc
	if resp.Resume == nil {
		pv.view.Close()
		delete(t.m, req.View)
	} else {
		resp.View = req.View
	}
	return resp, nil
}

// expire closes the views unused for PinTTL. t.mu is held.
func (t *pinTable) expire(now time.Duration) {
	for id, pv := range t.m {
		if now-pv.lastUsed >= PinTTL {
			pv.view.Close()
			delete(t.m, id)
		}
	}
}

// closeAll closes every view (the store is closing).
func (t *pinTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, pv := range t.m {
		pv.view.Close()
		delete(t.m, id)
	}
}

// page reads req's page from the view: up to req.Limit pairs (at most
// MaxScanLimit) and pinnedPageBytes, from req.Key to the end of the span
// or of the range. Resume is nil once the span or the range is read.
func (pv *pinnedView) page(req Request) Response {
	end := req.End
	if pv.desc.End != nil && (end == nil || bytes.Compare(pv.desc.End, end) < 0) {
		end = pv.desc.End
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxScanLimit {
		limit = MaxScanLimit
	}
	kvs, resume, err := pv.view.Scan(req.Key, end, limit)
	if err != nil {
		kernel.Crash("pinned scan: %v", err)
	}
	size := 0
	for i, kv := range kvs {
		size += len(kv.Key) + len(kv.Value)
		if size > pinnedPageBytes && i > 0 {
			kvs, resume = kvs[:i], kv.Key
			break
		}
	}
	return Response{KVs: kvs, Resume: resume}
}

// servePins answers the pages of pinned views (port pin).
func (s *Store) servePins() {
	kernel.ServeAsync(s.rt, pinPort, func(_ context.Context, _ kernel.NodeID, b []byte, reply func([]byte, error)) {
		req, err := decodeRequest(b)
		if err != nil || req.Op != OpScan || req.View == 0 || req.View == PinView {
			reply(nil, malformed(errors.Join(errMalformed, err)))
			return
		}
		resp, err := s.pinnedPage(req)
		reply(resp.encode(), err)
	})
}

// ScanPinned reads the range holding start, from start to its end (or to
// end, if sooner; nil: no bound), in pages of at most limit pairs
// (MaxScanLimit if 0 or more), all at one point: the state the range
// had when its first page was read, linearizably, at its leaseholder.
// visit gets the pairs page by page, in key order. It returns the range
// as read and where the next range starts (nil: end reached, or the
// keyspace's end). If the view is lost on the way (ErrPinGone, or its
// node stopped answering) it fails: what visit got is part of a range,
// and the caller starts it again or gives up.
func (c *Client) ScanPinned(ctx context.Context, start, end []byte, limit int, visit func([]storage.KeyValue) error) (Descriptor, []byte, error) {
	resp, err := c.Do(ctx, Request{Op: OpScan, Key: start, End: end, Limit: limit, View: PinView})
	if err != nil {
		return Descriptor{}, nil, err
	}
	d, node := resp.Range, resp.node
	for {
		if err := visit(resp.KVs); err != nil {
			return d, nil, err
		}
		if resp.View == 0 {
			next := resp.Resume
			if d.End == nil || (end != nil && bytes.Compare(d.End, end) >= 0) {
				next = nil
			} else if next == nil {
				next = d.End
			}
			return d, next, nil
		}
		if c.rt.Buggify("consensus.pinned-slow-pages") {
			// A slow reader between pages (a backup writing to a slow
			// bucket): the range takes writes meanwhile, which the next
			// page must not see (planted pinned-pages-live).
			_ = c.rt.Sleep(ctx, time.Duration(20+c.rt.Rand().IntN(80))*time.Millisecond)
		}
		body := Request{Op: OpScan, Key: resp.Resume, End: end, Limit: limit, View: resp.View}.encode()
		actx, cancel := c.rt.WithTimeout(ctx, AttemptTimeout)
		b, err := c.rpc.Call(actx, node, pinPort, body)
		cancel()
		if err == nil {
			resp, err = decodeResponse(b)
		}
		if remoteCode(err) == codePinGone {
			err = ErrPinGone
		}
		if err != nil {
			return d, nil, fmt.Errorf("consensus: a pinned scan of %v: %w", d, err)
		}
	}
}
