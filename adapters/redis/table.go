package redis

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Where says who executes a command.
type Where uint8

const (
	// WhereKeyed commands run through Exec on the one range that holds their
	// keys: writes through the Raft log, reads at a ReadIndex.
	WhereKeyed Where = iota + 1
	// WhereBlocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH) run through
	// TryBlocking; the caller waits and retries.
	WhereBlocking
	// WhereRanges commands (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB,
	// FLUSHALL) run on every range with the per-range helpers in ranges.go
	// and the caller merges the results.
	WhereRanges
	// WhereServer commands (connection, transactions, pub/sub, server
	// introspection) are the caller's entirely; the table only describes
	// them, for arity checks and COMMAND.
	WhereServer
)

// Spec describes one command as Redis 7.0's command table does.
type Spec struct {
	// Name is lower case.
	Name string
	// Arity counts the command name; negative means "at least -Arity".
	Arity int
	// Flags as COMMAND INFO prints them ("write", "readonly", "denyoom",
	// "fast", "movablekeys", ...).
	Flags []string
	// FirstKey, LastKey and Step are the legacy key positions of COMMAND
	// INFO: LastKey -1 means the last argument, 0 with FirstKey 0 means no
	// keys. Commands with the "movablekeys" flag need Keys.
	FirstKey, LastKey, Step int
	// ACLCategories as COMMAND INFO prints them ("@read", "@string", ...).
	ACLCategories []string
	Where         Where

	write, readonly bool
	info, docs      Reply // COMMAND INFO and COMMAND DOCS entries
	run             handler
	// subcommands are a container's (OBJECT, XGROUP, XINFO, and the
	// server's CLIENT, CONFIG, ...) subcommands, from COMMAND INFO.
	subcommands map[string]subcommand
}

// subcommand is one subcommand of a container command.
type subcommand struct {
	arity    int // the container's name included
	firstKey int // 0: no key; else the position of its one key
	flags    []string
}

// genSpec is one entry of table_gen.go.
type genSpec struct {
	name                    string
	arity                   int
	flags                   []string
	firstKey, lastKey, step int
	acl                     []string
	info, docs              string // RESP3
}

// tableCommands lists every command in the table: those this package
// executes and the caller's server commands. table_gen.go is generated for
// exactly these (see gentable_test.go).
func tableCommands() []string {
	var names []string
	names = append(names, keyedCommands...)
	names = append(names, blockingCommands...)
	names = append(names, rangeCommands...)
	names = append(names, serverCommands...)
	return names
}

// keyedCommands run through Exec. One without a handler (not implemented
// yet) is left out of the table, so Exec and COMMAND agree it is unknown.
var keyedCommands = []string{
	// strings
	"get", "set", "setnx", "setex", "psetex", "getset", "getdel", "getex", "mget", "mset", "msetnx",
	"incr", "incrby", "incrbyfloat", "decr", "decrby", "append", "strlen", "getrange", "substr", "setrange",
	// keys
	"del", "unlink", "exists", "expire", "pexpire", "expireat", "pexpireat", "expiretime", "pexpiretime",
	"ttl", "pttl", "persist", "type", "rename", "renamenx", "touch", "copy", "move",
	// hashes
	"hset", "hsetnx", "hget", "hmget", "hmset", "hdel", "hgetall", "hexists", "hincrby", "hincrbyfloat",
	"hkeys", "hvals", "hlen", "hstrlen", "hscan", "hrandfield",
	// lists
	"lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "lrange", "llen", "lindex", "lset", "lrem",
	"ltrim", "linsert", "lpos", "lmove", "rpoplpush", "lmpop",
	// sets
	"sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember", "sinter",
	"sunion", "sdiff", "sinterstore", "sunionstore", "sdiffstore", "smove", "sscan", "sintercard",
	// sorted sets
	"zadd", "zrem", "zscore", "zmscore", "zincrby", "zcard", "zcount", "zrange", "zrangebyscore",
	"zrevrange", "zrevrangebyscore", "zrangebylex", "zrevrangebylex", "zrank", "zrevrank", "zpopmin",
	"zpopmax", "zrangestore", "zunionstore", "zinterstore", "zscan", "zdiffstore", "zunion", "zinter",
	"zmpop", "zintercard",
	"zdiff", "zremrangebyrank", "zremrangebyscore", "zremrangebylex", "zlexcount", "zrandmember",
	// bitmaps
	"setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro",
	// hyperloglog
	"pfadd", "pfcount", "pfmerge",
	// geo
	"geoadd", "geopos", "geodist", "geohash", "geosearch", "geosearchstore", "georadius", "georadiusbymember",
	"georadius_ro", "georadiusbymember_ro",
	// lcs.go, object.go
	"lcs", "object", "memory",
	// streams
	"xadd", "xlen", "xrange", "xrevrange", "xdel", "xtrim", "xread", "xreadgroup", "xsetid", "xinfo",
	"xgroup", "xack", "xpending", "xclaim", "xautoclaim",
	// scripting.go, sort.go
	"eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro", "sort", "sort_ro",
}

