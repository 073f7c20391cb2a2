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
	logger    *slog.Logger
}

// restoreReply is what POST /restore answers.
type restoreReply struct {
	Pairs uint64 `json:"pairs"`
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
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	header, err := json.Marshal(backup.Manifest{Format: backup.FormatVersion, Keyspace: backup.KeyspaceTxn,
		ClusterID: s.clusterID(), AsOf: asOf, AsOfTime: backup.WallTime(asOf)})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	enc := backup.NewEncoder(w)
	if err := enc.Header(header); err != nil {
		return
	}
	pairs, err := backup.Export(r.Context(), db, asOf, enc, backup.ExportOptions{})
	if err != nil {
		s.logger.Warn("backup failed", "as_of", asOf, "pairs", pairs, "err", err)
		_ = enc.Fail(err.Error())
		return
	}
	if err := enc.End(); err != nil {
		s.logger.Warn("backup cut off", "as_of", asOf, "err", err)
		return
	}
	s.logger.Info("backup streamed", "as_of", asOf, "pairs", pairs, "from", r.RemoteAddr)
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
	if r.URL.Query().Get("continue") != "1" {
		empty, first, err := backup.Empty(r.Context(), db)
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
	pairs, err := backup.Import(r.Context(), db, dec, backup.ImportOptions{})
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, backup.ErrCorrupt) {
			status = http.StatusBadRequest
		}
		s.logger.Warn("restore failed", "cluster", m.ClusterID, "as_of", m.AsOf, "pairs", pairs, "err", err)
		http.Error(w, fmt.Sprintf("after %d pairs: %v", pairs, err), status)
		return
	}
	s.logger.Info("restored", "cluster", m.ClusterID, "as_of", m.AsOf, "pairs", pairs, "from", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(restoreReply{Pairs: pairs})
}

// backupCommand is `orbit backup create|restore|show`.
func backupCommand(args []string, stdout, stderr io.Writer) int {
	const usage = `usage:
  orbit backup create DEST [--as-of T] [--addr HOST:PORT] [--certs-dir DIR] [--token T]
      write the cluster's transactional keyspace (SQL, actors, the Go API's keys,
      Redis ACL users and functions) as of T to DEST (new or empty). T: now by
      default; a duration back ("-2h"); an RFC 3339 time; or a manifest's as_of.
      T may be any time inside the cluster's history window (25 h by default).
  orbit backup restore DEST [--into-nonempty] [--addr HOST:PORT] [--certs-dir DIR] [--token T]
      verify every file of DEST, then write it into the cluster (which must be
      empty unless --into-nonempty)
  orbit backup show DEST
      verify DEST and print its manifest
  DEST: a directory, or s3://BUCKET/PREFIX[?endpoint=HOST:PORT&region=R&insecure=1]
  (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; insecure=1: plain
  HTTP). --addr: a node's HTTP address (default 127.0.0.1:9090); --certs-dir: HTTPS,
  trusting DIR/ca.crt, presenting DIR/client.root.crt or node.crt; --token: the admin
  token (default $ORBIT_ADMIN_TOKEN). Redis keys are not in a backup yet (docs/backup.md).`
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
	nonEmpty := fs.Bool("into-nonempty", false, "restore into a cluster that holds data already")
	// Flags may follow DIR, as the usage shows them.
	var dir string
	rest := args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		dir, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		fmt.Fprintf(stderr, "orbit backup %s: %v\n%s\n", sub, err, usage)
		return 2
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() != 0 || dir == "" {
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
		m, err := createBackup(ctx, web, *addr, *asOf, dir)
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup create: %v\n", oneLine(err))
			return 1
		}
		fmt.Fprintf(stdout, "backup of cluster %s as of %s (%s): %d pairs, %d bytes, %d files in %s\n",
			m.ClusterID, m.AsOf, m.AsOfTime, m.Pairs, m.Bytes, len(m.Files), dir)
	case "restore":
		m, err := restoreBackup(ctx, web, *addr, dir, *nonEmpty)
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup restore: %v\n", oneLine(err))
			return 1
		}
		fmt.Fprintf(stdout, "restored %d pairs of cluster %s as of %s (%s) through %s\n", m.Pairs, m.ClusterID, m.AsOf, m.AsOfTime, *addr)
	case "show":
		loc, err := backup.ParseLocation(dir)
		var m backup.Manifest
		if err == nil {
			m, err = backup.Verify(ctx, loc)
		}
		if err != nil {
			fmt.Fprintf(stderr, "orbit backup show: %v\n", oneLine(err))
			return 1
		}
		out, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(stdout, "%s\nverified: %d files, %d pairs\n", out, len(m.Files), m.Pairs)
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	return 0
}

