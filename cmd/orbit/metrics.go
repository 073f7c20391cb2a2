package main

import (
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/cluster"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel/grpcnet"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/storage"
)

// metrics are the node's Prometheus metrics, served on /metrics. Names
// start with orbit_; every label has a bounded set of values (command names
// from the command table, peer node IDs, and range IDs only for the ranges
// the node holds now, read at scrape time). Counters are the node's totals
// over its ranges: a counter per range would keep a series for every range
// the node ever held, splits and merges included, for the life of the
// process (GET /cluster lists the ranges).
type metrics struct {
	reg *prometheus.Registry

	cmdSeconds    perCommand
	cmdErrors     *prometheus.CounterVec
	leaderChanges *prometheus.CounterVec
	leasedReads   prometheus.Counter

	// applied counts the commands applied here per range, and stamps keeps
	// the latest leader stamp applied (for INFO: equal stamps on two nodes
	// mean they applied the same prefix of the range's writes).
	applied prometheus.Counter
	queries prometheus.Counter
	// syncSeconds and syncBytes: the Raft log's synced writes
	// (consensus.Options.Synced).
	syncSeconds prometheus.Histogram
	syncBytes   prometheus.Counter
	// authFailures counts failed authentications, by listener; authLog
	// counts and logs them (serve sets it, with the node's logger).
	authFailures *prometheus.CounterVec
	authLog      *authFailures
	mu           sync.Mutex
	stamps       map[storage.RangeID]int64
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		cmdSeconds: perCommand{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orbit_redis_command_duration_seconds",
			Help:    "Time from reading a Redis command to having its reply, by command.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 14), // 50µs .. ~7s
		}, []string{"command"})},
		cmdErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbit_redis_command_errors_total",
			Help: "Redis commands answered with an error, by command and error code (ERR, WRONGTYPE, TRYAGAIN, ...).",
		}, []string{"command", "code"}),
		leaderChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbit_raft_leadership_changes_total",
			Help: "Replicas on this node that became leader (event=won) or stopped leading (event=lost), over all its ranges.",
		}, []string{"event"}),
		leasedReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbit_raft_leased_reads_total",
			Help: "Reads this node served as a range leader under its lease, without a ReadIndex round (the rest of orbit_raft_queries_total and key-value reads took a round).",
		}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbit_raft_applied_commands_total",
			Help: "Writes applied on this node's replicas (since the process started).",
		}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orbit_raft_sync_duration_seconds",
			Help:    "How long each synced write of the Raft log (entries, hard state) took: every write on the node waits for one (etcd's wal_fsync_duration_seconds).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs .. ~1.6s
		}),
		syncBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbit_raft_synced_bytes_total",
			Help: "Bytes written by the synced writes of the Raft log (orbit_raft_sync_duration_seconds_count of them).",
		}),
		queries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orbit_raft_queries_total",
			Help: "Linearizable Redis reads served by this node as a range leader.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orbit_auth_failures_total",
			Help: "Failed authentications, by listener: http (the admin endpoints without a certificate of the cluster's CA or the admin token), redis (WRONGPASS), postgres (a failed SCRAM exchange).",
		}, []string{"listener"}),
		stamps: map[storage.RangeID]int64{},
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.cmdSeconds.vec, m.cmdErrors, m.leaderChanges, m.leasedReads, m.applied, m.queries, m.authFailures,
		m.syncSeconds, m.syncBytes)
	return m
}

// synced is consensus.Options.Synced.
func (m *metrics) synced(took time.Duration, bytes int) {
	m.syncSeconds.Observe(took.Seconds())
	m.syncBytes.Add(float64(bytes))
}

