package txn

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// Transcript tests of the coordinator alone (coordinator.go): each file
// under testdata/coordinator drives one transaction's coordinator with
// no runtime, router, network or machine. The transcript starts an
// operation, then plays every outcome the driver would hand back (a
// reply, a push's end, a buggify answer ...), and prints each step the
// coordinator asks for. Refresh the expected output with
//
//	go test ./txn -run TestCoordinatorTranscripts -rewrite
//
// Keys are the caller's (the keyspace prefix is added and stripped);
// timestamps are whole seconds (ts=5: 5 s, 5.1: 5 s logical 1).
//
//	txn [at=1] [offset=1] [splits=m,t] [batch=bytes] [record=bytes]
//	                      a new transaction at at, its uncertainty limit
//	                      offset above; its router places ranges split
//	                      at the splits' keys
//	split at=m            the router learns a split at m
//	put k=a v=1 | delete k=a | read-only | wound
//	get k=a | lock k=a | scan from=a [to=z] [limit=10] [since=2]
//	flush | commit | rollback | savepoint name=s | rollback-to name=s
//	                      start an operation; prints its first step
//	reply [err=E] [code=C] [ts=T] [value=V] [found] [status=S]
//	      [holder=H] [at=K] [kvs=a:1,b:2] [resume=K] [resolved=0,2]
//	                      the reply to the command sent: E one of
//	                      indeterminate, not-applied, cross-range (not
//	                      applied, as the client says), other;
//	                      C one of ok, intent, uncertain, aborted,
//	                      refresh-failed, needs-refresh, below-gc; an
//	                      intent is holder H's (a byte of its ID) at K
//	pushed [err=E] | waited [err=E] | buggify [hit] | resumed | resolved [err=E]
//	                      the outcome of the step asked for
//	state                 the transaction's timestamps, anchor, writes,
//	                      intents, buffer and reads
func TestCoordinatorTranscripts(t *testing.T) {
	datadriven.Walk(t, filepath.Join("testdata", "coordinator"), func(t *testing.T, path string) {
		runCoordinatorTranscript(t, path)
	})
}

// runCoordinatorTranscript runs the transcript at path.
func runCoordinatorTranscript(t testing.TB, path string) {
	h := &coordHarness{savepoints: map[string]*Savepoint{}}
	datadriven.RunTestAny(t, path, func(t testing.TB, d *datadriven.TestData) string {
		// A span's end is its last key and a zero byte.
		return strings.ReplaceAll(h.handle(t, d), "\x00", `\0`)
	})
}

type coordHarness struct {
	c          *coordinator
	savepoints map[string]*Savepoint
	splits     []string // where the router splits ranges, as it knows
}

