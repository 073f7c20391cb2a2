package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/orbitkernel/orbit/adapters/pgwire"
	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/adapters/respwire"
	"github.com/orbitkernel/orbit/backup"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/internal/cmem"
	"github.com/orbitkernel/orbit/internal/listen"
	"github.com/orbitkernel/orbit/internal/powerloss"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/grpcnet"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/kernel/node"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/query"
	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// serveConfig is what `orbit serve` is told by its flags.
type serveConfig struct {
	nodeID    uint64
	dataDir   string
	redisAddr string
	httpAddr  string
	// pgAddr is the PostgreSQL wire listen address ("": none).
	pgAddr string
	// pgAuth is how SQL clients authenticate: "trust" or "scram".
	pgAuth string
	// actors names the example actor applications the node hosts
	// (actorApps); grpcAddr is the actor service's listen address ("":
	// defaultGRPCAddr when actors is set, else none; "off": none).
	actors         string
	grpcAddr       string
	actorLease     time.Duration
	actorPlacement string
	ranges         int
	// Multi-node clusters: peers ("1=host:port,..."), the gRPC listen
	// address (default: this node's entry in peers), the replicas of each
	// range, and the cluster ID (0: derived from the layout).
	peers     string
	peerAddr  string
	replicas  int
	clusterID uint64
	join      string
	// statefulSet, podHost and peerPort: run as a StatefulSet's pod
	// (statefulset.go; deploy/k8s).
	statefulSet int
	podHost     string
	peerPort    int
	// pprof serves Go's profiles under /debug/pprof/ on the HTTP address.
	pprof bool
	// cacheMB and memtableMB size Pebble's block cache and memtables.
	cacheMB, memtableMB int
	// splitMB is consensus.Options.SplitBytes in MiB (0: off); mergeKB
	// consensus.Options.MergeBytes in KiB (0: off; -1: mergeBytes's
	// default).
	splitMB, mergeKB int
	// splitQPS is consensus.Options.SplitQPS (0: off; -1: splitQPS's
	// default).
	splitQPS int
	// maxClockDrift and noLeases set leader leases
	// (consensus.Options.MaxClockDrift, DisableLeases).
	maxClockDrift float64
	noLeases      bool
	// maxClockOffset is the bound on two nodes' clocks' distance that
	// transactions rely on (node.Options.MaxClockOffset; kernel/hlc).
	maxClockOffset time.Duration
	// historyWindow is how long old versions stay readable
	// (cluster.Record.HistoryWindow; 0: the cluster's, or the default on
	// first start).
	historyWindow time.Duration
	// rebalanceInterval and deadAfter drive the rebalancer
	// (cluster.Options.RebalanceInterval, DeadAfter).
	rebalanceInterval, deadAfter time.Duration
	// testFaults enables test-only fault injection: POST /test/clock, and
	// a disk that loses unsynced writes at SIGKILL (internal/powerloss).
	testFaults bool
	// testClockOffset starts the node with its clock shifted (test only,
	// with testFaults): a node that starts with a wrong clock.
	testClockOffset time.Duration
	// certsDir, if set, serves every listener over TLS (tls.go); insecure
	// allows plaintext listeners off loopback. At most one of the two.
	certsDir string
	insecure bool
	// adminToken, if set, is the bearer token that lets a client without
	// a certificate of the cluster's CA use the admin endpoints (and
	// what this node sends when it joins; adminauth.go).
	adminToken string
}

const serveUsage = `usage: orbit serve [flags]

With no flags: a single-node cluster, data in ./orbit-data, RESP on
127.0.0.1:6379, HTTP (/metrics, /healthz, /readyz, /cluster) on 127.0.0.1:9090.

A multi-node cluster: start every node with the same --peers (and --ranges,
--replicas), each with its own --node-id, data directory and listen
addresses. The layout (ranges on hash-slot splits, --replicas replicas each,
all nodes when fewer) and the cluster ID derive from these flags, identically
on every node; a node of another cluster is refused. Clients may connect to
any node. Example (what "make cluster" runs):

  orbit serve --node-id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
      --data-dir orbit-data/node1 --redis-addr 127.0.0.1:6379 --http-addr 127.0.0.1:9090

A node joins a running cluster through any node's HTTP address, and leaves
with "orbit node remove ID":

  orbit serve --node-id 4 --join 127.0.0.1:9090 --peer-addr 127.0.0.1:7004 \
      --data-dir orbit-data/node4 --redis-addr 127.0.0.1:6382 --http-addr 127.0.0.1:9093

After the first start the data directory's record of the cluster wins over
--peers, --ranges and --replicas (which must still agree with it); --peers
addresses still decide how this node reaches the nodes they name.

TLS (docs/security.md): --certs-dir DIR, made with "orbit cert", serves RESP
and HTTP over TLS and links nodes with mutual TLS; SIGHUP reloads DIR.
Without it every listen address must be on loopback, unless --insecure.

Flags:
`

// drainTimeout bounds how long a stopping node waits to hand its ranges'
// leadership over (a hand-over takes a round trip or two; a voter that
// must catch up first, up to consensus's 2 s hand-over bound).
const drainTimeout = 3 * time.Second

// defaultSplitMB is --split-mb's default. Smaller than CockroachDB's 512
// MiB: a snapshot is assembled in the receiver's memory
// (docs/consensus.md, "Next steps"), and a range is the unit a joining
// node catches up by and a leader's ReadIndex serves, so more, smaller
// ranges spread a node's load sooner.
const defaultSplitMB = 16

