package session

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/consensus"
)

// ranges runs the keyspace-wide commands over every range, in key order
// (Server.walk).
func (c *Conn) ranges(ctx context.Context, name string, args [][]byte) redis.Reply {
	s := c.s
	switch name {
	case "keys":
		var keys []redis.Reply
		var bad *redis.Reply
		err := s.walk(ctx, true, nil, func(pos []byte) []byte {
			return redis.InDB(c.db, redis.ScanCommand(pos, nil, 0, redis.ScanOptions{Match: args[1]}))
		}, func(_ []byte, r redis.Reply) bool {
			if r.Kind != redis.KindArray || len(r.Elems) != 2 {
				bad = &r
				return false
			}
			keys = append(keys, r.Elems[0].Elems...)
			return true
		})
		return answer(err, bad, redis.Array(keys...))
	case "scan":
		return c.scan(ctx, args)
	case "dbsize":
		n, errReply := s.dbsize(ctx, c.db)
		if errReply != nil {
			return *errReply
		}
		return redis.Int(n)
	case "randomkey":
		return s.randomKey(ctx, c.db)
	case "flushdb", "flushall":
		if len(args) > 2 || (len(args) == 2 && !strings.EqualFold(string(args[1]), "sync") && !strings.EqualFold(string(args[1]), "async")) {
			return redis.Error("ERR syntax error")
		}
		var bad *redis.Reply
		err := s.walk(ctx, false, nil, func(pos []byte) []byte {
			if name == "flushall" {
				return redis.FlushAllCommand(pos)
			}
			return redis.InDB(c.db, redis.FlushCommand(pos))
		}, func(_ []byte, r redis.Reply) bool {
			if r.Kind == redis.KindError {
				bad = &r
			}
			return bad == nil
		})
		return answer(err, bad, redis.OK())
	}
	return redis.Exec(nil, 0, 0, args)
}

// answer is a walk's reply: its failure, the bad reply that stopped it, or
// ok.
func answer(err error, bad *redis.Reply, ok redis.Reply) redis.Reply {
	switch {
	case err != nil:
		return failure(err)
	case bad != nil:
		return *bad
	}
	return ok
}

func (s *Server) dbsize(ctx context.Context, db int) (int64, *redis.Reply) {
	var n int64
	var bad *redis.Reply
	err := s.walk(ctx, true, nil, func(pos []byte) []byte { return redis.InDB(db, redis.CountCommand(pos)) }, func(_ []byte, r redis.Reply) bool {
		if r.Kind != redis.KindInt {
			bad = &r
			return false
		}
		n += r.Int
		return true
	})
	if err != nil || bad != nil {
		f := answer(err, bad, redis.Reply{})
		return 0, &f
	}
	return n, nil
}

// randomKey picks a range with probability proportional to its keys, then
// a key in it. (If the range split between the two steps, the pick lands
// in its left part.)
func (s *Server) randomKey(ctx context.Context, db int) redis.Reply {
	type part struct {
		start []byte
		keys  int64
	}
	var parts []part
	var total int64
	var bad *redis.Reply
	err := s.walk(ctx, true, nil, func(pos []byte) []byte { return redis.InDB(db, redis.CountCommand(pos)) }, func(pos []byte, r redis.Reply) bool {
		if r.Kind != redis.KindInt {
			bad = &r
			return false
		}
		parts = append(parts, part{start: pos, keys: r.Int})
		total += r.Int
		return true
	})
	if err != nil || bad != nil {
		return answer(err, bad, redis.Reply{})
	}
	if total == 0 {
		return redis.Null()
	}
	pick := s.rt.Rand().Int64N(total)
	for _, p := range parts {
		if pick >= p.keys {
			pick -= p.keys
			continue
		}
		r, err := s.command(ctx, p.start, redis.InDB(db, redis.RandomKeyCommand(p.start)), true)
		if err != nil {
			return failure(err)
		}
		return r
	}
	return redis.Null()
}

// scan is SCAN: the cursor names a resume position (an internal key) in the
// server's CursorTable; each call scans the range holding that position
// from there, and moves on to the range's end when it is exhausted (the
// reply says where the range ends, so a split since the last call loses
// nothing).
func (c *Conn) scan(ctx context.Context, args [][]byte) redis.Reply {
	s := c.s
	cursor, opts, errReply, ok := redis.ParseScan(args)
	if !ok {
		return errReply
	}
	s.mu.Lock()
	from, ok := s.cursors.Get(cursor)
	s.mu.Unlock()
	if !ok {
		return redis.Error("ERR invalid cursor")
	}
	if from == nil {
		from = []byte{}
	}
	r, d, err := s.commandAt(ctx, from, redis.InDB(c.db, redis.ScanCommand(from, nil, opts.Count, opts)), true)
	if err != nil {
		return failure(err)
	}
	if r.Kind != redis.KindArray || len(r.Elems) != 2 {
		return r
	}
	var next []byte
	switch {
	case r.Elems[1].Kind == redis.KindBulk:
		next = r.Elems[1].Str
	case d.End != nil && bytes.Compare(d.End, redis.KeyspaceEnd) < 0:
		next = d.End // the next range's start
	}
	var keys [][]byte
	for _, k := range r.Elems[0].Elems {
		keys = append(keys, k.Str)
	}
	out := uint64(0)
	if next != nil {
		s.mu.Lock()
		out = s.cursors.Put(next)
		s.mu.Unlock()
	}
	return redis.ScanReply(out, keys)
}