// blockingCommands run through TryBlocking.
var blockingCommands = []string{"blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"}

// rangeCommands run on every range (ranges.go).
var rangeCommands = []string{"keys", "scan", "dbsize", "randomkey", "flushdb", "flushall"}

// serverCommands are the caller's; listed so that COMMAND can describe them.
var serverCommands = []string{
	"auth", "client", "command", "config", "discard", "echo", "exec", "hello",
	"info", "multi", "ping", "psubscribe", "publish", "pubsub", "punsubscribe",
	"quit", "reset", "script", "select", "subscribe", "time", "unsubscribe", "unwatch", "watch",
	"function", "wait", "slowlog", "monitor",
}

var (
	tableOnce sync.Once
	table     map[string]*Spec
	tableList []*Spec // sorted by name
)

func buildTable() {
	table = make(map[string]*Spec, len(generatedSpecs))
	for _, g := range generatedSpecs {
		if len(g.name) > maxCommandName {
			panic(fmt.Sprintf("redis: command %q is longer than lookupFold's %d bytes", g.name, maxCommandName))
		}
		s := &Spec{
			Name: g.name, Arity: g.arity, Flags: g.flags,
			FirstKey: g.firstKey, LastKey: g.lastKey, Step: g.step,
			ACLCategories: g.acl,
			// PFCOUNT is flagged "readonly" but stores the cardinality it
			// computed in the value (hll.go), as Redis does: it runs as a
			// write (and, as on a Redis primary, deletes an expired key it
			// meets).
			// EVAL, EVALSHA and FCALL carry neither flag (a script may
			// do either): they run as writes, through the log.
			write: slices.Contains(g.flags, "write") || g.name == "pfcount" || g.name == "eval" || g.name == "evalsha" ||
				g.name == "fcall",
			readonly: slices.Contains(g.flags, "readonly") && g.name != "pfcount",
		}
		s.info = mustParse(g.info)
		s.docs = mustParse(g.docs)
		if len(s.info.Elems) == 10 && len(s.info.Elems[9].Elems) > 0 {
			s.subcommands = map[string]subcommand{}
			write := false
			for _, sub := range s.info.Elems[9].Elems {
				_, name, _ := strings.Cut(string(sub.Elems[0].Str), "|")
				sc := subcommand{arity: int(sub.Elems[1].Int), firstKey: int(sub.Elems[3].Int)}
				for _, f := range sub.Elems[2].Elems {
					sc.flags = append(sc.flags, string(f.Str))
					write = write || string(f.Str) == "write"
				}
				s.subcommands[name] = sc
			}
			if handlers[g.name] != nil {
				// A keyed container (OBJECT, XGROUP, XINFO) has no flags
				// of its own: it writes if a subcommand does, else it is
				// a read.
				s.write, s.readonly = write, !write
			}
		}
		switch {
		case handlers[g.name] != nil:
			s.Where, s.run = WhereKeyed, handlers[g.name]
		case slices.Contains(keyedCommands, g.name):
			continue // not implemented yet
		case slices.Contains(blockingCommands, g.name):
			s.Where = WhereBlocking
		case slices.Contains(rangeCommands, g.name):
			s.Where = WhereRanges
		default:
			s.Where = WhereServer
		}
		table[g.name] = s
		tableList = append(tableList, s)
	}
	slices.SortFunc(tableList, func(a, b *Spec) int { return strings.Compare(a.Name, b.Name) })
}

