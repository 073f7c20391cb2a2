package session

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// CONFIG GET and SET. Each parameter is one of three kinds:
//
//   - fixed: what Orbit is and cannot change (appendonly yes: every write
//     is in the synced Raft log before it is acknowledged; databases 16;
//     maxmemory 0). Setting one to its value succeeds, as in Redis, so that
//     clients that "make sure" of a setting work; any other value is
//     Redis's "can't set immutable config".
//   - a setting Orbit keeps and reports but that changes nothing here:
//     the encoding thresholds (Orbit stores every collection one way, as
//     records in Pebble), busy-reply-threshold (no scripts yet), and
//     maxmemory-policy (nothing is evicted while maxmemory is 0, in Redis
//     too). Clients and test harnesses set them at start-up; they are
//     validated exactly as Redis validates them.
//   - slowlog-log-slower-than and slowlog-max-len, which the node's slow
//     log follows (slowlog.go);
//   - notify-keyspace-events, which this node's commands publish their
//     keyspace events under (redis/notify.go), kept as set and reported as
//     Redis 7.0 reports it ("KEA" reads back as "AKE", and n is set but
//     not shown).
//
// Settings are per node (as in Redis, per server) and are not persisted
// (CONFIG REWRITE does not exist).

type configKind int

const (
	cfgFixed  configKind = iota
	cfgInt               // an integer in [min, max]
	cfgMemory            // a memory value ("64", "1k", "2mb") in [min, max], reported in bytes
	cfgEnum              // one of enum
	cfgNotify            // notify-keyspace-events
)

type configDef struct {
	name     string
	aliases  []string
	kind     configKind
	min, max int64
	enum     []string
	value    string // the default
}

var configDefs = []configDef{
	{name: "databases", value: strconv.Itoa(redis.Databases)},
	{name: "appendonly", value: "yes"},
	{name: "appendfsync", value: "always"},
	{name: "save", value: ""},
	{name: "maxmemory", value: "0"},
	{name: "timeout", value: "0"},
	{name: "proto-max-bulk-len", value: strconv.Itoa(redis.MaxBulkLen)},
	{name: "cluster-enabled", value: "no"},
	{name: "hash-max-listpack-entries", aliases: []string{"hash-max-ziplist-entries"}, kind: cfgInt, max: math.MaxInt64, value: "512"},
	{name: "hash-max-listpack-value", aliases: []string{"hash-max-ziplist-value"}, kind: cfgMemory, max: math.MaxInt64, value: "64"},
	{name: "list-max-listpack-size", aliases: []string{"list-max-ziplist-size"}, kind: cfgInt, min: math.MinInt32, max: math.MaxInt32, value: "-2"},
	{name: "list-compress-depth", kind: cfgInt, max: math.MaxInt32, value: "0"},
	{name: "set-max-intset-entries", kind: cfgInt, max: math.MaxInt64, value: "512"},
	{name: "zset-max-listpack-entries", aliases: []string{"zset-max-ziplist-entries"}, kind: cfgInt, max: math.MaxInt64, value: "128"},
	{name: "zset-max-listpack-value", aliases: []string{"zset-max-ziplist-value"}, kind: cfgMemory, max: math.MaxInt64, value: "64"},
	{name: "busy-reply-threshold", aliases: []string{"lua-time-limit"}, kind: cfgInt, max: math.MaxInt64, value: "5000"},
	{name: "maxmemory-policy", kind: cfgEnum, value: "noeviction",
		enum: []string{"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"}},
	{name: "notify-keyspace-events", kind: cfgNotify, value: ""},
	{name: "slowlog-log-slower-than", kind: cfgInt, min: -1, max: math.MaxInt64, value: "10000"},
	{name: "slowlog-max-len", kind: cfgInt, max: math.MaxInt64, value: "128"},
}

// configTable is a server's parameters: each definition once, by every
// name it answers to.
type configTable struct {
	defs   []*configDef
	byName map[string]*configDef
}

// newConfigTable builds the table; overrides (Options.Config) replace
// defaults by name, and add fixed parameters of their own.
func newConfigTable(overrides map[string]string) *configTable {
	t := &configTable{byName: map[string]*configDef{}}
	add := func(d configDef) {
		t.defs = append(t.defs, &d)
		t.byName[d.name] = &d
		for _, a := range d.aliases {
			t.byName[a] = &d
		}
	}
	for _, d := range configDefs {
		add(d)
	}
	for _, k := range sortedKeys(overrides) {
		name := strings.ToLower(k)
		if d, ok := t.byName[name]; ok {
			d.value = overrides[k]
			continue
		}
		add(configDef{name: name, value: overrides[k]})
	}
	return t
}

// validConfig is why value cannot be a default for the parameter name
// (Options.Config), or "": a parameter CONFIG SET could change must
// start at a value it would take. Names of no such parameter are new
// fixed ones.
func validConfig(name, value string) string {
	d, ok := newConfigTable(nil).byName[strings.ToLower(name)]
	if !ok || d.kind == cfgFixed {
		return ""
	}
	_, msg := d.parse(value)
	return msg
}

// get is CONFIG GET's pairs for the patterns, every name (aliases too) in
// name order, each at most once.
func (t *configTable) get(patterns [][]byte) []redis.Reply {
	var out []redis.Reply
	for _, name := range sortedKeys(t.byName) {
		for _, p := range patterns {
			if redis.GlobMatch(bytes.ToLower(p), []byte(name)) {
				v := t.byName[name].value
				if t.byName[name].kind == cfgNotify {
					flags, _ := redis.ParseNotifyFlags(v)
					v = redis.NotifyFlagsString(flags)
				}
				out = append(out, redis.BulkString(name), redis.BulkString(v))
				break
			}
		}
	}
	return out
}