// info is INFO [section ...]: Redis's sections in Redis's order. The
// default set (no argument, "default") leaves out commandstats, as Redis
// does; "all" and "everything" include it. Memory and CPU are the host's
// (Options.HostInfo); a node without it reports those sections empty.
func (s *Server) info(ctx context.Context, args [][]byte) redis.Reply {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	everything := want["all"] || want["everything"]
	dflt := len(want) == 0 || want["default"] || everything
	var b strings.Builder
	wanted := func(name string, inDefault bool) bool {
		return want[strings.ToLower(name)] || everything || (dflt && inDefault)
	}
	section := func(name string, lines ...string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
	}
	host := func(name string) []string {
		if s.opts.HostInfo == nil {
			return nil
		}
		return s.opts.HostInfo(strings.ToLower(name))
	}
	now := s.rt.Now()
	up := now.Sub(s.start)
	if wanted("Server", true) {
		server := []string{
			"redis_version:" + Version,
			"redis_mode:standalone",
			"orbit_node_id:" + fmt.Sprint(uint64(s.rt.NodeID())),
			fmt.Sprintf("uptime_in_seconds:%d", int64(up.Seconds())),
			fmt.Sprintf("uptime_in_days:%d", int64(up.Hours()/24)),
		}
		section("Server", append(server, s.opts.Info...)...)
	}
	st := s.Stats()
	if wanted("Clients", true) {
		section("Clients",
			fmt.Sprintf("connected_clients:%d", st.Connections),
			fmt.Sprintf("blocked_clients:%d", st.Blocked),
			fmt.Sprintf("pubsub_channels:%d", st.PubSubChannels),
			fmt.Sprintf("pubsub_patterns:%d", st.PubSubPatterns))
	}
	if wanted("Memory", true) {
		section("Memory", host("memory")...)
	}
	if wanted("Persistence", true) {
		// Every write is in the synced Raft log before it is acknowledged:
		// an append-only file that is always on and never rewritten.
		section("Persistence", "loading:0", "async_loading:0", "rdb_bgsave_in_progress:0",
			"aof_enabled:1", "aof_rewrite_in_progress:0", "aof_last_write_status:ok")
	}
	if wanted("Stats", true) {
		section("Stats", s.stats.statsLines(now)...)
	}
	if wanted("Replication", true) {
		ranges := s.opts.Ranges()
		repl := []string{"role:master", fmt.Sprintf("orbit_nodes:%d", len(s.opts.Peers())), fmt.Sprintf("orbit_ranges:%d", len(ranges))}
		s.mu.Lock()
		for _, d := range ranges {
			line := rangeLine(d, s.led[d.ID], uint64(s.rt.NodeID()))
			if s.opts.RangeInfo != nil {
				if extra := s.opts.RangeInfo(d.ID); extra != "" {
					line += "," + extra
				}
			}
			repl = append(repl, line)
		}
		s.mu.Unlock()
		section("Replication", repl...)
	}
	if wanted("CPU", true) {
		section("CPU", host("cpu")...)
	}
	if wanted("Commandstats", false) {
		section("Commandstats", s.stats.commandLines()...)
	}
	if wanted("Errorstats", true) {
		section("Errorstats", s.stats.errorLines()...)
	}
	if wanted("Keyspace", true) {
		stats, errReply := s.keyStats(ctx)
		if errReply != nil {
			return *errReply
		}
		var lines []string
		for db, ks := range stats {
			if ks.Keys == 0 {
				continue
			}
			avg := int64(0)
			if ks.Expires > 0 {
				avg = ks.TTLSum / ks.Expires
			}
			lines = append(lines, fmt.Sprintf("db%d:keys=%d,expires=%d,avg_ttl=%d", db, ks.Keys, ks.Expires, avg))
		}
		section("Keyspace", lines...)
	}
	return redis.Verbatim("txt", b.String())
}

// keyStats sums every range's key counts, by database.
func (s *Server) keyStats(ctx context.Context) ([redis.Databases]redis.KeyStats, *redis.Reply) {
	var stats [redis.Databases]redis.KeyStats
	var bad *redis.Reply
	err := s.walk(ctx, true, nil, redis.KeyStatsCommand, func(_ []byte, r redis.Reply) bool {
		if r.Kind != redis.KindArray {
			bad = &r
			return false
		}
		for _, e := range r.Elems {
			if len(e.Elems) != 4 || e.Elems[0].Int < 0 || e.Elems[0].Int >= redis.Databases {
				malformed := redis.Error("ERR internal error: malformed key statistics")
				bad = &malformed
				return false
			}
			ks := &stats[e.Elems[0].Int]
			ks.Keys += e.Elems[1].Int
			ks.Expires += e.Elems[2].Int
			ks.TTLSum += e.Elems[3].Int
		}
		return true
	})
	if err != nil || bad != nil {
		f := answer(err, bad, redis.Reply{})
		return stats, &f
	}
	return stats, nil
}

// rangeLine describes a range: its slots, its replicas, and the
// term in which this node last became its leader (0: not since start).
func rangeLine(d consensus.Descriptor, ledTerm, self uint64) string {
	leader := "elsewhere_or_unknown"
	if ledTerm != 0 {
		leader = fmt.Sprintf("%d,term=%d", self, ledTerm)
	}
	return fmt.Sprintf("range_%d:slots=%s,replicas=%v,leader=%s", d.ID, slotSpan(d), d.Replicas, leader)
}