// observe is respwire.Options.Observe.
func (m *metrics) observe(name []byte, elapsed time.Duration, replies []redis.Reply) {
	cmd := "unknown"
	if spec, ok := redis.Lookup(string(name)); ok {
		cmd = spec.Name
	}
	m.cmdSeconds.observer(cmd).Observe(elapsed.Seconds())
	for _, r := range replies {
		if r.Kind == redis.KindError {
			code, _, _ := strings.Cut(string(r.Str), " ")
			if len(code) > 16 || strings.ToUpper(code) != code {
				code = "other"
			}
			m.cmdErrors.WithLabelValues(cmd, code).Inc()
			if code == "WRONGPASS" && m.authLog != nil { // AUTH, HELLO ... AUTH
				m.authLog.note("redis", "command", cmd)
			}
			break
		}
	}
}

func rangeLabel(id storage.RangeID) string { return strconv.FormatUint(uint64(id), 10) }

// perCommand is a histogram by command name with its children looked up
// once: a label lookup (hash the name, take the vector's lock) on every
// command costs CPU that shows under load. Names come from the command
// table: bounded.
type perCommand struct {
	vec      *prometheus.HistogramVec
	children sync.Map // string → prometheus.Observer
}

func (p *perCommand) observer(name string) prometheus.Observer {
	if o, ok := p.children.Load(name); ok {
		return o.(prometheus.Observer)
	}
	o, _ := p.children.LoadOrStore(name, p.vec.WithLabelValues(name))
	return o.(prometheus.Observer)
}

// stateMachine counts what the node's state machine serves.
type stateMachine struct {
	*redis.StateMachine
	m *metrics
}

// appliedWrite is consensus.Options.Applied's metrics half: a write applied
// on this node's replica of range id, stamped nowMillis by its leader.
func (m *metrics) appliedWrite(id storage.RangeID, nowMillis int64) {
	m.applied.Inc()
	m.mu.Lock()
	m.stamps[id] = max(m.stamps[id], nowMillis)
	m.mu.Unlock()
}

func (sm stateMachine) Query(data consensus.RangeData, cmd []byte, meta consensus.CommandMeta) ([]byte, error) {
	sm.m.queries.Inc()
	return sm.StateMachine.Query(data, cmd, meta)
}

// rangeInfo is session.Options.RangeInfo: the latest leader stamp applied
// here (0: nothing applied since the process started).
func (m *metrics) rangeInfo(id storage.RangeID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return "applied_stamp_ms=" + strconv.FormatInt(m.stamps[id], 10)
}

// nodeCollector reads the node's state at scrape time: leadership, the
// session's counters, the transport's per-peer stats, the data directory's
// size.
type nodeCollector struct {
	sess    *session.Server
	tr      *grpcnet.Transport // nil on a single node
	dataDir string
	store   *consensus.Store
	mgr     *cluster.Manager
	clock   *hlc.Clock
	eng     *storage.Engine
}

