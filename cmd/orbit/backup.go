package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/orbitkernel/orbit/backup"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/txn"
)

// Backups (docs/backup.md): a node streams its cluster's transactional
// keyspace as of one timestamp to `orbit backup create`, which writes a
// backup directory; `orbit backup restore` verifies a directory whole,
// then streams it, a data file per request, to a node of an empty
// cluster, which writes it back through transactions. Both endpoints sit
// behind the admin guard (a certificate of the cluster's CA or the admin
// token).

// backupService serves GET /backup and POST /restore.
type backupService struct {
	newDB     func(name string) (*txn.DB, error)
	clusterID func() string
	// redis reaches the node's Redis keyspace (nil: the node has none).
	redis  func(db *txn.DB) *backup.RedisKeyspace
	logger *slog.Logger
}

// restoreReply is what POST /restore answers.
type restoreReply struct {
	Entries uint64 `json:"entries"`
}

// handleExport serves GET /backup?as_of=T: a header (the manifest
// without files), every pair as of T, and the end record; a failure
// after the stream began is its last record ('X').
func (s *backupService) handleExport(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET /backup?as_of=T", http.StatusMethodNotAllowed)
		return
	}
	db, err := s.newDB("backup")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	asOf, err := backup.ParseAsOf(r.URL.Query().Get("as_of"), db.Now())
	var since hlc.Timestamp
	if text := r.URL.Query().Get("since"); err == nil && text != "" {
		since, err = backup.ParseAsOf(text, db.Now())
	}
	if err == nil && !since.IsZero() && !since.Less(asOf) {
		err = fmt.Errorf("backup: as of %v does not follow the backup it builds on (as of %v)", asOf, since)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The Redis keyspace keeps no history: it is in a backup of now,
	// not in one as of a past time (docs/backup.md).
	var rk *backup.RedisKeyspace
	if s.redis != nil && r.URL.Query().Get("as_of") == "" {
		rk = s.redis(db)
	}
	header, err := json.Marshal(backup.Manifest{Format: backup.FormatVersion, Keyspace: backup.KeyspaceTxn,
		ClusterID: s.clusterID(), AsOf: asOf, AsOfTime: backup.WallTime(asOf), Since: since, Redis: rk != nil})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	enc := backup.NewEncoder(w)
	if err := enc.Header(header); err != nil {
		return
	}
	entries, err := backup.Export(r.Context(), db, asOf, enc, backup.ExportOptions{Since: since})
	if err == nil && rk != nil {
		var n uint64
		n, err = backup.ExportRedis(r.Context(), *rk, enc)
		entries += n
	}
	if err != nil {
		s.logger.Warn("backup failed", "as_of", asOf, "since", since, "entries", entries, "err", err)
		_ = enc.Fail(err.Error())
		return
	}
	if err := enc.End(); err != nil {
		s.logger.Warn("backup cut off", "as_of", asOf, "err", err)
		return
	}
	s.logger.Info("backup streamed", "as_of", asOf, "since", since, "entries", entries, "from", r.RemoteAddr)
}

