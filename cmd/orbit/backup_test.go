package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
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