// set is CONFIG SET of name/value pairs: all of them, or none (the first
// failure's error).
func (t *configTable) set(pairs [][]byte) redis.Reply {
	values := map[*configDef]string{}
	for i := 0; i < len(pairs); i += 2 {
		name := strings.ToLower(string(pairs[i]))
		d, ok := t.byName[name]
		if !ok {
			return redis.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + string(pairs[i]) + "'")
		}
		if _, dup := values[d]; dup {
			return redis.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - duplicate parameter")
		}
		v, msg := d.parse(string(pairs[i+1]))
		if msg != "" {
			return redis.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + msg)
		}
		values[d] = v
	}
	for d, v := range values {
		d.value = v
	}
	return redis.OK()
}

// parse validates a value as Redis does and returns it as CONFIG GET
// reports it, or Redis's reason for refusing it.
func (d *configDef) parse(v string) (string, string) {
	switch d.kind {
	case cfgFixed:
		if v != d.value {
			return "", "can't set immutable config"
		}
		return v, ""
	case cfgInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", "argument couldn't be parsed into an integer"
		}
		if n < d.min || n > d.max {
			return "", "argument must be between " + strconv.FormatInt(d.min, 10) + " and " + strconv.FormatInt(d.max, 10) + " inclusive"
		}
		return strconv.FormatInt(n, 10), ""
	case cfgMemory:
		u, ok := parseMemory(v)
		if !ok {
			return "", "argument must be a memory value"
		}
		n := int64(u)
		if u > math.MaxInt64 || n < d.min || n > d.max {
			return "", "argument must be between " + strconv.FormatInt(d.min, 10) + " and " + strconv.FormatInt(d.max, 10) + " inclusive"
		}
		return strconv.FormatInt(n, 10), ""
	case cfgEnum:
		for _, e := range d.enum {
			if strings.EqualFold(v, e) {
				return e, ""
			}
		}
		return "", "argument(s) must be one of the following: " + strings.Join(d.enum, ", ")
	case cfgNotify:
		if _, ok := redis.ParseNotifyFlags(v); !ok {
			return "", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
		}
		return v, "" // as set: CONFIG GET reports it as Redis does (get)
	}
	return "", "can't set immutable config"
}

// parseMemory is Redis's memtoull: a run of digits (none reads as 0) and an
// optional unit, b, k/m/g (1000s) or kb/mb/gb (1024s), in any case. As in
// C, a number beyond 64 bits saturates and the product wraps; the range
// check comes after.
func parseMemory(v string) (uint64, bool) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	mul, ok := map[string]uint64{"": 1, "b": 1, "k": 1000, "kb": 1 << 10, "m": 1000 * 1000, "mb": 1 << 20,
		"g": 1000 * 1000 * 1000, "gb": 1 << 30}[strings.ToLower(v[i:])]
	if !ok {
		return 0, false
	}
	var n uint64
	if i > 0 {
		var err error
		if n, err = strconv.ParseUint(v[:i], 10, 64); err != nil {
			n = math.MaxUint64 // strtoull's ERANGE, which memtoull ignores
		}
	}
	return n * mul, true
}

// objectConfig is what OBJECT ENCODING, FREQ and IDLETIME answer under:
// the encoding thresholds and maxmemory-policy as CONFIG GET reports them
// now (redis.ObjectConfig).
func (s *Server) objectConfig() redis.ObjectConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.config
	num := func(name string) int64 {
		v := t.byName[name].value
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
		u, _ := parseMemory(v) // an override (Options.Config) such as "1k"
		return int64(min(u, math.MaxInt64))
	}
	return redis.ObjectConfig{
		HashMaxListpackEntries: num("hash-max-listpack-entries"),
		HashMaxListpackValue:   num("hash-max-listpack-value"),
		SetMaxIntsetEntries:    num("set-max-intset-entries"),
		ZSetMaxListpackEntries: num("zset-max-listpack-entries"),
		ZSetMaxListpackValue:   num("zset-max-listpack-value"),
		LFU:                    strings.HasSuffix(t.byName["maxmemory-policy"].value, "-lfu"),
	}
}

// notifyFlags are the keyspace event classes this node's commands
// publish (notify-keyspace-events), 0 for none: read by every command,
// so kept apart from the table, which CONFIG SET changes under s.mu.
func (s *Server) notifyFlags() uint16 { return uint16(s.notify.Load()) }

// notifyFlags are the classes notify-keyspace-events sets.
func (t *configTable) notifyFlags() uint16 {
	flags, _ := redis.ParseNotifyFlags(t.byName["notify-keyspace-events"].value)
	return flags
}

// wait is WAIT numreplicas timeout. Every write Orbit acknowledges is
// already in the synced logs of a majority of its range's replicas, so
// WAIT needs no waiting: it answers at once with the replicas besides the
// leader that a commit guarantees hold every acknowledged write — half of
// the replicas, rounded down, of the range that has the fewest (0 on one
// node, 1 on three). It answers at once when more are asked for too
// (Redis would block until the timeout): a replica beyond the majority
// may have the write, but nothing proves it. Arguments are checked as
// Redis checks them.
func (s *Server) wait(args [][]byte) redis.Reply {
	if _, err := strconv.ParseInt(string(args[1]), 10, 64); err != nil {
		return redis.Error("ERR value is not an integer or out of range")
	}
	timeout, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return redis.Error("ERR timeout is not an integer or out of range")
	}
	if timeout < 0 {
		return redis.Error("ERR timeout is negative")
	}
	fewest := -1
	for _, d := range s.router.Ranges() {
		if fewest < 0 || len(d.Replicas) < fewest {
			fewest = len(d.Replicas)
		}
	}
	return redis.Int(int64(max(fewest, 0) / 2))
}