// handleRestore serves POST /restore: a stream as GET /backup sends,
// written into the keyspace, which must be empty unless ?continue=1 (the
// later files of one restore, or a restore run again).
func (s *backupService) handleRestore(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST /restore", http.StatusMethodNotAllowed)
		return
	}
	db, err := s.newDB("restore")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	dec := backup.NewDecoder(r.Body)
	header, err := dec.Header()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var m backup.Manifest
	if err := json.Unmarshal(header, &m); err != nil || m.Format != backup.FormatVersion || m.Keyspace != backup.KeyspaceTxn {
		http.Error(w, fmt.Sprintf("a restore of format %d, keyspace %q: this node restores format %d, keyspace %q (%v)",
			m.Format, m.Keyspace, backup.FormatVersion, backup.KeyspaceTxn, err), http.StatusBadRequest)
		return
	}
	if m.Incremental() && r.URL.Query().Get("continue") != "1" {
		http.Error(w, fmt.Sprintf("an incremental backup (since %v) restores on top of the backup it builds on, not into a new cluster", m.Since), http.StatusBadRequest)
		return
	}
	var rk *backup.RedisKeyspace
	if s.redis != nil {
		rk = s.redis(db)
	}
	if m.Redis && rk == nil {
		http.Error(w, "the backup holds the Redis keyspace, and this node has none to restore it into", http.StatusBadRequest)
		return
	}
	if r.URL.Query().Get("continue") != "1" {
		empty, first, err := backup.Empty(r.Context(), db)
		if err == nil && empty && m.Redis {
			empty, first, err = backup.EmptyRedis(r.Context(), *rk)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if !empty {
			http.Error(w, fmt.Sprintf("%v: it holds %q (restore into a new cluster; orbit backup restore --into-nonempty writes over what is there)",
				backup.ErrNotEmpty, first), http.StatusConflict)
			return
		}
	}
	entries, err := backup.Import(r.Context(), db, dec, backup.ImportOptions{Redis: rk})
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, backup.ErrCorrupt) {
			status = http.StatusBadRequest
		}
		s.logger.Warn("restore failed", "cluster", m.ClusterID, "as_of", m.AsOf, "entries", entries, "err", err)
		http.Error(w, fmt.Sprintf("after %d entries: %v", entries, err), status)
		return
	}
	s.logger.Info("restored", "cluster", m.ClusterID, "as_of", m.AsOf, "since", m.Since, "entries", entries, "from", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(restoreReply{Entries: entries})
}

// backupCommand is `orbit backup create|restore|show`.
func backupCommand(args []string, stdout, stderr io.Writer) int {
	const usage = `usage:
  orbit backup create DEST [--as-of T] [--incremental-from PREV] [--addr HOST:PORT] [--certs-dir DIR] [--token T]
      write the cluster's transactional keyspace (SQL, actors, the Go API's keys,
      Redis ACL users and functions) as of T to DEST (new or empty), and, without
      --as-of, the Redis keyspace as it is now (each range at one moment, every
      transaction across ranges whole). T: now by default; a duration back ("-2h");
      an RFC 3339 time; or a manifest's as_of. T may be any time inside the
      cluster's history window (25 h by default); the Redis keyspace keeps no
      history, so a backup as of a past time holds none of it.
      --incremental-from PREV: only what changed since the backup PREV (itself
      full or incremental, taken inside the history window), deletions included;
      the Redis keyspace is held whole in each backup, and a restore of a chain
      writes the last one's
  orbit backup restore DEST [INCREMENTAL...] [--into-nonempty] [--addr HOST:PORT] [--certs-dir DIR] [--token T]
      verify every backup named (a full one, then its incrementals in order),
      then write them into the cluster (which must be empty unless --into-nonempty)
  orbit backup show DEST
      verify DEST and print its manifest
  DEST: a directory, or s3://BUCKET/PREFIX[?endpoint=HOST:PORT&region=R&insecure=1]
  (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; insecure=1: plain
  HTTP). --addr: a node's HTTP address (default 127.0.0.1:9090); --certs-dir: HTTPS,
  trusting DIR/ca.crt, presenting DIR/client.root.crt or node.crt; --token: the admin
  token (default $ORBIT_ADMIN_TOKEN). See docs/backup.md.`
	if len(args) < 1 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("backup "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:9090", "HTTP address of any node of the cluster")
	certsDir := fs.String("certs-dir", "", "HTTPS, trusting this directory's ca.crt")
	token := fs.String("token", os.Getenv("ORBIT_ADMIN_TOKEN"), "the cluster's admin token")
	asOf := fs.String("as-of", "", "the time the backup holds")
	from := fs.String("incremental-from", "", "the backup an incremental one builds on")
	nonEmpty := fs.Bool("into-nonempty", false, "restore into a cluster that holds data already")
	// Locations may come before the flags, as the usage shows them, or
	// after.
	var locs []string
	rest := args[1:]
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		locs, rest = append(locs, rest[0]), rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(stderr, "orbit backup %s: %v\n%s\n", sub, err, usage)
		return 2
	}
	locs = append(locs, fs.Args()...)
	if len(locs) == 0 || (sub != "restore" && len(locs) != 1) {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	web, err := operatorWeb(*certsDir, *token)
	if err != nil {
		fmt.Fprintf(stderr, "orbit backup %s: %v\n", sub, err)
		return 2
	}
	switch sub {
	case "create":
		m, err := createBackup(ctx, web, *addr, *asOf, *from, locs[0])
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup create: %v\n", oneLine(err))
			return 1
		}
		kind := "backup"
		if m.Incremental() {
			kind = fmt.Sprintf("incremental backup (since %v)", m.Since)
		}
		redisPart := "no Redis keyspace (a backup as of a past time)"
		if m.Redis {
			redisPart = fmt.Sprintf("%d of them the Redis keyspace's records", m.RedisEntries)
		}
		fmt.Fprintf(stdout, "%s of cluster %s as of %s (%s): %d entries (%s), %d bytes, %d files in %s\n",
			kind, m.ClusterID, m.AsOf, m.AsOfTime, m.Entries, redisPart, m.Bytes, len(m.Files), locs[0])
	case "restore":
		last, entries, err := restoreBackups(ctx, web, *addr, locs, *nonEmpty)
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup restore: %v\n", oneLine(err))
			return 1
		}
		fmt.Fprintf(stdout, "restored %d entries of cluster %s as of %s (%s) through %s\n", entries, last.ClusterID, last.AsOf, last.AsOfTime, *addr)
	case "show":
		loc, err := backup.ParseLocation(locs[0])
		var m backup.Manifest
		if err == nil {
			m, err = backup.Verify(ctx, loc)
		}
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup show: %v\n", oneLine(err))
			return 1
		}
		out, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(stdout, "%s\nverified: %d files, %d entries\n", out, len(m.Files), m.Entries)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	return 0
}

