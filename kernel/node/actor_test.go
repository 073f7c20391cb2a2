package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/examples/bank"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/actor"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// counter is a test actor: "add" adds its payload to a durable count and
// answers the new count; "get" answers the count; "fail" refuses.
func counter(_ context.Context, c actor.Call) (actor.Result, error) {
	n := 0
	if c.State != nil {
		n, _ = strconv.Atoi(string(c.State))
	}
	switch c.Method {
	case "get":
		return actor.Result{Reply: []byte(strconv.Itoa(n))}, nil
	case "add":
		d, err := strconv.Atoi(string(c.Payload))
		if err != nil {
			return actor.Result{}, errors.New("add: not a number")
		}
		s := []byte(strconv.Itoa(n + d))
		return actor.Result{Reply: s, Write: true, State: s}, nil
	}
	return actor.Result{}, errors.New("no such method: " + c.Method)
}

// openActorNode opens a standalone node that hosts actors with opts.
func openActorNode(t *testing.T, opts *actor.Options) *Node {
	t.Helper()
	return openStandalone(t, Options{Redis: &session.Options{}, Actors: opts})
}

// openStandalone opens a standalone node of two ranges with opts.
func openStandalone(t *testing.T, opts Options) *Node {
	t.Helper()
	rec := cluster.Record{ClusterID: 1, Ranges: 2, Replicas: 1, Initial: []kernel.NodeID{1},
		Nodes: map[kernel.NodeID]cluster.NodeEntry{1: {Version: 1}}}
	layout, err := RecordLayout(rec)
	if err != nil {
		t.Fatal(err)
	}
	nd, _ := openNode(t, rec, layout, opts)
	return nd
}

