package session

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// SLOWLOG, as Redis 7.0's (its slowlog.c), per node: the latest
// slowlog-max-len commands that took slowlog-log-slower-than microseconds
// or more (negative: none are logged; 0: every one), newest first, each
// with an ID, the Unix time it ended, its duration, its arguments (at most
// 32, each cut at 128 bytes, passwords redacted), the client's address
// and name. Commands refused before they ran, queued in MULTI, EXEC itself
// (Redis's skip_slowlog) are not logged; a transaction's commands are,
// each with its share of the EXEC's time (as INFO commandstats counts
// them).
//
// The duration is where Orbit and Redis differ: Redis times the command's
// execution on its thread, Orbit the command's whole trip through
// consensus (the sync of its log entry and the round to a majority
// included), which is what makes a write slow here. And a blocking
// command (BLPOP and the others, XREAD BLOCK) is never logged: Redis logs
// one only once it is served, for its execution alone, which here would
// be the time it waited.

const (
	slowlogMaxArgs  = 32  // SLOWLOG_ENTRY_MAX_ARGC
	slowlogMaxBytes = 128 // SLOWLOG_ENTRY_MAX_STRING
)

type slowEntry struct {
	id         int64
	unix       int64 // when it was logged, seconds
	micros     int64
	args       [][]byte
	addr, name string
}

// slowLog is a node's slow log. Its settings are read at every command,
// from the config table's values copied here (CONFIG SET).
type slowLog struct {
	mu      sync.Mutex
	entries []slowEntry // oldest first
	nextID  int64
	slower  int64 // slowlog-log-slower-than, µs
	maxLen  int64 // slowlog-max-len
}

// noteSlow logs a command that ran for took in the node's slow log, if
// it was slow enough.
func (c *Conn) noteSlow(spec *redis.Spec, args [][]byte, took time.Duration, now time.Time) {
	c.s.slowlog.note(spec, args, took, now, c.addr, c.info().name)
}

// configureSlowlog gives the slow log the config table's settings; under
// s.mu.
func (s *Server) configureSlowlog() {
	s.slowlog.configure(s.config.byName["slowlog-log-slower-than"].value, s.config.byName["slowlog-max-len"].value)
}

// configure takes the settings as CONFIG GET reports them.
func (l *slowLog) configure(slower, maxLen string) {
	s, err1 := strconv.ParseInt(slower, 10, 64)
	m, err2 := strconv.ParseInt(maxLen, 10, 64)
	if err1 != nil || err2 != nil {
		panic(fmt.Sprintf("session: slowlog settings %q, %q not validated", slower, maxLen))
	}
	l.mu.Lock()
	l.slower, l.maxLen = s, m
	l.mu.Unlock()
}

// note logs a command (spec nil: ACL, which has none) that ran for took,
// if it is slow enough, and trims
// the log to slowlog-max-len (as Redis does, at each command, so that
// lowering the length takes effect at the next one).
func (l *slowLog) note(spec *redis.Spec, args [][]byte, took time.Duration, now time.Time, addr, name string) {
	if spec != nil && (spec.HasFlag("skip_slowlog") || spec.Where == redis.WhereBlocking || redis.Blocks(args)) {
		return
	}
	micros := took.Microseconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slower < 0 {
		return
	}
	if micros >= l.slower {
		l.entries = append(l.entries, slowEntry{id: l.nextID, unix: now.Unix(), micros: micros,
			args: slowArgs(args), addr: addr, name: name})
		l.nextID++
	}
	if over := int64(len(l.entries)) - l.maxLen; over > 0 {
		// Resliced, not copied: a full log under load drops one entry a
		// command, and append moves the live ones when the array fills.
		l.entries = l.entries[over:]
	}
}

// slowArgs is what the log keeps of a command's arguments: redacted, at
// most slowlogMaxArgs (the last saying how many more there were), each
// cut at slowlogMaxBytes.
func slowArgs(args [][]byte) [][]byte {
	redacted := redact(args)
	n := min(len(args), slowlogMaxArgs)
	out := make([][]byte, n)
	for i := range n {
		a := args[i]
		switch {
		case n != len(args) && i == n-1:
			a = fmt.Appendf(nil, "... (%d more arguments)", len(args)-n+1)
		case redacted[i]:
			a = []byte("(redacted)")
		case len(a) > slowlogMaxBytes:
			a = fmt.Appendf(append([]byte(nil), a[:slowlogMaxBytes]...), "... (%d more bytes)", len(a)-slowlogMaxBytes)
		default:
			a = append([]byte(nil), a...)
		}
		out[i] = a
	}
	return out
}

