package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/adapters/respwire"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/storage"
)

// serveConfig is what `orbit serve` is told by its flags.
type serveConfig struct {
	nodeID    uint64
	dataDir   string
	redisAddr string
	httpAddr  string
	ranges    int
}

// serve runs `orbit serve` and returns the exit code: 0 after a graceful
// shutdown (SIGTERM, SIGINT), 1 on a failure, 2 on bad flags. Every error is
// one line on stderr, starting "orbit serve: ".
func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg serveConfig
	fs.Uint64Var(&cfg.nodeID, "node-id", 1, "this node's ID (non-zero)")
	fs.StringVar(&cfg.dataDir, "data-dir", "./orbit-data", "where the node keeps its data")
	fs.StringVar(&cfg.redisAddr, "redis-addr", "127.0.0.1:6379", "RESP (Redis protocol) listen address")
	fs.StringVar(&cfg.httpAddr, "http-addr", "127.0.0.1:9090", "HTTP listen address: /healthz, /readyz")
	fs.IntVar(&cfg.ranges, "ranges", 1, "number of ranges (spans of hash slots) on first start; fixed afterwards")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: orbit serve [flags]")
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "orbit serve: %v\n", err)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "orbit serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	case cfg.nodeID == 0:
		fmt.Fprintln(stderr, "orbit serve: --node-id must be non-zero")
		return 2
	case cfg.ranges < 1 || cfg.ranges > redis.SlotCount:
		fmt.Fprintf(stderr, "orbit serve: --ranges must be between 1 and %d\n", redis.SlotCount)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runServer(ctx, cfg, logger, nil); err != nil {
		fmt.Fprintf(stderr, "orbit serve: %v\n", err)
		return 1
	}
	return 0
}

// listening, if set, hears the addresses actually bound (tests use port 0).
type listening func(redisAddr, httpAddr string)

// runServer serves until ctx ends, then shuts down gracefully.
func runServer(ctx context.Context, cfg serveConfig, logger *slog.Logger, onListen listening) error {
	id := kernel.NodeID(cfg.nodeID)
	// Ports first: a busy port is the likeliest mistake, and costs nothing
	// to find before the data directory is opened.
	httpLn, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return respwire.ListenError(cfg.httpAddr, err)
	}
	defer httpLn.Close()

	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// Pebble's informational lines (WAL replay, ...) only at debug level.
	storageLog := slog.New(&minLevel{Handler: logger.Handler(), min: slog.LevelWarn}).With("component", "storage")
	eng, err := storage.Open(vfs.Default, cfg.dataDir, storage.Options{Logger: storageLog})
	if err != nil {
		return fmt.Errorf("opening %s: %w", cfg.dataDir, err)
	}
	engClosed := false
	defer func() {
		if !engClosed {
			eng.Close()
		}
	}()
	if err := claim(eng, cfg); err != nil {
		return err
	}
	layout, err := consensus.NewLayout(redis.SlotSplits(cfg.ranges), []kernel.NodeID{id}, 1)
	if err != nil {
		return err
	}

	rt := prod.New(prod.Options{NodeID: id, Logger: logger})
	rtStopped := false
	defer func() {
		if !rtStopped {
			rt.Stop()
		}
	}()
	sess := session.New(session.Options{
		Runtime: rt, Layout: layout,
		Info: []string{
			"process_id:" + strconv.Itoa(os.Getpid()),
			"tcp_addr:" + cfg.redisAddr,
			"orbit_data_dir:" + cfg.dataDir,
		},
	})
	if _, err := consensus.Open(rt, eng, layout, consensus.Options{
		StateMachine: sess.StateMachine(),
		BecameLeader: sess.BecameLeader,
	}); err != nil {
		return fmt.Errorf("starting consensus: %w", err)
	}
	wire, err := respwire.Listen(respwire.Options{Addr: cfg.redisAddr, Session: sess, Runtime: rt, Logger: logger.With("component", "resp")})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !sess.Ready() {
			http.Error(w, "not ready: waiting for every range to elect a leader and take a write", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(httpLn) }()
	go wire.Serve()
	if onListen != nil {
		onListen(wire.Addr().String(), httpLn.Addr().String())
	}
	logger.Info("orbit serve: listening", "redis", wire.Addr().String(), "http", httpLn.Addr().String(),
		"node", cfg.nodeID, "data", cfg.dataDir, "ranges", cfg.ranges)

	startCtx, cancelStart := rt.WithCancel(context.Background())
	go func() {
		if err := sess.Start(startCtx); err == nil {
			logger.Info("orbit serve: ready")
		}
	}()

	<-ctx.Done()
	logger.Info("orbit serve: shutting down")
	cancelStart()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	wire.Shutdown(sctx)
	rt.Stop()
	rtStopped = true
	engClosed = true
	if err := eng.Close(); err != nil {
		// consensus.Store has no Close yet: the view each replica keeps for
		// sending snapshots is never released, and Pebble reports it (after
		// closing everything else). Every acknowledged write is in the
		// synced log, so nothing is lost.
		if !strings.Contains(err.Error(), "leaked snapshots") {
			return fmt.Errorf("closing storage: %w", err)
		}
		logger.Debug("orbit serve: storage closed with consensus snapshot views open", "err", err)
	}
	logger.Info("orbit serve: stopped")
	return nil
}

// claim checks that the data directory is this node's (storage.Ident), or
// makes it so on first start, and that it was bootstrapped with the same
// number of ranges.
func claim(eng *storage.Engine, cfg serveConfig) error {
	ident, err := eng.Ident()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b := eng.NewBatch()
		b.SetIdent(storage.Ident{ClusterID: rand.Uint64() | 1, NodeID: kernel.NodeID(cfg.nodeID)})
		if err := b.Commit(true); err != nil {
			return fmt.Errorf("claiming %s: %w", cfg.dataDir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", cfg.dataDir, err)
	case uint64(ident.NodeID) != cfg.nodeID:
		return fmt.Errorf("data directory %s belongs to node %d of cluster %x, not node %d", filepath.Clean(cfg.dataDir), ident.NodeID, ident.ClusterID, cfg.nodeID)
	}
	ids, err := eng.RangeIDs()
	if err != nil {
		return fmt.Errorf("reading %s: %w", cfg.dataDir, err)
	}
	if len(ids) > 0 && len(ids) != cfg.ranges {
		return fmt.Errorf("data directory %s holds %d ranges, not %d: start with --ranges %d", filepath.Clean(cfg.dataDir), len(ids), cfg.ranges, len(ids))
	}
	return nil
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h *minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return &minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return &minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