// TestActorsOnANode hosts a counter actor on one node: calls change its
// durable state once each, two clients see one state, the actor's errors
// reach the caller as MethodErrors that change nothing, an unknown type is
// refused, and a node restarted on the same data finds the state again.
func TestActorsOnANode(t *testing.T) {
	nd := openActorNode(t, &actor.Options{Types: map[string]actor.Handler{"counter": counter}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := actor.Ref{Type: "counter", Key: "c1"}
	call := func(c *actor.Client, method, payload string) string {
		t.Helper()
		out, err := c.Call(ctx, ref, method, []byte(payload))
		if err != nil {
			t.Fatalf("%s(%s): %v", method, payload, err)
		}
		return string(out)
	}
	if got := call(a, "add", "5"); got != "5" {
		t.Fatalf("add 5 = %s", got)
	}
	if got := call(b, "add", "2"); got != "7" {
		t.Fatalf("add 2 from a second client = %s", got)
	}
	_, err = a.Call(ctx, ref, "add", []byte("x"))
	var me *actor.MethodError
	if !errors.As(err, &me) || me.Msg != "add: not a number" {
		t.Fatalf("a refused add = %v, want the actor's error", err)
	}
	if got := call(a, "get", ""); got != "7" {
		t.Fatalf("get after a refused add = %s, want 7", got)
	}
	if _, err := a.Call(ctx, actor.Ref{Type: "nope", Key: "x"}, "get", nil); !errors.Is(err, actor.ErrUnknownType) {
		t.Fatalf("a call to an unknown type = %v", err)
	}
	if got := nd.Actors.Activations(); len(got) != 1 || got[0] != ref {
		t.Fatalf("activations = %v, want [%v]", got, ref)
	}
	// Least-loaded placement asks the hosts (here, the one) and works.
	ll, err := nd.NewActorClient(actor.Options{Placement: actor.PlaceLeastLoaded})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ll.Call(ctx, actor.Ref{Type: "counter", Key: "c3"}, "add", []byte("4")); err != nil || string(out) != "4" {
		t.Fatalf("add 4 to c3, placed least-loaded = %s, %v", out, err)
	}
	// Another actor of the type has a state of its own.
	if out, err := b.Call(ctx, actor.Ref{Type: "counter", Key: "c2"}, "add", []byte("1")); err != nil || string(out) != "1" {
		t.Fatalf("add 1 to c2 = %s, %v", out, err)
	}
}

// timer is a test actor: "once" sets reminder "r" due now plus the
// payload's milliseconds, "every" sets it repeating at that period,
// "stop" cancels it; each firing adds one to the durable count that
// "get" answers.
func timer(_ context.Context, c actor.Call) (actor.Result, error) {
	n := 0
	if c.State != nil {
		n, _ = strconv.Atoi(string(c.State))
	}
	if c.Reminder != "" {
		s := []byte(strconv.Itoa(n + 1))
		return actor.Result{Write: true, State: s}, nil
	}
	ms, _ := strconv.Atoi(string(c.Payload))
	d := time.Duration(ms) * time.Millisecond
	switch c.Method {
	case "get":
		return actor.Result{Reply: []byte(strconv.Itoa(n))}, nil
	case "once":
		return actor.Result{Reminders: []actor.Reminder{{Name: "r", Due: c.Now.Add(d)}}}, nil
	case "every":
		return actor.Result{Reminders: []actor.Reminder{{Name: "r", Due: c.Now.Add(d), Period: d}}}, nil
	case "stop":
		return actor.Result{Reminders: []actor.Reminder{{Name: "r", Cancel: true}}}, nil
	}
	return actor.Result{}, errors.New("no such method: " + c.Method)
}

// TestRemindersFire: a reminder fires once after its time and is gone; a
// repeating one fires again and again until cancelled; firings are turns
// (they change durable state).
func TestRemindersFire(t *testing.T) {
	nd := openActorNode(t, &actor.Options{Types: map[string]actor.Handler{"timer": timer}, ReminderScan: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	call := func(key, method, payload string) int {
		t.Helper()
		out, err := cl.Call(ctx, actor.Ref{Type: "timer", Key: key}, method, []byte(payload))
		if err != nil {
			t.Fatalf("%s %s: %v", key, method, err)
		}
		n, _ := strconv.Atoi(string(out))
		return n
	}
	waitFor := func(key string, want int) {
		t.Helper()
		for call(key, "get", "") < want {
			if ctx.Err() != nil {
				t.Fatalf("%s never fired %d times", key, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	call("a", "once", "50")
	waitFor("a", 1)
	time.Sleep(200 * time.Millisecond)
	if n := call("a", "get", ""); n != 1 {
		t.Fatalf("a one-time reminder fired %d times", n)
	}
	call("b", "every", "30")
	waitFor("b", 3)
	call("b", "stop", "")
	stopped := call("b", "get", "")
	time.Sleep(200 * time.Millisecond)
	if n := call("b", "get", ""); n != stopped {
		t.Fatalf("a cancelled reminder went on firing: %d after %d", n, stopped)
	}
}

// TestSagaTransfers runs the bank example's transfer saga: a transfer
// that can happen happens; one from an account without the money is
// aborted with nothing to undo; one into a closed account is compensated
// (the withdrawal deposited back). Money is conserved throughout.
func TestSagaTransfers(t *testing.T) {
	nd := openActorNode(t, &actor.Options{Types: bank.Types(), ReminderScan: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	call := func(typ, key, method string, payload []byte) string {
		t.Helper()
		out, err := cl.Call(ctx, actor.Ref{Type: typ, Key: key}, method, payload)
		if err != nil {
			t.Fatalf("%s/%s %s: %v", typ, key, method, err)
		}
		return string(out)
	}
	call("account", "alice", "deposit", []byte(`{"amount": 100}`))
	call("account", "carol", "close", nil)
	settle := func(saga string) actor.SagaState {
		t.Helper()
		for {
			var st actor.SagaState
			if err := json.Unmarshal([]byte(call(actor.SagaType, saga, "status", nil)), &st); err != nil {
				t.Fatal(err)
			}
			if st.Phase != actor.SagaRunning && st.Phase != actor.SagaCompensating {
				return st
			}
			if ctx.Err() != nil {
				t.Fatalf("saga %s never settled: %+v", saga, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, c := range []struct {
		saga, from, to string
		amount         int64
		phase          string
		alice          string
	}{
		{"t1", "alice", "bob", 30, actor.SagaDone, `{"balance":70}`},
		{"t2", "alice", "bob", 500, actor.SagaAborted, `{"balance":70}`},
		{"t3", "alice", "carol", 20, actor.SagaAborted, `{"balance":70}`},
	} {
		call(actor.SagaType, c.saga, "start", bank.Transfer(c.from, c.to, c.amount))
		if st := settle(c.saga); st.Phase != c.phase {
			t.Fatalf("saga %s ended %s (%+v), want %s", c.saga, st.Phase, st, c.phase)
		}
		if got := call("account", "alice", "balance", nil); got != c.alice {
			t.Fatalf("after saga %s alice holds %s, want %s", c.saga, got, c.alice)
		}
	}
	if got := call("account", "bob", "balance", nil); got != `{"balance":30}` {
		t.Fatalf("bob holds %s, want 30", got)
	}
	if st := settle("t3"); st.Failed != 1 || !strings.Contains(st.Reason, "account closed") {
		t.Fatalf("t3's refusal = step %d, %q", st.Failed, st.Reason)
	}
}

// ticker is a test actor: "start" sets a timer ticking every 20 ms (an
// in-memory tick count, kept in the durable state by each tick), "stop"
// cancels it, "get" answers the count.
func ticker(_ context.Context, c actor.Call) (actor.Result, error) {
	n := 0
	if c.State != nil {
		n, _ = strconv.Atoi(string(c.State))
	}
	switch {
	case c.Timer == "tick":
		s := []byte(strconv.Itoa(n + 1))
		return actor.Result{Write: true, State: s}, nil
	case c.Method == "start":
		return actor.Result{Timers: []actor.Timer{{Name: "tick", After: 20 * time.Millisecond, Period: 20 * time.Millisecond}}}, nil
	case c.Method == "stop":
		return actor.Result{Timers: []actor.Timer{{Name: "tick", Cancel: true}}}, nil
	case c.Method == "get":
		return actor.Result{Reply: []byte(strconv.Itoa(n))}, nil
	}
	return actor.Result{}, errors.New("no such method: " + c.Method)
}

// TestTimersTick: an activation's timer ticks turns until cancelled, and
// goes with its activation.
func TestTimersTick(t *testing.T) {
	nd := openActorNode(t, &actor.Options{Types: map[string]actor.Handler{"ticker": ticker}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := actor.Ref{Type: "ticker", Key: "k"}
	get := func() int {
		t.Helper()
		out, err := cl.Call(ctx, ref, "get", nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(out))
		return n
	}
	if _, err := cl.Call(ctx, ref, "start", nil); err != nil {
		t.Fatal(err)
	}
	for get() < 3 {
		if ctx.Err() != nil {
			t.Fatal("the timer never ticked three times")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := cl.Call(ctx, ref, "stop", nil); err != nil {
		t.Fatal(err)
	}
	stopped := get()
	time.Sleep(100 * time.Millisecond)
	if n := get(); n != stopped {
		t.Fatalf("a cancelled timer went on ticking: %d after %d", n, stopped)
	}
	// Started again, then the activation goes: the timer goes with it.
	if _, err := cl.Call(ctx, ref, "start", nil); err != nil {
		t.Fatal(err)
	}
	nd.Actors.Deactivate(ref)
	for len(nd.Actors.Activations()) > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	gone := get() // activates it afresh, with no timer
	time.Sleep(100 * time.Millisecond)
	if n := get(); n != gone {
		t.Fatalf("a timer outlived its activation: %d after %d", n, gone)
	}
}

// TestRequestRecordsExpire: a call sent again under its number gets the
// recorded reply without running again while the caller's record lives;
// once the record is older than RequestTTL, a turn that renews the lease
// removes it, and the same number runs again (the bound of exactly once
// that RequestTTL sets, docs/actors.md).
func TestRequestRecordsExpire(t *testing.T) {
	ctx, c, ref, add5 := counterWithShortTTL(t, 77)
	if got := add5(); got != "5" {
		t.Fatalf("add 5 = %s", got)
	}
	if got := add5(); got != "5" {
		t.Fatalf("add 5 sent again under its number = %s, want the recorded 5 (it ran twice)", got)
	}
	// Other calls keep the actor busy for three TTLs: their turns renew
	// the lease, and renewing turns sweep.
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := c.Call(ctx, ref, "add", []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	if got := add5(); got != "10" {
		t.Fatalf("add 5 sent again after its record expired = %s, want 10 (the record was kept past RequestTTL)", got)
	}
}

// TestResentRequestKeepsItsRecord: a call sent again and again under its
// number keeps its record past RequestTTL (an outbox resends a call until
// its answer is taken, however long that takes), and the record expires
// RequestTTL after the last copy.
func TestResentRequestKeepsItsRecord(t *testing.T) {
	ctx, c, ref, add5 := counterWithShortTTL(t, 78)
	if got := add5(); got != "5" {
		t.Fatalf("add 5 = %s", got)
	}
	// Resent every 50 ms for three TTLs, beside turns that sweep.
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := c.Call(ctx, ref, "add", []byte("0")); err != nil {
			t.Fatal(err)
		}
		if got := add5(); got != "5" {
			t.Fatalf("add 5 resent under its number = %s, want the recorded 5 (its record expired while it was being resent)", got)
		}
	}
	for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := c.Call(ctx, ref, "add", []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	if got := add5(); got != "10" {
		t.Fatalf("add 5 sent again three TTLs after its last copy = %s, want 10 (the record was kept past RequestTTL)", got)
	}
}

// TestUnsweptRecordsExpire: a record older than RequestTTL is expired
// whether or not a sweep has removed it: with no other call (no turn
// that renews the lease, the activation never idle), the same number
// sent again after the TTL runs again.
func TestUnsweptRecordsExpire(t *testing.T) {
	_, _, _, add5 := counterWithOptions(t, 79, actor.Options{RequestTTL: 300 * time.Millisecond,
		LeaseDuration: 10 * time.Second, IdleTimeout: 10 * time.Second})
	if got := add5(); got != "5" {
		t.Fatalf("add 5 = %s", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := add5(); got != "10" {
		t.Fatalf("add 5 sent again past RequestTTL = %s, want 10 (a record unswept lived past its TTL)", got)
	}
}

// counterWithShortTTL opens a node whose counters keep request records
// 300 ms, and returns a client, the counter c1 and a call that adds 5 to
// it as caller under number 1 (sent again, it must not run again while
// its record lasts).
func counterWithShortTTL(t *testing.T, caller uint64) (context.Context, *actor.Client, actor.Ref, func() string) {
	t.Helper()
	return counterWithOptions(t, caller, actor.Options{RequestTTL: 300 * time.Millisecond, LeaseDuration: 400 * time.Millisecond})
}

// counterWithOptions is counterWithShortTTL with the host's options.
func counterWithOptions(t *testing.T, caller uint64, opts actor.Options) (context.Context, *actor.Client, actor.Ref, func() string) {
	t.Helper()
	opts.Types = map[string]actor.Handler{"counter": counter}
	nd := openActorNode(t, &opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := actor.Ref{Type: "counter", Key: "c1"}
	add5 := func() string {
		t.Helper()
		out, err := c.CallAs(ctx, ref, "add", []byte("5"), caller, 1)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	return ctx, c, ref, add5
}

// TestSplitsKeepActorsWhole: the transactional keyspace of a node that
// splits ranges by size (here every 2 KB) splits only between actors,
// never between one actor's records (its directory entry, state and
// callers' records: txn.Options.RowPrefix, which Open sets to
// actor.RecordPrefix), so each actor's turns commit in one range.
func TestSplitsKeepActorsWhole(t *testing.T) {
	nd := openStandalone(t, Options{Redis: &session.Options{}, Consensus: consensus.Options{SplitBytes: 2 << 10},
		Actors: &actor.Options{Types: map[string]actor.Handler{"counter": counter}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Many callers, each with a record in every actor it calls: an
	// actor's records outgrow a range's share by themselves.
	refs := []actor.Ref{{Type: "counter", Key: "a"}, {Type: "counter", Key: "b"}, {Type: "counter", Key: "c"}}
	for i := range 40 {
		c, err := nd.NewActorClient(actor.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range refs {
			if _, err := c.Call(ctx, ref, "add", []byte(strconv.Itoa(i))); err != nil {
				t.Fatalf("add to %v: %v", ref, err)
			}
		}
	}
	splits := 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		splits = 0
		for _, d := range nd.Router.Ranges() {
			if len(d.Start) == 0 || !bytes.HasPrefix(d.Start, txn.KeyspaceStart) {
				continue
			}
			key := storage.MVCCKeyAt(d.Start)[len(txn.KeyspaceStart):]
			if p := actor.RecordPrefix(key); p != nil && !bytes.Equal(p, key) {
				t.Fatalf("range %d starts at %q, inside the records of the actor %q", d.ID, key, p)
			}
			if bytes.HasPrefix(key, []byte("actor/")) {
				splits++
			}
		}
		if splits > 0 || time.Now().After(deadline) {
			break
		}
	}
	if splits == 0 {
		t.Fatalf("the actors' records never split from each other's ranges: nothing checked (%d ranges)", len(nd.Router.Ranges()))
	}
	t.Logf("%d ranges start at an actor", splits)
}

// setIf is a register actor whose "set" call writes its payload's second
// word only if the state is its first ("-" for none), answering 1 or 0:
// a compare-and-set, a read when it fails.
func setIf(_ context.Context, c actor.Call) (actor.Result, error) {
	switch c.Method {
	case "get":
		return actor.Result{Reply: c.State}, nil
	case "set":
		expect, value, _ := strings.Cut(string(c.Payload), " ")
		if expect == "-" {
			expect = ""
		}
		if string(c.State) != expect {
			return actor.Result{Reply: []byte("0")}, nil
		}
		return actor.Result{Reply: []byte("1"), Write: true, State: []byte(value)}, nil
	}
	return actor.Result{}, errors.New("no such method: " + c.Method)
}

// TestCopyOfAReadRunGetsItsReply: a numbered call that ran as a read (a
// compare-and-set that failed, so nothing recorded it) and comes again
// under its number (a resend, a duplicate the network delivers late)
// gets the same reply, even though the state has since changed so that it
// would now succeed: its caller may have taken the first answer (actors
// seed 109: a compare-and-set answered false, then applied).
func TestCopyOfAReadRunGetsItsReply(t *testing.T) {
	if msg := copyOfAReadRunRan(t); msg != "" {
		t.Fatal(msg)
	}
}

// copyOfAReadRunRan says how a copy of a read run ran again, or "".
func copyOfAReadRunRan(t *testing.T) string {
	nd := openActorNode(t, &actor.Options{Types: map[string]actor.Handler{"register": setIf}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := nd.NewActorClient(actor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := actor.Ref{Type: "register", Key: "r"}
	call := func(caller, seq uint64, method, payload string) string {
		t.Helper()
		out, err := c.CallAs(ctx, ref, method, []byte(payload), caller, seq)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if got := call(90, 1, "set", "x y"); got != "0" {
		t.Fatalf("set x→y on an empty register = %s, want 0", got)
	}
	if got := call(91, 1, "set", "- x"); got != "1" {
		t.Fatalf("set -→x = %s, want 1", got)
	}
	if got := call(90, 1, "set", "x y"); got != "0" {
		return fmt.Sprintf("the copy of caller 90's call 1 = %s, want its first reply 0 (it ran again)", got)
	}
	if got := call(92, 1, "get", ""); got != "x" {
		return fmt.Sprintf("the register holds %q, want x: the copy of a failed compare-and-set changed it", got)
	}
	return ""
}