// createBackup streams GET /backup from addr into dest.
func createBackup(ctx context.Context, web webClient, addr, asOf, dest string) (backup.Manifest, error) {
	loc, err := backup.ParseLocation(dest)
	if err != nil {
		return backup.Manifest{}, err
	}
	out, err := backup.NewWriter(ctx, loc)
	if err != nil {
		return backup.Manifest{}, err
	}
	m, err := streamBackup(ctx, web, addr, asOf, out)
	if err != nil {
		out.Abort()
		return m, err
	}
	return out.Close()
}

func streamBackup(ctx context.Context, web webClient, addr, asOf string, out *backup.Writer) (backup.Manifest, error) {
	var m backup.Manifest
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, web.url(addr, "/backup?as_of="+url.QueryEscape(asOf)), nil)
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
		k, v, ok, err := dec.Next()
		if err != nil {
			return m, err
		}
		if !ok {
			return m, nil
		}
		if err := out.Pair(k, v); err != nil {
			return m, err
		}
	}
}

// restoreBackup verifies the backup at src, then posts its files to
// addr, one request each.
func restoreBackup(ctx context.Context, web webClient, addr, src string, nonEmpty bool) (backup.Manifest, error) {
	loc, err := backup.ParseLocation(src)
	if err != nil {
		return backup.Manifest{}, err
	}
	m, err := backup.Verify(ctx, loc)
	if err != nil {
		return m, err
	}
	header, err := json.Marshal(backup.Manifest{Format: m.Format, Keyspace: m.Keyspace, ClusterID: m.ClusterID, AsOf: m.AsOf, AsOfTime: m.AsOfTime})
	if err != nil {
		return m, err
	}
	files := m.Files
	if len(files) == 0 {
		files = []backup.File{{}} // nothing to write, but the cluster is still checked
	}
	var restored uint64
	for i, f := range files {
		pr, pw := io.Pipe()
		go func() {
			enc := backup.NewEncoder(pw)
			err := enc.Header(header)
			if err == nil && f.Name != "" {
				err = backup.ReadFile(ctx, loc, f, enc.Pair)
			}
			if err == nil {
				err = enc.End()
			}
			pw.CloseWithError(err)
		}()
		path := "/restore"
		if i > 0 || nonEmpty {
			path += "?continue=1"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, web.url(addr, path), pr)
		if err != nil {
			return m, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := web.do(req)
		if err != nil {
			pr.CloseWithError(err)
			return m, restoreStopped(i, restored, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		pr.CloseWithError(io.ErrClosedPipe) // the writer, if the node stopped reading early
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
			if resp.StatusCode == http.StatusConflict {
				return m, err // refused before writing anything
			}
			return m, restoreStopped(i, restored, err)
		}
		var reply restoreReply
		if err := json.Unmarshal(body, &reply); err != nil {
			return m, restoreStopped(i, restored, err)
		}
		if reply.Pairs != f.Pairs {
			return m, restoreStopped(i, restored, fmt.Errorf("the node wrote %d pairs of %s's %d", reply.Pairs, f.Name, f.Pairs))
		}
		restored += reply.Pairs
	}
	return m, nil
}

// restoreStopped says where a restore stopped and how to go on.
func restoreStopped(file int, restored uint64, err error) error {
	return fmt.Errorf("%w (stopped at data file %d, %d pairs of the files before it written; run the restore again with --into-nonempty to finish it: a pair written twice holds the same value)",
		err, file+1, restored)
}