var (
	descLeader      = prometheus.NewDesc("orbit_raft_leader", "1 if this node leads the range now.", []string{"range"}, nil)
	descLeaderTerm  = prometheus.NewDesc("orbit_raft_leader_term", "The term this node won the range in, while it leads it.", []string{"range"}, nil)
	descFenced      = prometheus.NewDesc("orbit_clock_rate_fenced_peers", "Peers whose clocks this node measured running too fast against its own for its leader leases (--max-clock-drift): while above 0, the ranges they vote in serve every read here through a ReadIndex round.", nil, nil)
	descSteps       = prometheus.NewDesc("orbit_clock_steps_ignored_total", "Steps of the wall clock, against the monotonic clock, larger than half --max-clock-offset, that this node's clock did not follow (it goes on at the monotonic clock's pace; kernel/hlc).", nil, nil)
	descOffFenced   = prometheus.NewDesc("orbit_clock_offset_fenced", "1 while this node's clock is fenced: too far from a majority of its peers' (beyond 90% of --max-clock-offset) or not checked yet. Meanwhile it hands out no transaction timestamps, serves no leased reads and hands its leaderships over.", nil, nil)
	descStepped     = prometheus.NewDesc("orbit_clock_wall_offset_seconds", "How far the wall clock is from this node's clock while a step of it is not followed (0 while the clock follows the wall clock).", nil, nil)
	descConns       = prometheus.NewDesc("orbit_redis_connected_clients", "Open Redis connections.", nil, nil)
	descRanges      = prometheus.NewDesc("orbit_ranges", "Ranges this node holds a replica of (they split past --split-mb).", nil, nil)
	descBlocked     = prometheus.NewDesc("orbit_redis_blocked_clients", "Connections waiting in a blocking command.", nil, nil)
	descDataBytes   = prometheus.NewDesc("orbit_storage_data_dir_bytes", "Bytes in the data directory (Pebble's SSTs, WAL, manifest).", nil, nil)
	descStoreMemory = prometheus.NewDesc("orbit_storage_memory_bytes", "Memory Pebble holds outside the Go heap, by part: block_cache (at most --cache-mb), memtables (live: at most twice --memtable-mb), zombie_memtables (flushed, pinned by an open read), table_readers (the open sstables' readers).", []string{"part"}, nil)
	descCacheHits   = prometheus.NewDesc("orbit_storage_block_cache_hits_total", "Block lookups the block cache answered.", nil, nil)
	descCacheMisses = prometheus.NewDesc("orbit_storage_block_cache_misses_total", "Block lookups that read a block from a file.", nil, nil)
	descReadAmp     = prometheus.NewDesc("orbit_storage_read_amplification", "Sorted runs a point read may look in (memtables, L0 sublevels, non-empty levels).", nil, nil)
	descSent        = prometheus.NewDesc("orbit_transport_sent_messages_total", "Messages written to the stream to a peer.", []string{"peer"}, nil)
	descSentBytes   = prometheus.NewDesc("orbit_transport_sent_bytes_total", "Bytes written to the stream to a peer.", []string{"peer"}, nil)
	descReceived    = prometheus.NewDesc("orbit_transport_received_messages_total", "Messages received from a peer.", []string{"peer"}, nil)
	descDropped     = prometheus.NewDesc("orbit_transport_dropped_messages_total", "Messages to a peer lost on this side (queue full, stream broke).", []string{"peer"}, nil)
	descOversized   = prometheus.NewDesc("orbit_transport_oversized_messages_total", "Messages to a peer refused for exceeding the transport's MaxMessageBytes (never sent).", []string{"peer"}, nil)
	descStale       = prometheus.NewDesc("orbit_transport_stale_messages_total", "Messages to a peer dropped for waiting in its queue longer than MaxQueueAge.", []string{"peer"}, nil)
	descQueued      = prometheus.NewDesc("orbit_transport_queued_messages", "Messages waiting in a peer's send queue.", []string{"peer"}, nil)
	descQueuedBytes = prometheus.NewDesc("orbit_transport_queued_bytes", "Bytes waiting in a peer's send queue.", []string{"peer"}, nil)
	descConnected   = prometheus.NewDesc("orbit_transport_connected", "1 while a stream to the peer is open.", []string{"peer"}, nil)
	descReconnects  = prometheus.NewDesc("orbit_transport_reconnects_total", "Streams to a peer established after the first.", []string{"peer"}, nil)
	descConnFails   = prometheus.NewDesc("orbit_transport_connect_failures_total", "Dials or handshakes to a peer that failed.", []string{"peer"}, nil)
	descInboxDrop   = prometheus.NewDesc("orbit_transport_inbox_dropped_total", "Messages that arrived but no inbox took (full, or nobody listening).", nil, nil)
	descChanges     = prometheus.NewDesc("orbit_cluster_changes_total", "Replicas added or removed and leaderships moved by this node: its rebalancer's and the membership requests it served.", nil, nil)
	descNodes       = prometheus.NewDesc("orbit_cluster_nodes", "Nodes in this node's directory, by state as it sees them: alive (heard lately), dead (silent for --dead-after), unknown, leaving, removed.", []string{"state"}, nil)
	descHandOvers   = prometheus.NewDesc("orbit_consensus_handover_summaries_total", "Read summaries of leaderships handed over on purpose (docs/consensus.md, \"Hand-over summaries\"), by event: proposed (ahead of a transfer this node's leader started), taken_over (by a new leader here), taken_back (a transfer that failed), absorbed (a merged range's, by a left-hand leader here).", []string{"event"}, nil)
	descRefused     = prometheus.NewDesc("orbit_transport_refused_streams_total", "Inbound streams refused at the hello (another cluster or node).", nil, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	leading := map[storage.RangeID]uint64{}
	for _, rt := range c.sess.Leading() {
		leading[rt.Range] = rt.Term
	}
	for _, d := range c.store.Ranges() {
		term, ok := leading[d.ID]
		v := 0.0
		if ok {
			v = 1
			gauge(descLeaderTerm, float64(term), rangeLabel(d.ID))
		}
		gauge(descLeader, v, rangeLabel(d.ID))
	}
	gauge(descFenced, float64(c.store.ClockRateFenced()))
	fenced := 0.0
	if c.store.ClockOffsetFenced() {
		fenced = 1
	}
	gauge(descOffFenced, fenced)
	ignored, off := c.clock.Steps()
	counter(descSteps, ignored)
	gauge(descStepped, off.Seconds())
	counter(descChanges, uint64(c.mgr.Steps()))
	h := c.store.HandOvers()
	for event, n := range map[string]int64{"proposed": h.Proposed.Load(), "taken_over": h.TakenOver.Load(), "taken_back": h.TakenBack.Load(), "absorbed": h.Absorbed.Load()} {
		counter(descHandOvers, uint64(n), event)
	}
	states := map[string]int{"alive": 0, "dead": 0, "unknown": 0, "leaving": 0, "removed": 0}
	for n, e := range c.mgr.Record().Nodes {
		h := c.mgr.Health(n)
		switch {
		case e.Removed:
			states["removed"]++
		case e.Leaving:
			states["leaving"]++
		case h.Dead:
			states["dead"]++
		case h.Alive:
			states["alive"]++
		default:
			states["unknown"]++
		}
	}
	for state, n := range states {
		gauge(descNodes, float64(n), state)
	}
	st := c.sess.Stats()
	gauge(descConns, float64(st.Connections))
	gauge(descRanges, float64(len(c.store.Ranges())))
	gauge(descBlocked, float64(st.Blocked))
	var size int64
	_ = filepath.WalkDir(c.dataDir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil // files come and go under compactions
	})
	gauge(descDataBytes, float64(size))
	mem := c.eng.Memory()
	gauge(descStoreMemory, float64(mem.BlockCache), "block_cache")
	gauge(descStoreMemory, float64(mem.MemTables), "memtables")
	gauge(descStoreMemory, float64(mem.ZombieMemTables), "zombie_memtables")
	gauge(descStoreMemory, float64(mem.TableReaders), "table_readers")
	counter(descCacheHits, uint64(mem.BlockCacheHits))
	counter(descCacheMisses, uint64(mem.BlockCacheMisses))
	gauge(descReadAmp, float64(mem.ReadAmp))
	if c.tr == nil {
		return
	}
	ts := c.tr.Stats()
	for _, p := range ts.Peers {
		peer := strconv.FormatUint(uint64(p.Node), 10)
		counter(descSent, p.Sent, peer)
		counter(descSentBytes, p.SentBytes, peer)
		counter(descReceived, p.Received, peer)
		counter(descDropped, p.Dropped, peer)
		counter(descOversized, p.Oversized, peer)
		counter(descStale, p.Stale, peer)
		gauge(descQueued, float64(p.Queued), peer)
		gauge(descQueuedBytes, float64(p.QueuedBytes), peer)
		connected := 0.0
		if p.Connected {
			connected = 1
		}
		gauge(descConnected, connected, peer)
		counter(descReconnects, p.Reconnects, peer)
		counter(descConnFails, p.ConnectFailures, peer)
	}
	counter(descInboxDrop, ts.InboxDropped)
	counter(descRefused, ts.Refused)
}