func mustParse(s string) Reply {
	r, n, err := ParseReply([]byte(s))
	if err != nil || n != len(s) {
		panic("redis: table_gen.go holds a malformed reply: " + strconv.Quote(s))
	}
	return r
}

// Lookup finds a command by name, in any case.
func Lookup(name string) (*Spec, bool) { return lookupFold(name) }

func lookupBytes(name []byte) (*Spec, bool) { return lookupFold(name) }

// maxCommandName bounds a command's name (the longest, 20 bytes, is
// georadiusbymember_ro).
const maxCommandName = 32

// lookupFold looks name up in any case without allocating (every command
// is looked up, some several times: strings.ToLower's copy was 7% of a
// pipelined GET's CPU).
func lookupFold[S ~string | ~[]byte](name S) (*Spec, bool) {
	tableOnce.Do(buildTable)
	var buf [maxCommandName]byte
	if len(name) > len(buf) {
		return nil, false // longer than any command's name
	}
	low := buf[:len(name)]
	for i := range len(name) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	s, ok := table[string(low)]
	return s, ok
}

// Commands lists the table sorted by name, for COMMAND and COMMAND COUNT.
func Commands() []*Spec {
	tableOnce.Do(buildTable)
	return tableList
}

// ReadOnly reports a command that never writes, to be run as a read: one
// flagged "readonly", or a container none of whose subcommands writes
// (OBJECT, XINFO); not PFCOUNT, which Redis flags "readonly" though it may
// write.
func (s *Spec) ReadOnly() bool { return s.readonly }

// HasFlag reports whether the command carries a COMMAND INFO flag.
func (s *Spec) HasFlag(flag string) bool { return slices.Contains(s.Flags, flag) }

// HasFlagFor reports whether the command args run has flag: its
// subcommand's flags for a container (Redis runs the subcommand, with
// its own flags: CLIENT ID is not "admin", CLIENT LIST is), the
// command's otherwise (and for a subcommand it does not know).
func (s *Spec) HasFlagFor(args [][]byte, flag string) bool {
	if len(s.subcommands) > 0 && len(args) > 1 {
		if sub, ok := s.subcommands[strings.ToLower(string(args[1]))]; ok {
			return slices.Contains(sub.flags, flag)
		}
	}
	return s.HasFlag(flag)
}

// ArityOK reports whether argc arguments (the name included) fit the arity.
func (s *Spec) ArityOK(argc int) bool {
	if s.Arity >= 0 {
		return argc == s.Arity
	}
	return argc >= -s.Arity
}

// InfoReply is the command's entry in COMMAND INFO (and COMMAND).
func (s *Spec) InfoReply() Reply { return s.info }

// DocsReply is the value of the command's entry in COMMAND DOCS (the caller
// puts the name before it in the map).
func (s *Spec) DocsReply() Reply { return s.docs }

// Keys returns the key arguments of a command (args[0] is its name), in
// order, duplicates included. It returns nil for an unknown command, a
// command without keys, or arguments too malformed to find the keys (the
// command itself will then fail with a syntax or arity error; the caller may
// run it on any range).
func Keys(args [][]byte) [][]byte {
	if len(args) == 0 {
		return nil
	}
	s, ok := lookupBytes(args[0])
	if !ok || !s.ArityOK(len(args)) {
		return nil
	}
	if s.subcommands != nil {
		// A container (OBJECT, XGROUP, XINFO: every subcommand but HELP
		// takes one key; CLIENT, CONFIG, ...: none).
		if name, ok, _ := s.subcommandOf(args); ok && s.subcommands[name].firstKey > 0 {
			at := s.subcommands[name].firstKey
			return args[at : at+1]
		}
		return nil
	}
	switch s.Name {
	case "zunionstore", "zinterstore", "zdiffstore":
		return numkeysKeys(args, 2, args[1:2])
	case "zunion", "zinter", "zdiff", "sintercard", "zintercard", "lmpop", "zmpop":
		return numkeysKeys(args, 1, nil)
	case "blmpop", "bzmpop", "eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro":
		return numkeysKeys(args, 2, nil)
	case "georadius", "georadiusbymember":
		// The key specs: the key, then the key after the first STORE and
		// the key after the first STOREDIST, searched from the options on
		// (only the last of the two is written, but Redis routes on both).
		from := 6
		if s.Name == "georadiusbymember" {
			from = 5
		}
		keys := args[1:2:2]
		for _, kw := range []string{"store", "storedist"} {
			for i := from; i < len(args)-1; i++ {
				if eqFold(args[i], kw) {
					keys = append(keys, args[i+1])
					break
				}
			}
		}
		return keys
	case "xread", "xreadgroup":
		return xreadKeys(args, s.Name == "xreadgroup")
	case "sort":
		return sortKeys(args)
	}
	if s.FirstKey <= 0 {
		return nil
	}
	last := s.LastKey
	if last < 0 {
		last = len(args) + last
	}
	var keys [][]byte
	for i := s.FirstKey; i <= last && i < len(args); i += s.Step {
		keys = append(keys, args[i])
	}
	return keys
}