func (h *coordHarness) handle(t testing.TB, d *datadriven.TestData) string {
	arg := func(key string) (string, bool) {
		for _, a := range d.CmdArgs {
			if a.Key == key {
				if len(a.Vals) == 0 {
					return "", true
				}
				return strings.Join(a.Vals, ","), true
			}
		}
		return "", false
	}
	must := func(key string) string {
		v, ok := arg(key)
		if !ok {
			d.Fatalf(t, "%s needs %s=", d.Cmd, key)
		}
		return v
	}
	ts := func(key string, dflt string) hlc.Timestamp {
		v, ok := arg(key)
		if !ok {
			v = dflt
		}
		return parseTS(t, d, v)
	}
	c := h.c
	switch d.Cmd {
	case "txn":
		at := ts("at", "1")
		offset := ts("offset", "1")
		h.splits = nil
		if v, ok := arg("splits"); ok {
			h.splits = strings.Split(v, ",")
		}
		place := placement{lookup: func(route []byte) consensus.Descriptor { return fakeRange(h.splits, route) }, batchBytes: 1 << 20, recordKeyBytes: 1 << 10}
		if v, ok := arg("batch"); ok {
			place.batchBytes, _ = strconv.Atoi(v)
		}
		if v, ok := arg("record"); ok {
			place.recordKeyBytes, _ = strconv.Atoi(v)
		}
		h.c = newCoordinator([16]byte{0xc0}, at, hlc.Timestamp{WallNanos: at.WallNanos + offset.WallNanos, Logical: at.Logical}, 7, place)
		return ""
	case "put", "delete":
		w := buffered{deleted: true}
		if d.Cmd == "put" {
			w = buffered{value: []byte(must("v"))}
		}
		if err := c.put(spaceKey([]byte(must("k"))), w); err != nil {
			return "error: " + err.Error()
		}
		return ""
	case "split":
		h.splits = append(h.splits, must("at"))
		slices.Sort(h.splits)
		return ""
	case "read-only":
		c.readOnly = true
		return ""
	case "wound":
		c.wounded.Store(true)
		return ""
	case "get":
		return h.show(c.get(spaceKey([]byte(must("k")))))
	case "lock":
		return h.show(c.lock(spaceKey([]byte(must("k")))))
	case "scan":
		limit := 10
		if v, ok := arg("limit"); ok {
			limit, _ = strconv.Atoi(v)
		}
		var end []byte
		if v, ok := arg("to"); ok {
			end = []byte(v)
		}
		var since *hlc.Timestamp
		if _, ok := arg("since"); ok {
			s := ts("since", "")
			since = &s
		}
		return h.show(c.scan(spaceKey([]byte(must("from"))), spaceEnd(end), limit, since))
	case "flush":
		return h.show(c.flushWrites())
	case "commit":
		return h.show(c.commit())
	case "rollback":
		return h.show(c.rollback())
	case "savepoint":
		h.savepoints[must("name")] = c.savepoint()
		return ""
	case "rollback-to":
		return h.show(c.rollbackTo(h.savepoints[must("name")]))
	case "reply":
		var err error
		if v, ok := arg("err"); ok {
			err = map[string]error{"indeterminate": consensus.ErrIndeterminate, "not-applied": consensus.ErrNotApplied,
				"cross-range": errors.Join(consensus.ErrNotApplied, consensus.ErrCrossRange), "other": errors.New("other")}[v]
			if err == nil {
				d.Fatalf(t, "unknown err=%s", v)
			}
			return h.show(c.replied(nil, err, false))
		}
		res := &result{}
		if v, ok := arg("code"); ok {
			code, found := map[string]code{"ok": codeOK, "intent": codeIntent, "uncertain": codeUncertain, "aborted": codeAborted,
				"refresh-failed": codeRefreshFailed, "needs-refresh": codeNeedsRefresh, "below-gc": codeBelowGC}[v]
			if !found {
				d.Fatalf(t, "unknown code=%s", v)
			}
			res.code = code
		}
		res.ts = ts("ts", "0")
		if v, ok := arg("value"); ok {
			res.value, res.found = []byte(v), true
		}
		if _, ok := arg("found"); ok {
			res.found = true
		}
		if v, ok := arg("status"); ok {
			res.status = map[string]status{"committed": statusCommitted, "aborted": statusAborted, "pending": statusPending}[v]
		}
		if v, ok := arg("holder"); ok {
			b, _ := strconv.Atoi(v)
			res.intent.Txn.ID[0] = byte(b)
			res.intentKey = spaceKey([]byte(must("at")))
			res.intent.Txn.Anchor = res.intentKey
		}
		if v, ok := arg("kvs"); ok {
			for _, kv := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(kv, ":")
				res.kvs = append(res.kvs, storage.KeyValue{Key: spaceKey([]byte(k)), Value: []byte(val)})
			}
		}
		if v, ok := arg("resume"); ok {
			res.more, res.resume = true, spaceKey([]byte(v))
		}
		if v, ok := arg("resolved"); ok {
			for _, i := range strings.Split(v, ",") {
				n, _ := strconv.Atoi(i)
				res.resolved = append(res.resolved, uint64(n))
			}
		}
		return h.show(c.replied(res, nil, false))
	case "pushed":
		return h.show(c.pushed(h.errArg(arg)))
	case "waited":
		return h.show(c.waited(h.errArg(arg)))
	case "buggify":
		v, hit := arg("hit")
		return h.show(c.buggified(hit && v != "false"))
	case "resumed":
		return h.show(c.resumed())
	case "resolved":
		return h.show(c.resolved(h.errArg(arg)))
	case "state":
		return h.state()
	}
	d.Fatalf(t, "unknown command %s", d.Cmd)
	return ""
}

