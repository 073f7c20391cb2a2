package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"
)

// startBackupServer runs a node with RESP, HTTP and PostgreSQL listeners
// on two ranges and returns its addresses.
func startBackupServer(t *testing.T) (redisAddr, httpAddr, pgAddr string) {
	t.Helper()
	cfg := serveConfig{ranges: 2, pgAddr: "127.0.0.1:0"}
	cfg.nodeID, cfg.dataDir, cfg.redisAddr, cfg.httpAddr = 1, filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", "127.0.0.1:0"
	a, _ := launchServer(t, cfg)
	waitReady(t, a[1])
	return a[0], a[1], a[2]
}

// runBackup runs `orbit backup args...` and returns its exit code and
// output.
func runBackup(args ...string) (int, string) {
	var out, errs bytes.Buffer
	code := backupCommand(args, &out, &errs)
	return code, out.String() + errs.String()
}

// TestBackupAndRestore: orbit backup create takes a backup of a node
// whose SQL table takes transfers meanwhile; orbit backup restore writes
// it into a new node, where the table (rows, total, index) and a Redis
// ACL user are back; a backup as of before the transfers (to an S3
// bucket) restores the starting balances; an incremental backup (a row
// deleted, one changed) restores on top of the full one, and only in
// order; a second restore into a node is refused, and so are a corrupt
// and an unfinished backup, before anything is written.
func TestBackupAndRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srcRedis, srcHTTP, srcPG := startBackupServer(t)
	conn := connectSQL(t, ctx, srcPG)
	for _, q := range []string{
		"CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT, balance INT)",
		"CREATE INDEX accounts_owner ON accounts (owner)",
		"INSERT INTO accounts SELECT i, 'owner' || (i % 5), 100 FROM generate_series(1, 40) AS i",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srcRedis})
	defer rdb.Close()
	if err := rdb.Do(ctx, "ACL", "SETUSER", "auditor", "on", ">secret", "+get", "~*").Err(); err != nil {
		t.Fatal(err)
	}

	// The moment before any transfer, for a backup as of then (PITR).
	time.Sleep(5 * time.Millisecond)
	beforeTransfers := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)

	// Transfers run while the backup is taken.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	transfers := 0
	go func() {
		defer wg.Done()
		tc := connectSQL(t, ctx, srcPG)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := pgx.BeginFunc(ctx, tc, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - 7 WHERE id = $1", 1+i%40); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + 7 WHERE id = $1", 1+(i*13+5)%40)
				return err
			})
			if err == nil {
				transfers++
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "b1")
	code, out := runBackup("create", dir, "--addr", srcHTTP)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup create: %d: %s", code, out)
	}
	t.Logf("%s(%d transfers committed around it)", out, transfers)
	if code, out := runBackup("show", dir); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("backup show: %d: %s", code, out)
	}

	dstRedis, dstHTTP, dstPG := startBackupServer(t)
	if code, out := runBackup("restore", dir, "--addr", dstHTTP); code != 0 {
		t.Fatalf("backup restore: %d: %s", code, out)
	}
	dst := connectSQL(t, ctx, dstPG)
	var rows, total int
	if err := dst.QueryRow(ctx, "SELECT count(*), sum(balance) FROM accounts").Scan(&rows, &total); err != nil {
		t.Fatal(err)
	}
	if rows != 40 || total != 4000 {
		t.Fatalf("restored: %d rows holding %d; want 40 holding 4000", rows, total)
	}
	var owned int
	if err := dst.QueryRow(ctx, "SELECT count(*) FROM accounts WHERE owner = 'owner3'").Scan(&owned); err != nil || owned != 8 {
		t.Fatalf("restored rows of owner3 (through the index): %d, %v", owned, err)
	}
	if _, err := dst.Exec(ctx, "INSERT INTO accounts VALUES (41, 'owner1', 0)"); err != nil {
		t.Fatalf("a write to the restored table: %v", err)
	}
	// The ACL user is back (users are one record of the keyspace, which a
	// node rereads within 100 ms).
	auditor := redis.NewClient(&redis.Options{Addr: dstRedis, Username: "auditor", Password: "secret", MaxRetries: -1})
	defer auditor.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := auditor.Get(ctx, "k").Err()
		if err == redis.Nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored user auditor: %v", err)
		}
	}

	// A backup as of the moment before the transfers, taken after them,
	// restores every account at its starting balance.
	// It goes to an S3-compatible bucket (gofakes3, in process).
	s3 := s3mem.New()
	if err := s3.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(s3).Server())
	defer s3srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	pitr := "s3://backups/pitr?insecure=1&endpoint=" + strings.TrimPrefix(s3srv.URL, "http://")
	if code, out := runBackup("create", pitr, "--as-of", beforeTransfers, "--addr", srcHTTP); code != 0 {
		t.Fatalf("backup create --as-of: %d: %s", code, out)
	}
	_, pitrHTTP, pitrPG := startBackupServer(t)
	if code, out := runBackup("restore", pitr, "--addr", pitrHTTP); code != 0 {
		t.Fatalf("backup restore (as of before the transfers): %d: %s", code, out)
	}
	var moved int
	if err := connectSQL(t, ctx, pitrPG).QueryRow(ctx, "SELECT count(*) FROM accounts WHERE balance <> 100").Scan(&moved); err != nil || moved != 0 {
		t.Fatalf("as of before the transfers, %d accounts moved from 100 (%v)", moved, err)
	}
	if code, out := runBackup("create", filepath.Join(t.TempDir(), "future"), "--as-of", "1h", "--addr", srcHTTP); code != 1 || !strings.Contains(out, "future") {
		t.Fatalf("a backup as of an hour ahead: %d: %s", code, out)
	}

	// An incremental backup on top of the first: a row deleted, one
	// changed; the two restored in order give the source's table.
	for _, q := range []string{"DELETE FROM accounts WHERE id = 40", "UPDATE accounts SET balance = balance + 50 WHERE id = 1"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var wantRows, wantTotal int
	if err := conn.QueryRow(ctx, "SELECT count(*), sum(balance) FROM accounts").Scan(&wantRows, &wantTotal); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(t.TempDir(), "inc1")
	if code, out := runBackup("create", inc, "--incremental-from", dir, "--addr", srcHTTP); code != 0 || !strings.Contains(out, "incremental backup") {
		t.Fatalf("backup create --incremental-from: %d: %s", code, out)
	}
	_, incHTTP, incPG := startBackupServer(t)
	for _, wrong := range [][]string{{inc}, {inc, dir}, {dir, inc, inc}} {
		if code, out := runBackup(append([]string{"restore"}, append(wrong, "--addr", incHTTP)...)...); code != 1 {
			t.Fatalf("restore %v: %d: %s", wrong, code, out)
		}
	}
	if code, out := runBackup("restore", dir, inc, "--addr", incHTTP); code != 0 {
		t.Fatalf("backup restore FULL INCREMENTAL: %d: %s", code, out)
	}
	if err := connectSQL(t, ctx, incPG).QueryRow(ctx, "SELECT count(*), sum(balance) FROM accounts").Scan(&rows, &total); err != nil {
		t.Fatal(err)
	}
	if rows != wantRows || total != wantTotal {
		t.Fatalf("restored with the incremental: %d rows holding %d; want %d holding %d", rows, total, wantRows, wantTotal)
	}

	// A second restore into the same node is refused.
	if code, out := runBackup("restore", dir, "--addr", dstHTTP); code == 0 || !strings.Contains(out, "not empty") {
		t.Fatalf("a restore into a node holding data: %d: %s", code, out)
	}
	// A corrupt backup is refused before anything is sent.
	bad := filepath.Join(t.TempDir(), "corrupt")
	copyDir(t, dir, bad)
	data := filepath.Join(bad, "data-000001.obk")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"show", bad}, {"restore", bad, "--addr", dstHTTP, "--into-nonempty"}} {
		if code, out := runBackup(args...); code != 1 || !strings.Contains(out, "corrupt") {
			t.Fatalf("%v of a corrupt backup: %d: %s", args, code, out)
		}
	}
	// So is one that did not finish (no manifest).
	if err := os.Remove(filepath.Join(bad, "MANIFEST.json")); err != nil {
		t.Fatal(err)
	}
	if code, out := runBackup("show", bad); code != 1 || !strings.Contains(out, "did not finish") {
		t.Fatalf("an unfinished backup: %d: %s", code, out)
	}
	// And a backup never goes into a directory holding something.
	if code, out := runBackup("create", dir, "--addr", srcHTTP); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("a backup into a used directory: %d: %s", code, out)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHistoryWindow: --history-window bounds how far back a backup can