// mergeBytes is consensus.Options.MergeBytes for cfg: --merge-kb, or by
// default a sixteenth of the split size (a merged range is far from
// splitting again), at most consensus.MaxMergeBytes.
func mergeBytes(cfg serveConfig) int64 {
	if cfg.mergeKB >= 0 {
		return int64(cfg.mergeKB) << 10
	}
	return min(int64(cfg.splitMB)<<20/16, consensus.MaxMergeBytes)
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
	fs.StringVar(&cfg.pgAddr, "pg-addr", "127.0.0.1:5432", "PostgreSQL wire protocol listen address (SQL: psql, pgx, pgbench); empty: no SQL listener")
	fs.StringVar(&cfg.pgAuth, "pg-auth", "trust", "how SQL clients authenticate: trust (any role that may log in) or scram (SCRAM-SHA-256 against the role's password: set it first, e.g. ALTER ROLE postgres PASSWORD '...')")
	fs.StringVar(&cfg.actors, "actors", "", "host the actor types of these example applications (comma-separated; \"bank\": examples/bank's account actor); every node of a cluster should host the same")
	fs.DurationVar(&cfg.actorLease, "actor-lease", 5*time.Second, "how long an actor's activation keeps other nodes from taking it over after its last renewal: a killed node's actors are unavailable that long (a node stopped with SIGTERM hands them over at once)")
	fs.StringVar(&cfg.actorPlacement, "actor-placement", "random", "where a call for an actor nobody hosts activates it: random, local (this node), hash (by the actor's name) or least-loaded (the host with fewest activations)")
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", "", "gRPC listen address of the actor service (orbit.actor.v1.ActorService, orbit actor call); default "+defaultGRPCAddr+" when --actors is set, else none; \"off\": none")
	fs.StringVar(&cfg.httpAddr, "http-addr", "127.0.0.1:9090", "HTTP listen address: /metrics, /healthz, /readyz, /cluster, POST /join and /remove (membership), POST /split, /merge and /transfer (range operations)")
	fs.IntVar(&cfg.ranges, "ranges", 0, "number of ranges (spans of hash slots) on first start; they split from there (--split-mb); 0: one per node")
	fs.IntVar(&cfg.splitMB, "split-mb", defaultSplitMB, "split a range whose data exceeds this many MiB, at a hash-slot boundary near its middle; 0: never split")
	fs.IntVar(&cfg.mergeKB, "merge-kb", -1, "merge a range that split off by size back into its left neighbour once both hold at most this many KiB and it took no write for 2 s; -1: a sixteenth of --split-mb, at most 1024; 0: never")
	fs.StringVar(&cfg.peers, "peers", "", "every node of the cluster, this one included, as `ID=HOST:PORT,...` (their gRPC addresses); empty: a single node")
	fs.StringVar(&cfg.peerAddr, "peer-addr", "", "gRPC listen address for the other nodes; default: this node's address in --peers")
	fs.IntVar(&cfg.replicas, "replicas", 3, "replicas of each range (all nodes when there are fewer)")
	fs.Uint64Var(&cfg.clusterID, "cluster-id", 0, "the cluster's ID, the same on every node; 0: derived from --peers, --ranges and --replicas")
	fs.StringVar(&cfg.join, "join", "", "join the running cluster of the node at this HTTP `ADDR` (first start: learn the cluster from it; every start: ask it to add this node, which is idempotent); needs --peer-addr")
	fs.IntVar(&cfg.cacheMB, "cache-mb", 128, "Pebble's block cache, in MiB (reads that miss it go to the disk)")
	fs.IntVar(&cfg.memtableMB, "memtable-mb", 16, "Pebble's memtable size, in MiB (a full one is flushed to an sstable)")
	fs.Float64Var(&cfg.maxClockDrift, "max-clock-drift", consensus.DefaultMaxClockDrift, "the most any node's clock may run fast or slow, as a fraction (0.05: 5%); leader leases are shortened to stay safe within it")
	fs.IntVar(&cfg.splitQPS, "split-qps", -1, "split a range whose leader serves more requests a second than this, at a key that divides them (0: never; -1: 2500 when the cluster has other nodes, never on a single node, where every leader is on the one node anyway)")
	fs.DurationVar(&cfg.rebalanceInterval, "rebalance-interval", cluster.DefaultRebalanceInterval, "how often each node's rebalancer looks at the ranges it leads: replaces replicas on dead or removed nodes, evens out replicas and leaderships (0: never)")
	fs.DurationVar(&cfg.deadAfter, "dead-after", cluster.DefaultDeadAfter, "how long a node may stay silent before its replicas are replaced on live nodes (at least 6s)")
	fs.DurationVar(&cfg.historyWindow, "history-window", 0, "how long old versions of SQL rows, actor state and transactional keys stay readable: the reach of orbit backup --as-of (point-in-time restore), and how long garbage collection waits; set when the cluster starts (default 25h), the same on every node, fixed after (a restart with another value is refused)")
	fs.DurationVar(&cfg.maxClockOffset, "max-clock-offset", hlc.DefaultMaxOffset, "the most two nodes' clocks may be apart: transactions' uncertainty windows are this wide; a node whose clock is beyond 90% of it from a majority of its peers' fences itself (no transaction timestamps, no leased reads, its leaderships handed over) until it is back, and no node's clock follows a step of its wall clock larger than half of it. Every node of a cluster must use the same value")
	fs.BoolVar(&cfg.noLeases, "no-leases", false, "serve every read through a ReadIndex round instead of under a leader lease (for clocks that cannot promise --max-clock-drift)")
	fs.BoolVar(&cfg.pprof, "pprof", false, "serve Go's profiles (net/http/pprof) under /debug/pprof/ on --http-addr")
	fs.StringVar(&cfg.certsDir, "certs-dir", "", "serve over TLS with the certificates in `DIR` (ca.crt, node.crt, node.key; see orbit cert): RESP and HTTP take TLS clients (a client certificate is optional, verified when given), nodes link with mutual TLS; SIGHUP reloads them")
	fs.BoolVar(&cfg.insecure, "insecure", false, "allow plaintext listeners on addresses other than loopback (a trusted network only); without it and without --certs-dir, every listen address must be 127.0.0.0/8, ::1 or localhost")
	fs.StringVar(&cfg.adminToken, "admin-token", os.Getenv("ORBIT_ADMIN_TOKEN"), "the bearer token the admin endpoints (POST /join, /remove, /split, /merge, /transfer) require of a client without a certificate of the cluster's CA; this node sends it when it joins (default $ORBIT_ADMIN_TOKEN). Without it and without --certs-dir they are open to whoever reaches --http-addr")
	fs.IntVar(&cfg.statefulSet, "statefulset", 0, "run as pod $POD_NAME (NAME-ORDINAL) of a Kubernetes StatefulSet whose first `N` pods form the cluster (deploy/k8s): the node ID is the ordinal plus one; pods 0 to N-1 are --peers, later pods --join pod 0")
	fs.StringVar(&cfg.podHost, "pod-host", "", "with --statefulset: a pod's host name with %d for its ordinal (default NAME-%d.NAME: the headless Service named after the set)")
	fs.IntVar(&cfg.peerPort, "peer-port", 7000, "with --statefulset: the gRPC port the pods link on")
	fs.DurationVar(&cfg.testClockOffset, "test-clock-offset", 0, "TEST ONLY (needs --test-faults): start with this node's clock shifted by this much, as a node whose clock is wrong when it starts")
	fs.BoolVar(&cfg.testFaults, "test-faults", false, "TEST ONLY (the Jepsen harness): serve POST /test/clock?offset=DURATION, which shifts this node's clock, and keep unsynced disk writes in memory so that SIGKILL loses them like a power cut; never in production")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprint(stderr, serveUsage)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "orbit serve: %v\n", err)
		return 2
	}
	if cfg.statefulSet > 0 {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if err := cfg.fromStatefulSet(os.Getenv("POD_NAME"), given); err != nil {
			fmt.Fprintf(stderr, "orbit serve: %v\n", err)
			return 2
		}
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "orbit serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	case cfg.splitMB < 0 || cfg.splitMB > 4096:
		fmt.Fprintln(stderr, "orbit serve: --split-mb must be between 0 (never split) and 4096")
		return 2
	case cfg.mergeKB > 0 && (int64(cfg.mergeKB)<<10 > consensus.MaxMergeBytes || int64(cfg.mergeKB)<<10 > int64(cfg.splitMB)<<20/4):
		fmt.Fprintf(stderr, "orbit serve: --merge-kb must be at most %d and at most a quarter of --split-mb (merged ranges must not split again)\n", consensus.MaxMergeBytes>>10)
		return 2
	case cfg.mergeKB < -1:
		fmt.Fprintln(stderr, "orbit serve: --merge-kb must be -1 (a sixteenth of --split-mb), 0 (never merge) or a size in KiB")
		return 2
	case cfg.cacheMB < 1 || cfg.memtableMB < 1 || cfg.memtableMB >= 4096:
		fmt.Fprintln(stderr, "orbit serve: --cache-mb must be at least 1, and --memtable-mb between 1 and 4095")
		return 2
	case cfg.testClockOffset != 0 && !cfg.testFaults:
		fmt.Fprintln(stderr, "orbit serve: --test-clock-offset needs --test-faults")
		return 2
	case cfg.maxClockOffset < 10*time.Millisecond:
		fmt.Fprintln(stderr, "orbit serve: --max-clock-offset must be at least 10ms")
		return 2
	case cfg.historyWindow != 0 && cfg.historyWindow < time.Minute:
		fmt.Fprintln(stderr, "orbit serve: --history-window must be at least 1m")
		return 2
	case !(cfg.maxClockDrift > 0 && cfg.maxClockDrift <= 0.2):
		fmt.Fprintln(stderr, "orbit serve: --max-clock-drift must be above 0 and at most 0.2 (20%); use --no-leases for clocks that cannot promise a bound")
		return 2
	case cfg.splitQPS < -1:
		fmt.Fprintln(stderr, "orbit serve: --split-qps must be -1 (the default), 0 (never) or a rate")
		return 2
	case cfg.rebalanceInterval < 0 || cfg.deadAfter < 6*time.Second:
		fmt.Fprintln(stderr, "orbit serve: --rebalance-interval must not be negative (0: never) and --dead-after at least 6s")
		return 2
	case cfg.nodeID == 0 || cfg.nodeID > 1<<32-1:
		fmt.Fprintln(stderr, "orbit serve: --node-id must be between 1 and 4294967295")
		return 2
	case cfg.certsDir != "" && cfg.insecure:
		fmt.Fprintln(stderr, "orbit serve: --certs-dir and --insecure contradict each other: give one")
		return 2
	case cfg.join != "":
		if _, _, err := net.SplitHostPort(cfg.join); err != nil {
			fmt.Fprintf(stderr, "orbit serve: --join %q: give a node's HTTP address as HOST:PORT\n", cfg.join)
			return 2
		}
	}
	if _, err := cfg.spec(); err != nil {
		fmt.Fprintf(stderr, "orbit serve: %v\n", err)
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

// spec checks the cluster flags and computes the cluster's shape.
func (cfg serveConfig) spec() (clusterSpec, error) {
	peers, err := parsePeers(cfg.peers)
	if err != nil {
		return clusterSpec{}, err
	}
	if cfg.peerAddr != "" && len(peers) == 0 && cfg.join == "" {
		return clusterSpec{}, errors.New("--peer-addr needs --peers or --join")
	}
	return newClusterSpec(kernel.NodeID(cfg.nodeID), peers, cfg.ranges, cfg.replicas, cfg.historyWindow, cfg.clusterID)
}

// listening, if set, hears the addresses actually bound (tests use port
// 0).
type listening func(boundAddrs)

// boundAddrs are a server's listen addresses; pg and grpc are "" without
// a SQL listener or an actor service.
type boundAddrs struct{ redis, http, pg, grpc string }

// runServer serves until ctx ends, then shuts down gracefully: the wire
// first (commands in flight finish), then the consensus store (releasing
// its hold on the engine), the runtime, the transport, and the engine.
func runServer(ctx context.Context, cfg serveConfig, logger *slog.Logger, onListen listening) error {
	mutation := plantedBug() // test builds only; before anything runs
	id := kernel.NodeID(cfg.nodeID)
	spec, err := cfg.spec()
	if err != nil {
		return err
	}
	pinned, _ := parsePeers(cfg.peers) // checked by cfg.spec
	flagPeer, peerFlag := cfg.peerAddr, "--peer-addr"
	if flagPeer == "" {
		flagPeer, peerFlag = pinned[id], fmt.Sprintf("--peers (node %d)", id)
	}
	if cfg.pgAuth != "" && cfg.pgAuth != "trust" && cfg.pgAuth != "scram" {
		return fmt.Errorf("--pg-auth %q: want trust or scram", cfg.pgAuth)
	}
	actorTypes, err := actorApps(cfg.actors, cfg.actorLease)
	if err != nil {
		return err
	}
	grpcAddr := cfg.actorServiceAddr()
	placement, err := actorPlacement(cfg.actorPlacement)
	if err != nil {
		return err
	}
	for _, e := range []error{cfg.checkExposure("--redis-addr", cfg.redisAddr), cfg.checkExposure("--grpc-addr", grpcAddr),
		cfg.checkExposure("--http-addr", cfg.httpAddr), cfg.checkExposure("--pg-addr", cfg.pgAddr), cfg.checkExposure(peerFlag, flagPeer)} {
		if e != nil {
			return e
		}
	}
	certs, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	// Ports first: a busy port is the likeliest mistake, and costs nothing
	// to find before the data directory is opened.
	httpLn, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return listen.Error(cfg.httpAddr, err)
	}
	defer httpLn.Close()

	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// Pebble's informational lines (WAL replay, ...) only at debug level.
	storageLog := slog.New(&minLevel{Handler: logger.Handler(), min: slog.LevelWarn}).With("component", "storage")
	disk := vfs.Default
	if cfg.testFaults {
		// Unsynced writes stay in this process until synced: SIGKILL then
		// loses them as a power cut would (internal/powerloss).
		disk = powerloss.FS(disk)
	}
	cmem.LimitArenas(cArenas)
	go releaseFreedMemory(ctx)
	eng, err := storage.Open(disk, cfg.dataDir, storage.Options{Logger: storageLog,
		BlockCacheBytes: int64(cfg.cacheMB) << 20, MemTableBytes: uint64(cfg.memtableMB) << 20})
	if err != nil {
		return fmt.Errorf("opening %s: %w", cfg.dataDir, err)
	}
	stopGC := startGCPace(ctx, func() uint64 { return eng.Memory().Held() })
	engClosed := false
	defer func() {
		if !engClosed {
			stopGC()
			eng.Close()
		}
	}()
	rec, err := openCluster(ctx, eng, cfg, spec, certs.web(cfg.adminToken))
	if err != nil {
		return err
	}
	spec = recordSpec(rec)
	layout, err := node.RecordLayout(rec)
	if err != nil {
		return err
	}

	// Nodes talk over gRPC when the cluster has (or may get) more than
	// this node: --peers or --join, or a record naming other nodes.
	// This node's gRPC address: --peer-addr, else its entry in --peers,
	// else the one it had.
	var tr *grpcnet.Transport
	rtOpts := prod.Options{NodeID: id, Logger: logger}
	advertise := flagPeer
	if advertise == "" {
		advertise = rec.Nodes[id].Addr
	}
	if len(rec.Nodes) > 1 || advertise != "" {
		if advertise == "" {
			return errors.New("this node's cluster has other nodes: give its gRPC address with --peer-addr")
		}
		if err := cfg.checkExposure("the gRPC address recorded in "+cfg.dataDir+" (--peer-addr)", advertise); flagPeer == "" && err != nil {
			return err
		}
		tr, err = grpcnet.New(grpcnet.Options{
			Self: id, Listen: advertise, ClusterID: spec.id,
			BackoffMax: time.Second, // a restarted peer is back within a second
			Logger:     logger,
			ServerTLS:  certs.peerServer(), ClientTLS: certs.peerClient(),
		})
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) {
				return listen.Error(advertise, op)
			}
			return fmt.Errorf("peer transport: %w", err)
		}
		defer tr.Close()
		rtOpts.Net = tr
	}
	rt := prod.New(rtOpts)
	if cfg.testClockOffset != 0 {
		rt.SetClockOffset(cfg.testClockOffset)
		logger.Warn("orbit serve: TEST FAULT: starting with the clock shifted", "offset", cfg.testClockOffset)
	}
	rtStopped := false
	defer func() {
		if !rtStopped {
			rt.Stop()
		}
	}()
	m := newMetrics()
	m.authLog = &authFailures{counter: m.authFailures, logger: logger}
	var pubsubNet kernel.Network
	if tr != nil {
		pubsubNet = rt.Net()
	}
	clusterOpts := cluster.Options{Pinned: pinned, Standalone: tr == nil,
		RebalanceInterval: rebalanceInterval(cfg), DeadAfter: cfg.deadAfter,
		Logger: logger.With("component", "cluster")}
	if tr != nil {
		clusterOpts.Connect = func(n kernel.NodeID, addr string) error {
			if err := tr.SetPeer(n, addr); err != nil && !errors.Is(err, grpcnet.ErrClosed) {
				return err
			}
			return nil
		}
	}
	nd, err := node.Open(rt, node.Options{
		Engine: eng, Layout: layout, Record: rec, Cluster: clusterOpts, Logger: logger,
		MaxClockOffset: cfg.maxClockOffset,
		Txn:            txn.Options{GCTTL: historyWindow(rec)},
		Consensus: consensus.Options{
			SplitBytes:    int64(cfg.splitMB) << 20,
			MergeBytes:    mergeBytes(cfg),
			SplitQPS:      splitQPS(cfg, tr != nil),
			MaxClockDrift: cfg.maxClockDrift,
			DisableLeases: cfg.noLeases,
			LeasedRead:    func(storage.RangeID, uint64) { m.leasedReads.Inc() },
			Applied:       m.appliedWrite,
			Synced:        m.synced,
			BecameLeader: func(storage.RangeID, uint64) {
				m.leaderChanges.WithLabelValues("won").Inc()
			},
			LostLeadership: func(storage.RangeID, uint64) {
				m.leaderChanges.WithLabelValues("lost").Inc()
			},
		},
		Redis: &session.Options{
			Network: pubsubNet, // PUBLISH reaches every node's subscribers
			Info: []string{
				"process_id:" + strconv.Itoa(os.Getpid()),
				"tcp_addr:" + cfg.redisAddr,
				"orbit_data_dir:" + cfg.dataDir,
				fmt.Sprintf("orbit_cluster_id:%x", spec.id),
			},
			RangeInfo: m.rangeInfo,
			HostInfo:  (&hostInfo{}).section,
		},
		WrapRedis: func(sm *redis.StateMachine) consensus.StateMachine { return stateMachine{StateMachine: sm, m: m} },
		SQL:       &query.Options{},
		Actors:    actorTypes,
	})
	if err != nil {
		return err
	}
	if tr != nil {
		// This node's address may be new (first start, or moved): tell everyone.
		if err := nd.Cluster.Advertise(advertise); err != nil {
			return err
		}
	}
	m.reg.MustRegister(&nodeCollector{sess: nd.Redis, tr: tr, dataDir: cfg.dataDir, store: nd.Store, mgr: nd.Cluster, clock: nd.Clock, eng: eng})
	wire, err := respwire.Listen(respwire.Options{Addr: cfg.redisAddr, TLS: certs.clientFacing(), Session: nd.Redis, Runtime: rt,
		Logger: logger.With("component", "resp"), Observe: m.observe})
	if err != nil {
		return err
	}
	var pg *pgwire.Listener
	if cfg.pgAddr != "" {
		opts := pgwire.Options{Addr: cfg.pgAddr, TLS: certs.clientFacing(), RequireTLS: certs != nil,
			OnAuthFailure: func(user string) { m.authLog.note("postgres", "user", user) }, Logger: logger.With("component", "pgwire"),
			Open: func(ctx context.Context, pid uint32, user, database string, params map[string]string) (pgwire.Session, error) {
				return nd.SQL.Open(ctx, pid, user, database, params)
			}}
		if cfg.pgAuth == "scram" {
			opts.Credentials = nd.SQL.Credentials
		}
		pg, err = pgwire.Listen(opts)
		if err != nil {
			wire.Shutdown(context.Background())
			return err
		}
	}
	var actorSrv *grpc.Server
	grpcBound := ""
	if grpcAddr != "" {
		if actorSrv, grpcBound, err = serveActors(grpcAddr, certs, nd, placement); err != nil {
			wire.Shutdown(context.Background())
			if pg != nil {
				pg.Shutdown(context.Background())
			}
			return err
		}
	}
	adm := &admin{mgr: nd.Cluster, router: nd.Router, layout: layout, self: id, logger: logger.With("component", "membership"),
		guard: &adminGuard{token: cfg.adminToken, tls: certs != nil, failures: m.authLog}}
	if certs == nil && cfg.adminToken == "" && cfg.insecure {
		logger.Warn("orbit serve: the admin endpoints (POST /join, /remove, /split, /merge, /transfer) are open to whoever reaches --http-addr; set --admin-token or --certs-dir")
	}
	mux := httpHandler(id, nd.Redis, nd.Clock.Fenced, m, adm)
	backups := &backupService{newDB: nd.NewDB, clusterID: func() string { return fmt.Sprintf("%x", nd.Cluster.Record().ClusterID) },
		redis: func(db *txn.DB) *backup.RedisKeyspace {
			return nd.NewRedisBackup(db, fmt.Sprintf("%d-%d", cfg.nodeID, time.Now().UnixNano()))
		},
		logger: logger.With("component", "backup")}
	mux.HandleFunc("/backup", adm.guard.guarded(backups.handleExport))
	mux.HandleFunc("/restore", adm.guard.guarded(backups.handleRestore))
	if cfg.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if cfg.testFaults {
		mux.HandleFunc("/test/clock", adm.guard.guarded(func(w http.ResponseWriter, r *http.Request) {
			d, err := time.ParseDuration(r.URL.Query().Get("offset"))
			if r.Method != http.MethodPost || err != nil {
				http.Error(w, "POST /test/clock?offset=DURATION (e.g. 30s, -2m, 0)", http.StatusBadRequest)
				return
			}
			rt.SetClockOffset(d)
			logger.Warn("orbit serve: TEST FAULT: clock offset set", "offset", d)
			fmt.Fprintln(w, "ok")
		}))
		logger.Warn("orbit serve: --test-faults is on: this node's clock can be shifted over HTTP, and SIGKILL loses unsynced writes (tests only)")
	}
	if mutation != "" {
		logger.Warn("orbit serve: TEST BUILD with a planted consensus bug", "bug", mutation)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(certs.listen(httpLn)) }()
	go wire.Serve()
	pgBound := ""
	if pg != nil {
		go pg.Serve()
		pgBound = pg.Addr().String()
	}
	certs.reloadOnHangup(ctx, logger)
	if onListen != nil {
		onListen(boundAddrs{redis: wire.Addr().String(), http: httpLn.Addr().String(), pg: pgBound, grpc: grpcBound})
	}
	attrs := []any{"redis", wire.Addr().String(), "http", httpLn.Addr().String(), "postgres", pgBound, "grpc", grpcBound,
		"node", cfg.nodeID, "data", cfg.dataDir, "ranges", spec.ranges, "cluster", fmt.Sprintf("%x", spec.id), "tls", certs != nil}
	if tr != nil {
		attrs = append(attrs, "peer", tr.Addr(), "nodes", len(nd.Cluster.Active()))
	}
	logger.Info("orbit serve: listening", attrs...)

	nd.Start()
	if cfg.join != "" {
		joinCtx, cancelJoin := rt.WithCancel(context.Background())
		defer cancelJoin()
		go askToJoin(joinCtx, certs.web(cfg.adminToken), cfg.join, id, advertise, logger)
	}

	<-ctx.Done()
	logger.Info("orbit serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	wire.Shutdown(sctx)
	if pg != nil {
		pg.Shutdown(sctx)
	}
	if actorSrv != nil {
		actorSrv.GracefulStop()
	}
	if nd.Actors != nil {
		actx, acancel := context.WithTimeout(sctx, drainTimeout)
		if err := nd.Actors.Drain(actx); err != nil {
			logger.Warn("orbit serve: some actors still active at shutdown; their leases will run out", "err", err)
		}
		acancel()
	}
	// Hand every range led here to another voter first, so that their
	// clients wait for one hand-over, not an election timeout (a rolling
	// restart costs no election). Bounded: a stuck hand-over must not
	// keep the node from stopping.
	dctx, dcancel := context.WithTimeout(sctx, drainTimeout)
	if err := nd.Drain(dctx); err != nil {
		logger.Warn("orbit serve: some ranges still led here at shutdown; their followers will elect a leader", "err", err)
	} else {
		logger.Info("orbit serve: leadership handed over")
	}
	dcancel()
	closeErr := nd.Close(sctx)
	rt.Stop()
	rtStopped = true
	if tr != nil {
		_ = tr.Close()
	}
	engClosed = true
	stopGC()
	if err := eng.Close(); err != nil {
		return fmt.Errorf("closing storage: %w", err)
	}
	if closeErr != nil {
		return fmt.Errorf("closing consensus: %w", closeErr)
	}
	logger.Info("orbit serve: stopped")
	return nil
}