// IsContainer reports whether the command has subcommands (CLIENT,
// CONFIG, OBJECT, ...).
func (s *Spec) IsContainer() bool { return s.subcommands != nil }

// subcommandOf is the subcommand of a container command that args name,
// and whether args fit its arity; an unknown one has the name "" and
// Redis's error in bad.
func (s *Spec) subcommandOf(args [][]byte) (name string, arityOK bool, bad Reply) {
	name = strings.ToLower(string(args[1]))
	sub, ok := s.subcommands[name]
	if !ok {
		arg := cstr(args[1][:min(len(args[1]), 128)])
		return "", false, Error("ERR unknown subcommand '" + string(arg) + "'. Try " + strings.ToUpper(string(cstr(args[0]))) + " HELP.")
	}
	if sub.arity >= 0 {
		return name, len(args) == sub.arity, Reply{}
	}
	return name, len(args) >= -sub.arity, Reply{}
}

// subcommand is the subcommand of the container command c runs, checked
// as Redis's processCommand checks it: ok false when it is unknown or its
// arity does not fit, with the error to reply.
func (c *ctx) subcommand() (name string, bad Reply, ok bool) { return c.spec.Subcommand(c.args) }

// Subcommand is the subcommand of the container command args run (args[0]
// is s's name), checked as Redis's processCommand checks it: ok false
// when it is unknown or its arity does not fit, with the error to reply.
func (s *Spec) Subcommand(args [][]byte) (name string, bad Reply, ok bool) {
	name, arityOK, bad := s.subcommandOf(args)
	switch {
	case name == "":
		return "", bad, false
	case !arityOK:
		return "", arityError(s.Name + "|" + name), false
	}
	return name, Reply{}, true
}

// xreadKeys are XREAD's and XREADGROUP's keys as Redis finds them: by the
// key spec (the first half of what follows the first STREAMS from the
// options on), or when that fails, by xreadGetKeys (which skips the
// options' values).
func xreadKeys(args [][]byte, readGroup bool) [][]byte {
	from := 1
	if readGroup {
		from = 4
	}
	for i := from; i < len(args)-1; i++ {
		if cEqualFold(args[i], "streams") {
			first := i + 1
			last := first + (len(args)-first)/2 - 1
			if last >= first && last < len(args) {
				return args[first : last+1]
			}
			break
		}
	}
	at := -1
	for i := 1; i < len(args); i++ {
		if cEqualFold(args[i], "block") || cEqualFold(args[i], "count") {
			i++
		} else if cEqualFold(args[i], "group") {
			i += 2
		} else if cEqualFold(args[i], "streams") {
			at = i
			break
		} else if !cEqualFold(args[i], "noack") {
			break
		}
	}
	n := len(args) - at - 1
	if at < 0 || n == 0 || n%2 != 0 {
		return nil
	}
	return args[at+1 : at+1+n/2]
}

// numkeysKeys reads "numkeys key..." at args[at], after the fixed keys.
func numkeysKeys(args [][]byte, at int, fixed [][]byte) [][]byte {
	n, ok := parseInt(args[at])
	if !ok || n < 1 || n > int64(len(args)-at-1) {
		return nil
	}
	keys := append([][]byte(nil), fixed...)
	return append(keys, args[at+1:at+1+int(n)]...)
}
