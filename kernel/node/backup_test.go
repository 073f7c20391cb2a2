package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/backup"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// openTxnNode opens a standalone node whose transactional keyspace is cut
// into three ranges (at "acct/03" and "acct/07"), so a backup reads
// across ranges, and returns it with a DB on it.
func openTxnNode(t *testing.T) (*Node, *txn.DB) {
	t.Helper()
	rec := cluster.Record{ClusterID: 1, Ranges: 2, Replicas: 1, Initial: []kernel.NodeID{1},
		Nodes: map[kernel.NodeID]cluster.NodeEntry{1: {Version: 1}}}
	splits := redis.SlotSplits(2)
	for _, k := range []string{"", "acct/03", "acct/07"} {
		splits = append(splits, append(bytes.Clone(txn.KeyspaceStart), k...))
	}
	layout, err := consensus.NewLayout(splits, rec.Initial, 1)
	if err != nil {
		t.Fatal(err)
	}
	nd, _ := openNode(t, rec, layout, Options{Redis: &session.Options{}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = nd.Close(ctx)
	})
	db, err := nd.NewDB("test")
	if err != nil {
		t.Fatal(err)
	}
	return nd, db
}

func account(i int) []byte { return fmt.Appendf(nil, "acct/%02d", i) }

// TestBackupIsAConsistentSnapshot: a backup taken while transfers run
// between accounts in three ranges holds the starting total; a backup as
// of an earlier time holds that time's values (point in time); a restore
// into a fresh node gives back every pair, and that node's keyspace is
// then not empty (a second restore would be refused).
func TestBackupIsAConsistentSnapshot(t *testing.T) {
	const accounts, start = 10, 100
	src, db := openTxnNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if empty, first, err := backup.Empty(ctx, db); err != nil || !empty {
		t.Fatalf("a fresh node's keyspace: empty %v (first key %q), %v", empty, first, err)
	}
	if err := db.Txn(ctx, func(tx *txn.Tx) error {
		for i := range accounts {
			if err := tx.Put(ctx, account(i), []byte(strconv.Itoa(start))); err != nil {
				return err
			}
		}
		return tx.Put(ctx, []byte("marker"), []byte("before"))
	}); err != nil {
		t.Fatal(err)
	}
	before := db.Now()
	if err := db.Put(ctx, []byte("marker"), []byte("after")); err != nil {
		t.Fatal(err)
	}

	// Transfers run on two tasks while the backups are taken.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var transfers sync.Map
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wdb, err := src.NewDB(fmt.Sprintf("transfer-%d", w))
			if err != nil {
				t.Error(err)
				return
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				from, to := account((n*3+w)%accounts), account((n*7+w+1)%accounts)
				if bytes.Equal(from, to) {
					continue
				}
				err := wdb.Txn(ctx, func(tx *txn.Tx) error {
					a, _, err := tx.Get(ctx, from)
					if err != nil {
						return err
					}
					b, _, err := tx.Get(ctx, to)
					if err != nil {
						return err
					}
					x, _ := strconv.Atoi(string(a))
					y, _ := strconv.Atoi(string(b))
					if err := tx.Put(ctx, from, []byte(strconv.Itoa(x-1))); err != nil {
						return err
					}
					return tx.Put(ctx, to, []byte(strconv.Itoa(y+1)))
				})
				if err == nil {
					transfers.Store(w*1_000_000+n, true)
				} else if ctx.Err() == nil && !errors.Is(err, txn.ErrRetry) {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	export := func(asOf hlc.Timestamp) map[string]string {
		t.Helper()
		_, entries := exportEntries(t, ctx, db, asOf, backup.ExportOptions{Page: 3})
		got := map[string]string{}
		for _, en := range entries {
			got[string(en.Key)] = string(en.Value)
		}
		return got
	}
	total := func(pairs map[string]string) int {
		sum := 0
		for i := range accounts {
			n, err := strconv.Atoi(pairs[string(account(i))])
			if err != nil {
				t.Fatalf("account %d: %q", i, pairs[string(account(i))])
			}
			sum += n
		}
		return sum
	}
	for round := range 5 {
		time.Sleep(20 * time.Millisecond)
		snap := export(db.Now())
		if got := total(snap); got != accounts*start {
			t.Fatalf("backup %d: the accounts hold %d, not %d: %v", round, got, accounts*start, snap)
		}
		if snap["marker"] != "after" {
			t.Fatalf("backup %d: marker %q", round, snap["marker"])
		}
	}
	if old := export(before); old["marker"] != "before" || total(old) != accounts*start {
		t.Fatalf("the backup as of before the marker changed: %v", old)
	}
	if _, err := backup.Export(ctx, db, db.Now().Add(time.Hour), backup.NewEncoder(&bytes.Buffer{}), backup.ExportOptions{}); err == nil {
		t.Fatal("a backup as of an hour ahead was taken")
	}
	n := 0
	transfers.Range(func(_, _ any) bool { n++; return true })
	if n == 0 {
		t.Fatal("no transfer committed while the backups ran: the test checked nothing")
	}

	// Restore the last state into a fresh node.
	asOf := db.Now()
	stream, entries := exportEntries(t, ctx, db, asOf, backup.ExportOptions{Page: 3})
	want := map[string]string{}
	for _, en := range entries {
		want[string(en.Key)] = string(en.Value)
	}
	_, ddb := openTxnNode(t)
	wrote, err := backup.Import(ctx, ddb, backup.NewDecoder(bytes.NewReader(stream)), backup.ImportOptions{BatchPairs: 3})
	if err != nil || wrote != uint64(len(want)) {
		t.Fatalf("restore: %d pairs, %v; want %d", wrote, err, len(want))
	}
	for k, v := range want {
		got, found, err := ddb.Get(ctx, []byte(k))
		if err != nil || !found || string(got) != v {
			t.Fatalf("restored %q: %q found %v (%v), want %q", k, got, found, err, v)
		}
	}
	if empty, _, err := backup.Empty(ctx, ddb); err != nil || empty {
		t.Fatalf("the restored keyspace: empty %v, %v", empty, err)
	}
	t.Logf("%d transfers committed during the backups", n)
}

// TestIncrementalBackups: a full backup, then two incrementals, each what
// changed since the one before (puts, overwrites, deletions, a key
// deleted and written again), restored in order into a fresh node, give
// the keyspace as of the last; an incremental whose base lies below the
// garbage-collection window is refused.
func TestIncrementalBackups(t *testing.T) {
	_, db := openTxnNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	write := func(puts map[string]string, deletes ...string) {
		t.Helper()
		if err := db.Txn(ctx, func(tx *txn.Tx) error {
			for k, v := range puts {
				if err := tx.Put(ctx, []byte(k), []byte(v)); err != nil {
					return err
				}
			}
			for _, k := range deletes {
				if err := tx.Delete(ctx, []byte(k)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	export := func(asOf, since hlc.Timestamp) ([]byte, []backup.Entry) {
		t.Helper()
		return exportEntries(t, ctx, db, asOf, backup.ExportOptions{Page: 2, Since: since})
	}
	write(map[string]string{"acct/01": "a", "acct/04": "b", "acct/08": "c", "other": "d"})
	t0 := db.Now()
	full, _ := export(t0, hlc.Timestamp{})
	write(map[string]string{"acct/04": "b2", "acct/09": "new"}, "acct/01")
	t1 := db.Now()
	inc1, got1 := export(t1, t0)
	if got, want := describe(got1), "acct/01 deleted, acct/04=b2, acct/09=new"; got != want {
		t.Fatalf("the first incremental holds %s, want %s", got, want)
	}
	write(map[string]string{"acct/01": "back"}, "acct/08", "acct/09")
	write(nil, "never-written")
	t2 := db.Now()
	inc2, got2 := export(t2, t1)
	if got, want := describe(got2), "acct/01=back, acct/08 deleted, acct/09 deleted, never-written deleted"; got != want {
		t.Fatalf("the second incremental holds %s, want %s", got, want)
	}
	if _, got := export(t2, t2.Add(-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("nothing changed, yet an incremental holds %s", describe(got))
	}

	_, ddb := openTxnNode(t)
	for _, b := range [][]byte{full, inc1, inc2} {
		if _, err := backup.Import(ctx, ddb, backup.NewDecoder(bytes.NewReader(b)), backup.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := ddb.Txn(ctx, func(tx *txn.Tx) error {
		kvs, err := tx.Scan(ctx, nil, nil, 100)
		if err != nil {
			return err
		}
		if got, want := fmt.Sprintf("%s", kvs), "[{acct/01 back} {acct/04 b2} {other d}]"; got != want {
			return fmt.Errorf("restored %s, want %s", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The node's GC window is 25 h: an incremental since before it is
	// refused (a deletion collected would be missed).
	_, err = backup.Export(ctx, db, db.Now(), backup.NewEncoder(&bytes.Buffer{}), backup.ExportOptions{Since: db.Now().Add(-26 * time.Hour)})
	if !errors.Is(err, txn.ErrRetry) || !strings.Contains(err.Error(), "garbage collection") {
		t.Fatalf("an incremental since 26 h ago: %v", err)
	}
}

// describe lists entries as "key=value" or "key deleted".
func describe(entries []backup.Entry) string {
	var parts []string
	for _, en := range entries {
		if en.Deleted {
			parts = append(parts, string(en.Key)+" deleted")
		} else {
			parts = append(parts, string(en.Key)+"="+string(en.Value))
		}
	}
	return strings.Join(parts, ", ")
}

// exportEntries takes an export of db as of asOf and returns its stream
// and the entries in it.
func exportEntries(t *testing.T, ctx context.Context, db *txn.DB, asOf hlc.Timestamp, opts backup.ExportOptions) ([]byte, []backup.Entry) {
	t.Helper()
	var buf bytes.Buffer
	enc := backup.NewEncoder(&buf)
	if _, err := backup.Export(ctx, db, asOf, enc, opts); err != nil {
		t.Fatal(err)
	}
	if err := enc.End(); err != nil {
		t.Fatal(err)
	}
	var entries []backup.Entry
	dec := backup.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		en, ok, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return buf.Bytes(), entries
		}
		entries = append(entries, en)
	}
}

// TestFenceStopsCommitsAcrossRanges: while a backup's fence holds, an
// MSET whose keys lie in two ranges does not commit (it waits, retrying);
// once the fence is lifted it does. An MSET within one range goes on.
func TestFenceStopsCommitsAcrossRanges(t *testing.T) {
	nd, db := openTxnNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Two keys in two ranges, one more in the first's.
	var keys []string
	rangeOf := func(k string) storage.RangeID { return nd.Router.Lookup(redis.RawRouteKey(0, []byte(k))).ID }
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprint("k", i)
		if len(keys) == 0 || rangeOf(k) != rangeOf(keys[0]) {
			keys = append(keys, k)
		}
	}
	same := keys[0] + "{" + keys[0] + "}"
	for i := 0; rangeOf(same) != rangeOf(keys[0]); i++ {
		same = fmt.Sprintf("%s-%d", keys[0], i)
	}
	do := func(args ...string) redis.Reply {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		replies, _ := nd.Redis.NewConn("test", nil).Do(ctx, b)
		return replies[0]
	}
	fence, err := session.SetFence(ctx, db, "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r := do("mset", keys[0], "a", same, "b"); r.Kind != redis.KindSimple {
		t.Fatalf("an MSET in one range under a fence: %v", r)
	}
	done := make(chan redis.Reply, 1)
	go func() { done <- do("mset", keys[0], "1", keys[1], "2") }()
	select {
	case r := <-done:
		t.Fatalf("an MSET across ranges answered %v while a fence held", r)
	case <-time.After(time.Second):
	}
	if err := fence.Lift(ctx, db); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Kind != redis.KindSimple {
			t.Fatalf("the MSET across ranges, after the fence: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the MSET across ranges did not finish once the fence was lifted")
	}
	if r := do("get", keys[1]); string(r.Str) != "2" {
		t.Fatalf("get %s: %v", keys[1], r)
	}
}

// TestFencesLapse: fences whose backups died lapse at their deadline and
// make room for new ones; no more than eight hold at once.
func TestFencesLapse(t *testing.T) {
	_, db := openTxnNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 8 {
		if _, err := session.SetFence(ctx, db, fmt.Sprint("dead-", i), 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := session.SetFence(ctx, db, "ninth", time.Minute); !errors.Is(err, session.ErrTooManyFences) {
		t.Fatalf("a ninth fence while eight hold: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	var live []session.Fence
	for i := range 8 {
		f, err := session.SetFence(ctx, db, fmt.Sprint("live-", i), time.Minute)
		if err != nil {
			t.Fatalf("fence %d after the others lapsed: %v", i, err)
		}
		live = append(live, f)
	}
	if _, err := session.SetFence(ctx, db, "ninth", time.Minute); !errors.Is(err, session.ErrTooManyFences) {
		t.Fatalf("a ninth live fence: %v", err)
	}
	if err := live[0].Lift(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := session.SetFence(ctx, db, "ninth", time.Minute); err != nil {
		t.Fatalf("a fence after one was lifted: %v", err)
	}
}