// splitQPS is consensus.Options.SplitQPS for cfg: --split-qps, or by
// default 2500 (CockroachDB's kv.range_split.load_qps_threshold) when the
// node has a network (other nodes can lead the halves), 0 on a single
// node (splitting there makes ranges and spreads nothing).
func splitQPS(cfg serveConfig, networked bool) int {
	switch {
	case cfg.splitQPS >= 0:
		return cfg.splitQPS
	case networked:
		return 2500
	}
	return 0
}

// rebalanceInterval is cluster.Options.RebalanceInterval for cfg: the
// flag, with 0 (never) as the option's negative.
func rebalanceInterval(cfg serveConfig) time.Duration {
	if cfg.rebalanceInterval == 0 {
		return -1
	}
	return cfg.rebalanceInterval
}

// httpHandler serves the operator endpoints: /healthz (the process runs),
// /readyz (every range has a leader that answers a linearizable read now,
// and this node's clock is checked against its peers' and within the
// bound: clockFenced says why not),
// /metrics (Prometheus), /cluster (the cluster's nodes and ranges, as JSON),
// and the admin requests (POST /join, /remove?node=ID, /split, /merge,
// /transfer), which adm.guard lets through only to the cluster's
// certificates or its admin token.
func httpHandler(self kernel.NodeID, sess *session.Server, clockFenced func() error, m *metrics, adm *admin) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !sess.Ready() {
			http.Error(w, "not ready: waiting for every range to elect a leader and take a write", http.StatusServiceUnavailable)
			return
		}
		if err := clockFenced(); err != nil {
			// Transactions through this node would be refused (Redis
			// commands across ranges, SQL, actors): not ready until its
			// clock is checked (a node starts fenced) or back in bounds.
			http.Error(w, "not ready: "+oneLine(err), http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := sess.Probe(ctx); err != nil {
			http.Error(w, "not ready: "+oneLine(err), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/cluster", func(w http.ResponseWriter, r *http.Request) {
		leading := map[storage.RangeID]bool{}
		for _, rt := range sess.Leading() {
			leading[rt.Range] = true
		}
		rec := adm.mgr.Record()
		info := clusterInfo{ClusterID: fmt.Sprintf("%x", rec.ClusterID), Node: uint64(self), Replicas: rec.Replicas,
			LayoutRanges: rec.Ranges, Nodes: map[string]nodeInfo{}, HistoryWindow: historyWindow(rec)}
		for _, n := range adm.layout.Nodes() {
			info.Initial = append(info.Initial, uint64(n))
		}
		for n, e := range rec.Nodes {
			h := adm.mgr.Health(n)
			info.Nodes[strconv.FormatUint(uint64(n), 10)] = nodeInfo{NodeEntry: e, Alive: h.Alive, Dead: h.Dead, LeaderLoad: h.LeaderLoad}
		}
		// Every range as its leader has it now (a walk, one read per
		// range); past a range that does not answer within a few seconds,
		// the ranges as this node's cache has them, without replicas.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var walked []consensus.Descriptor
		_ = adm.mgr.WithClient(ctx, func(cl *consensus.Client) error {
			walked, _ = cl.Ranges(ctx)
			return nil
		})
		for _, d := range walked {
			ri := rangeInfo{ID: uint64(d.ID), Generation: d.Generation, Start: fmt.Sprintf("%x", d.Start), End: fmt.Sprintf("%x", d.End),
				Slots: slotSpan(d), Leader: leading[d.ID], LeaderNode: uint64(adm.router.Leader(d.ID)), Replicas: []uint64{}}
			for _, n := range d.Replicas {
				ri.Replicas = append(ri.Replicas, uint64(n))
			}
			slices.Sort(ri.Replicas)
			info.Ranges = append(info.Ranges, ri)
		}
		for _, d := range adm.router.Ranges() {
			if len(walked) > 0 && (walked[len(walked)-1].End == nil || bytes.Compare(d.Start, walked[len(walked)-1].End) < 0) {
				continue // walked
			}
			info.Ranges = append(info.Ranges, rangeInfo{ID: uint64(d.ID), Generation: d.Generation, Start: fmt.Sprintf("%x", d.Start),
				End: fmt.Sprintf("%x", d.End), Slots: slotSpan(d), Leader: leading[d.ID]})
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(info)
	})
	mux.HandleFunc("/join", adm.guard.guarded(adm.handleJoin))
	mux.HandleFunc("/remove", adm.guard.guarded(adm.handleRemove))
	mux.HandleFunc("/split", adm.guard.guarded(adm.handleSplit))
	mux.HandleFunc("/merge", adm.guard.guarded(adm.handleMerge))
	mux.HandleFunc("/transfer", adm.guard.guarded(adm.handleTransfer))
	return mux
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// openCluster decides which cluster this node belongs to and returns its
// record, kept in the data directory: the one stored there; or on first
// start, the cluster --join's node describes (the node then joins it); or
// else the cluster the flags describe (claim). A stored record wins over
// the flags, which must still agree with it.
func openCluster(ctx context.Context, eng *storage.Engine, cfg serveConfig, flags clusterSpec, web webClient) (cluster.Record, error) {
	rec, found, err := cluster.LoadRecord(eng)
	if err != nil {
		return rec, fmt.Errorf("reading %s: %w", filepath.Clean(cfg.dataDir), err)
	}
	if found {
		return rec, checkRecord(eng, cfg, flags, rec)
	}
	_, identErr := eng.Ident()
	if cfg.join != "" && errors.Is(identErr, storage.ErrNotFound) {
		if rec, err = joinedRecord(ctx, cfg, web); err != nil {
			return rec, err
		}
		b := eng.NewBatch()
		b.SetIdent(storage.Ident{ClusterID: rec.ClusterID, NodeID: kernel.NodeID(cfg.nodeID)})
		if err := b.Commit(true); err != nil {
			return rec, fmt.Errorf("claiming %s: %w", cfg.dataDir, err)
		}
	} else {
		id, err := claim(eng, cfg, flags)
		if err != nil {
			return rec, err
		}
		rec = cluster.Record{ClusterID: id, Ranges: flags.ranges, Replicas: flags.replicas, Initial: flags.nodes,
			Nodes: map[kernel.NodeID]cluster.NodeEntry{}, HistoryWindow: flags.historyWindow}
		for _, n := range flags.nodes {
			rec.Nodes[n] = cluster.NodeEntry{Addr: flags.peers[n], Version: 1}
		}
	}
	if err := cluster.SaveRecord(eng, rec); err != nil {
		return rec, fmt.Errorf("writing %s: %w", filepath.Clean(cfg.dataDir), err)
	}
	return rec, nil
}

// joinedRecord learns the cluster from --join's node (through web),
// retrying for a while: the cluster may be starting too.
func joinedRecord(ctx context.Context, cfg serveConfig, web webClient) (cluster.Record, error) {
	self := kernel.NodeID(cfg.nodeID)
	addr := cfg.peerAddr
	if pinned, _ := parsePeers(cfg.peers); addr == "" {
		addr = pinned[self]
	}
	if addr == "" {
		return cluster.Record{}, errors.New("--join needs this node's gRPC address: --peer-addr HOST:PORT")
	}
	var lastErr error
	for range 30 {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := web.fetchCluster(fctx, cfg.join)
		cancel()
		if err == nil {
			return joinRecord(cfg.join, info, self, addr)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return cluster.Record{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return cluster.Record{}, fmt.Errorf("--join %s: cannot read the cluster: %v", cfg.join, lastErr)
}

// historyWindow is rec's history window (txn.Options.GCTTL).
func historyWindow(rec cluster.Record) time.Duration {
	if rec.HistoryWindow == 0 {
		return txn.DefaultGCTTL
	}
	return rec.HistoryWindow
}

// checkRecord: a stored record's node and cluster must be the flags'.
func checkRecord(eng *storage.Engine, cfg serveConfig, flags clusterSpec, rec cluster.Record) error {
	ident, err := eng.Ident()
	if err != nil {
		return fmt.Errorf("reading %s: %w", cfg.dataDir, err)
	}
	dir := filepath.Clean(cfg.dataDir)
	switch {
	case uint64(ident.NodeID) != cfg.nodeID:
		return fmt.Errorf("data directory %s belongs to node %d of cluster %x, not node %d", dir, ident.NodeID, ident.ClusterID, cfg.nodeID)
	case cfg.clusterID != 0 && cfg.clusterID != rec.ClusterID:
		return fmt.Errorf("data directory %s belongs to cluster %x, not %x", dir, rec.ClusterID, cfg.clusterID)
	case !rec.Joined && len(flags.peers) > 0 && cfg.clusterID == 0 && flags.id != rec.ClusterID:
		return fmt.Errorf("data directory %s belongs to cluster %x, not %x (check --peers, --ranges, --replicas and --cluster-id)", dir, rec.ClusterID, flags.id)
	case cfg.ranges != 0 && cfg.ranges != rec.Ranges:
		return fmt.Errorf("data directory %s holds %d ranges, not %d: start with --ranges %d", dir, rec.Ranges, cfg.ranges, rec.Ranges)
	case cfg.historyWindow != 0 && cfg.historyWindow != historyWindow(rec):
		return fmt.Errorf("data directory %s belongs to a cluster whose history window is %v, not %v (it is fixed when the cluster starts)", dir, historyWindow(rec), cfg.historyWindow)
	}
	return nil
}

// claim checks that the data directory is this node's of this cluster
// (storage.Ident), or makes it so on first start, and that it was
// bootstrapped with the same number of ranges. It returns the cluster ID
// to use: spec.id, or for a single node without --peers or --cluster-id,
// the one its directory was created with (which may predate derived IDs).
func claim(eng *storage.Engine, cfg serveConfig, spec clusterSpec) (uint64, error) {
	ident, err := eng.Ident()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b := eng.NewBatch()
		b.SetIdent(storage.Ident{ClusterID: spec.id, NodeID: kernel.NodeID(cfg.nodeID)})
		if err := b.Commit(true); err != nil {
			return 0, fmt.Errorf("claiming %s: %w", cfg.dataDir, err)
		}
		return spec.id, nil
	case err != nil:
		return 0, fmt.Errorf("reading %s: %w", cfg.dataDir, err)
	case uint64(ident.NodeID) != cfg.nodeID:
		return 0, fmt.Errorf("data directory %s belongs to node %d of cluster %x, not node %d", filepath.Clean(cfg.dataDir), ident.NodeID, ident.ClusterID, cfg.nodeID)
	case ident.ClusterID != spec.id && (len(spec.peers) > 0 || cfg.clusterID != 0):
		return 0, fmt.Errorf("data directory %s belongs to cluster %x, not %x (check --peers, --ranges, --replicas and --cluster-id)", filepath.Clean(cfg.dataDir), ident.ClusterID, spec.id)
	}
	ids, err := eng.RangeIDs()
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", cfg.dataDir, err)
	}
	if len(ids) > 0 && len(ids) != spec.ranges && len(spec.nodes) <= spec.replicas {
		return 0, fmt.Errorf("data directory %s holds %d ranges, not %d: start with --ranges %d", filepath.Clean(cfg.dataDir), len(ids), spec.ranges, len(ids))
	}
	return ident.ClusterID, nil
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