func (h *coordHarness) errArg(arg func(string) (string, bool)) error {
	if v, ok := arg("err"); ok {
		return errors.New(v)
	}
	return nil
}

// parseTS reads seconds[.logical].
func parseTS(t testing.TB, d *datadriven.TestData, v string) hlc.Timestamp {
	sec, logical, _ := strings.Cut(v, ".")
	s, err := strconv.Atoi(sec)
	if err != nil {
		d.Fatalf(t, "timestamp %q", v)
	}
	l := 0
	if logical != "" {
		l, _ = strconv.Atoi(logical)
	}
	return hlc.Timestamp{WallNanos: int64(s) * 1e9, Logical: int32(l)}
}

// fakeRange is the range of a route key among ranges split at the given
// caller keys (sorted): range i+2 holds the keys from the i-th split on.
func fakeRange(splits []string, route []byte) consensus.Descriptor {
	d := consensus.Descriptor{ID: 1}
	for i, s := range splits {
		at := storage.MVCCRouteKey(spaceKey([]byte(s)))
		if string(route) >= string(at) {
			d = consensus.Descriptor{ID: storage.RangeID(i + 2), Start: at}
		} else if d.End == nil {
			d.End = at
		}
	}
	return d
}

func fmtTS(ts hlc.Timestamp) string {
	s := strconv.FormatInt(ts.WallNanos/1e9, 10)
	if rest := ts.WallNanos % 1e9; rest != 0 {
		s += fmt.Sprintf("+%dns", rest)
	}
	if ts.Logical != 0 {
		s += fmt.Sprintf(".%d", ts.Logical)
	}
	return s
}

func fmtKeys(keys [][]byte) string {
	var out []string
	for _, k := range keys {
		out = append(out, string(callerKey(k)))
	}
	return strings.Join(out, ",")
}

var opNames = map[op]string{opGet: "get", opScan: "scan", opRefresh: "refresh", opPut: "put", opResolve: "resolve", opEnd: "end",
	opPush: "push", opHeartbeat: "heartbeat", opForget: "forget", opOnePhase: "one-phase", opGC: "gc", opLock: "lock",
	opStatus: "status", opResolveSpan: "resolve-span", opChanges: "changes", opHeld: "held", opAwait: "await"}