// reach (a time before it is refused as below the garbage-collection
// threshold, one inside it is taken), GET /cluster tells joining nodes
// the window, and a restart with another window is refused.
func TestHistoryWindow(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := serveConfig{nodeID: 1, dataDir: dataDir, redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", historyWindow: 2 * time.Minute}
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan boundAddrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), func(b boundAddrs) { listening <- b })
	}()
	var addrs boundAddrs
	select {
	case addrs = <-listening:
	case err := <-done:
		t.Fatal(err)
	}
	waitReady(t, addrs.http)
	if code, out := runBackup("create", filepath.Join(t.TempDir(), "old"), "--as-of", "-3m", "--addr", addrs.http); code != 1 || !strings.Contains(out, "garbage collection") {
		t.Fatalf("a backup as of 3 minutes ago with a 2-minute window: %d: %s", code, out)
	}
	if code, out := runBackup("create", filepath.Join(t.TempDir(), "recent"), "--as-of", "-1m", "--addr", addrs.http); code != 0 {
		t.Fatalf("a backup as of a minute ago with a 2-minute window: %d: %s", code, out)
	}
	info, err := fetchCluster(context.Background(), addrs.http)
	if err != nil || info.HistoryWindow != 2*time.Minute {
		t.Fatalf("GET /cluster: history window %v, %v", info.HistoryWindow, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cfg.historyWindow = time.Hour
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a refusal returns at once
	defer cancel()
	err = runServer(rctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "history window is 2m0s, not 1h0m0s") {
		t.Fatalf("a restart with another window: %v", err)
	}
}

// TestRedisBackup: a backup of now holds the Redis keyspace (every type,
// expiry times, other databases), taken while MULTI/EXEC transfers run
// between accounts in both ranges: restored into a new node, the accounts
// hold the starting total, and every other key is as it was. A backup as
// of a past time holds no Redis keyspace; a chain restores the last
// backup's; a node whose Redis keyspace holds a key refuses a restore.
func TestRedisBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srcRedis, srcHTTP, _ := startBackupServer(t)
	src := redis.NewClient(&redis.Options{Addr: srcRedis})
	defer src.Close()
	const accounts = 40
	acct := func(i int) string { return fmt.Sprintf("acct:%d", i) }
	for i := range accounts {
		if err := src.Set(ctx, acct(i), 100, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	fixed := func(c *redis.Client) {
		must := func(err error) {
			if err != nil {
				t.Helper()
				t.Fatal(err)
			}
		}
		must(c.HSet(ctx, "h", "f1", "v1", "f2", "v2").Err())
		must(c.RPush(ctx, "l", "a", "b", "c").Err())
		must(c.SAdd(ctx, "s", "x", "y").Err())
		must(c.ZAdd(ctx, "z", redis.Z{Score: 1.5, Member: "m1"}, redis.Z{Score: 2, Member: "m2"}).Err())
		must(c.Set(ctx, "expiring", "v", time.Hour).Err())
		must(c.Set(ctx, "gone", "v", time.Millisecond).Err())
	}
	fixed(src)
	db3 := redis.NewClient(&redis.Options{Addr: srcRedis, DB: 3})
	defer db3.Close()
	if err := db3.Set(ctx, "in3", "three", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The accounts lie in both ranges, so most transfers run across them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	transfers := make([]int, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: srcRedis})
			defer c.Close()
			for i := w; ; i += 2 {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.DecrBy(ctx, acct(i%accounts), 7)
					p.IncrBy(ctx, acct((i*13+5)%accounts), 7)
					return nil
				})
				if err == nil {
					transfers[w]++
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	dir := filepath.Join(t.TempDir(), "full")
	code, out := runBackup("create", dir, "--addr", srcHTTP)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "Redis keyspace's records") {
		t.Fatalf("backup create: %d: %s", code, out)
	}
	t.Logf("%s(%d transfers committed around it)", out, transfers[0]+transfers[1])
	if transfers[0]+transfers[1] == 0 {
		t.Fatal("no transfer committed")
	}

	dstRedis, dstHTTP, _ := startBackupServer(t)
	if code, out := runBackup("restore", dir, "--addr", dstHTTP); code != 0 {
		t.Fatalf("backup restore: %d: %s", code, out)
	}
	dst := redis.NewClient(&redis.Options{Addr: dstRedis})
	defer dst.Close()
	total := 0
	for i := range accounts {
		n, err := dst.Get(ctx, acct(i)).Int()
		if err != nil {
			t.Fatalf("restored %s: %v", acct(i), err)
		}
		total += n
	}
	if total != 100*accounts {
		t.Fatalf("the restored accounts hold %d, want %d", total, 100*accounts)
	}
	sameKeys(t, ctx, src, dst)
	dst3 := redis.NewClient(&redis.Options{Addr: dstRedis, DB: 3})
	defer dst3.Close()
	if v, err := dst3.Get(ctx, "in3").Result(); err != nil || v != "three" {
		t.Fatalf("database 3's key: %q, %v", v, err)
	}
	if ttl, err := dst.TTL(ctx, "expiring").Result(); err != nil || ttl <= 50*time.Minute || ttl > time.Hour {
		t.Fatalf("the restored expiring key's TTL: %v, %v", ttl, err)
	}
	if n, err := dst.Exists(ctx, "gone").Result(); err != nil || n != 0 {
		t.Fatalf("an expired key came back: %d, %v", n, err)
	}
	// The node holds Redis keys now: a restore into it is refused.
	if code, out := runBackup("restore", dir, "--addr", dstHTTP); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("a restore into a node holding Redis keys: %d: %s", code, out)
	}

	// A backup as of a past time holds no Redis keyspace.
	past := filepath.Join(t.TempDir(), "past")
	if code, out := runBackup("create", past, "--as-of", "-1s", "--addr", srcHTTP); code != 0 || !strings.Contains(out, "no Redis keyspace") {
		t.Fatalf("backup create --as-of -1s: %d: %s", code, out)
	}

	// An incremental backup holds the Redis keyspace whole; a chain
	// restores the last one's (a key deleted since the full one stays
	// deleted).
	if err := src.Del(ctx, "h").Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Set(ctx, "later", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(t.TempDir(), "inc")
	if code, out := runBackup("create", inc, "--incremental-from", dir, "--addr", srcHTTP); code != 0 {
		t.Fatalf("backup create --incremental-from: %d: %s", code, out)
	}
	chainRedis, chainHTTP, _ := startBackupServer(t)
	if code, out := runBackup("restore", dir, inc, "--addr", chainHTTP); code != 0 {
		t.Fatalf("backup restore FULL INCREMENTAL: %d: %s", code, out)
	}
	chain := redis.NewClient(&redis.Options{Addr: chainRedis})
	defer chain.Close()
	sameKeys(t, ctx, src, chain)
}

// sameKeys checks that b holds a's keys of database 0 with a's values
// (every type), by Redis's own reads.
func sameKeys(t *testing.T, ctx context.Context, a, b *redis.Client) {
	t.Helper()
	keys, err := a.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	gotKeys, err := b.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	slices.Sort(gotKeys)
	if !slices.Equal(keys, gotKeys) {
		t.Fatalf("keys: %v, want %v", gotKeys, keys)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "acct:") {
			continue // moved by transfers since
		}
		dump := func(c *redis.Client) string {
			typ, err := c.Type(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			var v any
			switch typ {
			case "string":
				v, err = c.Get(ctx, k).Result()
			case "hash":
				v, err = c.HGetAll(ctx, k).Result()
			case "list":
				v, err = c.LRange(ctx, k, 0, -1).Result()
			case "set":
				var m []string
				m, err = c.SMembers(ctx, k).Result()
				slices.Sort(m)
				v = m
			case "zset":
				v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
			}
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%s %v", typ, v)
		}
		if got, want := dump(b), dump(a); got != want {
			t.Fatalf("key %q: %s, want %s", k, got, want)
		}
	}
}