// createBackup streams GET /backup from addr into dest: everything, or
// with prev (a backup's location) what changed since prev's time.
func createBackup(ctx context.Context, web webClient, addr, asOf, prev, dest string) (backup.Manifest, error) {
	var base backup.Manifest
	path := "/backup?as_of=" + url.QueryEscape(asOf)
	if prev != "" {
		loc, err := backup.ParseLocation(prev)
		if err != nil {
			return base, err
		}
		if base, err = backup.Verify(ctx, loc); err != nil {
			return base, fmt.Errorf("--incremental-from %s: %w", prev, err)
		}
		path += "&since=" + url.QueryEscape(base.AsOf.String())
	}
	loc, err := backup.ParseLocation(dest)
	if err != nil {
		return backup.Manifest{}, err
	}
	out, err := backup.NewWriter(ctx, loc)
	if err != nil {
		return backup.Manifest{}, err
	}
	m, err := streamBackup(ctx, web, web.url(addr, path), out)
	if err == nil && prev != "" && m.ClusterID != base.ClusterID {
		err = fmt.Errorf("--incremental-from %s is a backup of cluster %s, not of %s", prev, base.ClusterID, m.ClusterID)
	}
	if err != nil {
		out.Abort()
		return m, err
	}
	return out.Close()
}

func streamBackup(ctx context.Context, web webClient, url string, out *backup.Writer) (backup.Manifest, error) {
	var m backup.Manifest
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return m, err
	}
	resp, err := web.do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return m, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(text)))
	}
	dec := backup.NewDecoder(resp.Body)
	header, err := dec.Header()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(header, &m); err != nil {
		return m, fmt.Errorf("%w: the node's header: %v", backup.ErrCorrupt, err)
	}
	out.Describe(m)
	for {
		en, ok, err := dec.Next()
		if err != nil {
			return m, err
		}
		if !ok {
			return m, nil
		}
		if err := out.Add(en); err != nil {
			return m, err
		}
	}
}