// redact marks the arguments Redis 7.0 keeps out of the slow log:
// passwords and ACL rules.
func redact(args [][]byte) []bool {
	out := make([]bool, len(args))
	from := func(i int) {
		for ; i < len(args); i++ {
			out[i] = true
		}
	}
	is := func(i int, s string) bool { return i < len(args) && strings.EqualFold(string(args[i]), s) }
	switch {
	case is(0, "auth"):
		from(1)
	case is(0, "acl") && is(1, "setuser"):
		from(2)
	case is(0, "hello"):
		for i := 2; i < len(args); i++ {
			if is(i, "auth") {
				for j := i + 1; j <= i+2 && j < len(args); j++ {
					out[j] = true
				}
				i += 2
			}
		}
	case is(0, "migrate"):
		for i := 6; i < len(args); i++ {
			switch {
			case is(i, "auth") && i+1 < len(args):
				out[i+1] = true
				i++
			case is(i, "auth2") && i+2 < len(args):
				out[i+1], out[i+2] = true, true
				i += 2
			}
		}
	case is(0, "config") && is(1, "set"):
		for i := 2; i+1 < len(args); i += 2 {
			switch strings.ToLower(string(args[i])) {
			case "requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass":
				out[i+1] = true
			}
		}
	}
	return out
}

// slowlogHelp is SLOWLOG HELP's text, as Redis 7.0.15 gives it.
var slowlogHelp = []string{
	"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GET [<count>]",
	"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
	"    Entries are made of:",
	"    id, timestamp, time in microseconds, arguments array, client IP and port,",
	"    client name",
	"LEN",
	"    Return the length of the slowlog.",
	"RESET",
	"    Reset the slowlog.",
	"HELP",
	"    Prints this help.",
}

// command is the SLOWLOG command.
func (l *slowLog) command(args [][]byte) redis.Reply {
	sub := strings.ToLower(string(args[1]))
	typed := string(args[1][:min(len(args[1]), 128)])
	switch sub {
	case "help":
		if len(args) != 2 {
			return arityError("slowlog|help")
		}
		lines := make([]redis.Reply, len(slowlogHelp))
		for i, s := range slowlogHelp {
			lines[i] = redis.SimpleString(s)
		}
		return redis.Array(lines...)
	case "len":
		if len(args) != 2 {
			return arityError("slowlog|len")
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return redis.Int(int64(len(l.entries)))
	case "reset":
		if len(args) != 2 {
			return arityError("slowlog|reset")
		}
		l.mu.Lock()
		l.entries = nil
		l.mu.Unlock()
		return redis.OK()
	case "get":
		if len(args) > 3 {
			// Redis's own check, after the command table's (GET takes any
			// number of arguments there).
			return redis.Error(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%s'. Try SLOWLOG HELP.", typed))
		}
		count := int64(10)
		if len(args) == 3 {
			n, err := strconv.ParseInt(string(args[2]), 10, 64)
			if err != nil || n < -1 {
				return redis.Error("ERR count should be greater than or equal to -1")
			}
			count = n
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if count == -1 || count > int64(len(l.entries)) {
			count = int64(len(l.entries))
		}
		out := make([]redis.Reply, 0, count)
		for i := len(l.entries) - 1; i >= len(l.entries)-int(count); i-- {
			e := l.entries[i]
			argv := make([]redis.Reply, len(e.args))
			for j, a := range e.args {
				argv[j] = redis.Bulk(a)
			}
			out = append(out, redis.Array(redis.Int(e.id), redis.Int(e.unix), redis.Int(e.micros),
				redis.Array(argv...), redis.BulkString(e.addr), redis.BulkString(e.name)))
		}
		return redis.Array(out...)
	}
	return redis.Error(fmt.Sprintf("ERR unknown subcommand '%s'. Try SLOWLOG HELP.", typed))
}