// show prints a step.
func (h *coordHarness) show(s step) string {
	var b strings.Builder
	switch s.kind {
	case stepDone:
		if s.err != nil {
			fmt.Fprintf(&b, "done: %v", s.err)
			break
		}
		b.WriteString("done")
		switch h.c.goal {
		case goalGet, goalLock:
			if h.c.found {
				fmt.Fprintf(&b, " value=%s", h.c.value)
			} else {
				b.WriteString(" not found")
			}
		case goalScan:
			var kvs []string
			for _, kv := range h.c.kvs {
				kvs = append(kvs, fmt.Sprintf("%s:%s", kv.Key, kv.Value))
			}
			fmt.Fprintf(&b, " kvs=[%s]", strings.Join(kvs, " "))
		}
	case stepSend:
		c := s.cmd
		fmt.Fprintf(&b, "send %s %s", opNames[c.op], callerKey(c.key))
		if c.end != nil {
			fmt.Fprintf(&b, " end=%s", callerKey(c.end))
		}
		if !c.read.IsZero() {
			fmt.Fprintf(&b, " read=%s", fmtTS(c.read))
		}
		if !c.from.IsZero() {
			fmt.Fprintf(&b, " from=%s", fmtTS(c.from))
		}
		if !c.uncertainty.IsZero() {
			fmt.Fprintf(&b, " uncertainty=%s", fmtTS(c.uncertainty))
		}
		if c.limit != 0 {
			fmt.Fprintf(&b, " limit=%d", c.limit)
		}
		if c.txn != nil {
			fmt.Fprintf(&b, " txn-ts=%s", fmtTS(c.txn.Timestamp))
			if c.txn.Anchor != nil {
				fmt.Fprintf(&b, " anchor=%s", callerKey(c.txn.Anchor))
			}
		}
		if c.begin {
			fmt.Fprintf(&b, " begin node=%d start=%s", c.node, fmtTS(c.start))
		}
		if c.op == opEnd {
			fmt.Fprintf(&b, " commit=%t", c.commit)
		}
		if len(c.keys) > 0 {
			fmt.Fprintf(&b, " keys=%s", fmtKeys(c.keys))
		}
		if len(c.spans) > 0 {
			fmt.Fprintf(&b, " spans=%s", fmtKeys(c.spans))
		}
		if len(c.writes) > 0 {
			var ws []string
			for _, w := range c.writes {
				v, deleted, _ := untagged(w)
				if deleted {
					ws = append(ws, "(deleted)")
				} else {
					ws = append(ws, string(v))
				}
			}
			fmt.Fprintf(&b, " writes=%s", strings.Join(ws, ","))
		}
		if c.mine {
			b.WriteString(" mine")
		}
		if c.reads {
			b.WriteString(" reads")
		}
	case stepPush:
		fmt.Fprintf(&b, "push holder %d at %s", s.met.intent.Txn.ID[0], callerKey(s.met.intentKey))
		if s.queue {
			b.WriteString(" (queued)")
		}
	case stepCommitWait:
		fmt.Fprintf(&b, "commit-wait until %s", fmtTS(s.ts))
	case stepBuggify:
		fmt.Fprintf(&b, "buggify %s?", s.site)
	case stepHeartbeat:
		fmt.Fprintf(&b, "heartbeat at %s", callerKey(s.key))
	case stepResolve:
		mode := [...]string{"now", "keys now", "later", "settle early", "late"}[s.mode]
		r := s.res
		fmt.Fprintf(&b, "resolve (%s) keys=%s", mode, fmtKeys(r.keys))
		if len(r.spans) > 0 {
			fmt.Fprintf(&b, " spans=%s", fmtKeys(r.spans))
		}
		if r.commit {
			fmt.Fprintf(&b, " commit at %s", fmtTS(r.ts))
		} else {
			b.WriteString(" abort")
		}
	}
	return b.String()
}

func (h *coordHarness) state() string {
	c := h.c
	var b strings.Builder
	fmt.Fprintf(&b, "read=%s write=%s uncertainty=%s", fmtTS(c.read), fmtTS(c.write), fmtTS(c.uncertainty))
	if c.anchor != nil {
		fmt.Fprintf(&b, " anchor=%s", callerKey(c.anchor))
	}
	if c.done {
		b.WriteString(" done")
	}
	if c.committed {
		b.WriteString(" committed")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "writes=%s\n", fmtKeys(sortedKeys(c.writes)))
	show := func(name string, m map[string]buffered) {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			w := m[k]
			v := string(w.value)
			if w.deleted {
				v = "(deleted)"
			}
			out = append(out, fmt.Sprintf("%s:%s", callerKey([]byte(k)), v))
		}
		fmt.Fprintf(&b, "%s=%s\n", name, strings.Join(out, " "))
	}
	show("intents", c.intents)
	show("buffer", c.buffer)
	var reads []string
	for _, s := range c.reads {
		reads = append(reads, fmt.Sprintf("[%s,%s)", callerKey(s.start), callerKey(s.end)))
	}
	fmt.Fprintf(&b, "reads=%s", strings.Join(reads, " "))
	return b.String()
}