// restoreBackups verifies every backup at srcs (a full one, then the
// incrementals that follow it, in order) before it writes any, then
// posts their files to addr, one request each; it returns the last
// backup's manifest and the entries written.
func restoreBackups(ctx context.Context, web webClient, addr string, srcs []string, nonEmpty bool) (backup.Manifest, uint64, error) {
	var chain []backup.Manifest
	var locs []backup.Location
	for i, src := range srcs {
		loc, err := backup.ParseLocation(src)
		if err != nil {
			return backup.Manifest{}, 0, err
		}
		m, err := backup.Verify(ctx, loc)
		if err != nil {
			return m, 0, err
		}
		switch {
		case i == 0 && m.Incremental():
			return m, 0, fmt.Errorf("%s is an incremental backup (since %v): name the full backup it builds on first", src, m.Since)
		case i > 0 && !m.Incremental():
			return m, 0, fmt.Errorf("%s is a full backup: only incrementals follow the first", src)
		case i > 0 && (m.Since != chain[i-1].AsOf || m.ClusterID != chain[i-1].ClusterID):
			return m, 0, fmt.Errorf("%s (cluster %s, since %v) does not follow %s (cluster %s, as of %v)",
				src, m.ClusterID, m.Since, srcs[i-1], chain[i-1].ClusterID, chain[i-1].AsOf)
		}
		chain, locs = append(chain, m), append(locs, loc)
	}
	var restored uint64
	for i, m := range chain {
		// Each backup holds the Redis keyspace whole, as it was then:
		// only the last one's is written.
		last := i == len(chain)-1
		n, err := restoreOne(ctx, web, addr, locs[i], m, i > 0 || nonEmpty, !last)
		restored += n
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("%s: %w", srcs[i], err)
			}
			return m, restored, err
		}
	}
	return chain[len(chain)-1], restored, nil
}

// restoreOne posts one verified backup's files to addr; with skipRedis,
// without the Redis keyspace's records.
func restoreOne(ctx context.Context, web webClient, addr string, loc backup.Location, m backup.Manifest, nonEmpty, skipRedis bool) (uint64, error) {
	head := m
	head.Files, head.Entries, head.Bytes = nil, 0, 0 // a header says what, not how much
	header, err := json.Marshal(head)
	if err != nil {
		return 0, err
	}
	files := m.Files
	if len(files) == 0 {
		files = []backup.File{{}} // nothing to write, but the cluster is still checked
	}
	var restored uint64
	for i, f := range files {
		pr, pw := io.Pipe()
		skipped := make(chan uint64, 1) // once the stream's end is written
		go func() {
			enc := backup.NewEncoder(pw)
			err := enc.Header(header)
			var n uint64
			if err == nil && f.Name != "" {
				err = backup.ReadFile(ctx, loc, f, func(en backup.Entry) error {
					if en.Redis && skipRedis {
						n++
						return nil
					}
					return enc.Add(en)
				})
			}
			if err == nil {
				err = enc.End()
			}
			skipped <- n
			pw.CloseWithError(err)
		}()
		path := "/restore"
		if i > 0 || nonEmpty {
			path += "?continue=1"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, web.url(addr, path), pr)
		if err != nil {
			return restored, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := web.do(req)
		if err != nil {
			pr.CloseWithError(err)
			return restored, restoreStopped(i, restored, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		pr.CloseWithError(io.ErrClosedPipe) // the writer, if the node stopped reading early
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			if resp.StatusCode == http.StatusConflict {
				return restored, err // refused before writing anything
			}
			return restored, restoreStopped(i, restored, err)
		}
		var reply restoreReply
		if err := json.Unmarshal(body, &reply); err != nil {
			return restored, restoreStopped(i, restored, err)
		}
		if reply.Entries+<-skipped != f.Entries {
			return restored, restoreStopped(i, restored, fmt.Errorf("the node wrote %d entries of %s's %d", reply.Entries, f.Name, f.Entries))
		}
		restored += reply.Entries
	}
	return restored, nil
}

// restoreStopped says where a restore stopped and how to go on.
func restoreStopped(file int, restored uint64, err error) error {
	return fmt.Errorf("%w (stopped at data file %d, %d entries of the files before it written; run the restore again with --into-nonempty to finish it: an entry written twice has the effect of one)",
		err, file+1, restored)
}
