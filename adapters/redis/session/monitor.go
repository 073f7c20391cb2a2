package session

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// MONITOR, as Redis 7.0's (replicationFeedMonitors), per node: a
// connection that sent MONITOR receives, as a status line, every command
// this node's connections ran, once it ran:
//
//	+1733443200.123456 [0 127.0.0.1:50312] "set" "foo" "bar"
//
// the time it ended (seconds and microseconds), the connection's database
// after it and its address, and the arguments quoted as Redis's
// sdscatrepr quotes them, passwords "(redacted)" as the slow log redacts
// them. Not shown, as in Redis: commands refused before they ran (arity,
// ACL, unknown), commands queued in MULTI (shown when EXEC runs them,
// before the EXEC), and administrative ones (the @admin category: CONFIG,
// CLIENT LIST, SLOWLOG GET, MONITOR itself ...).
//
// A monitoring connection may still send commands that leave the keyspace
// alone (PING, SELECT, CLIENT ID, SUBSCRIBE ...); a command that reads or
// writes keys, or may replicate (PUBLISH, EVAL), is refused with Redis's
// "Replica can't interact with the keyspace" (Redis makes a monitor a
// replica). RESET ends monitoring; a second MONITOR is ignored without a
// reply; MONITOR inside MULTI fails at EXEC, as Redis's does.
//
// Differences, in adapters/redis/doc.go too: a node shows only what its
// own connections ran (as one node of a Redis Cluster does); a blocking
// command is shown when it returns, not when it starts to wait; a script
// is shown as its EVAL or FCALL, without the "[0 lua]" lines of the calls
// it made (it runs at the range's leaseholder, perhaps another node).

// monitors are a node's monitoring connections.
type monitors struct {
	mu    sync.Mutex
	conns map[*Conn]bool
	// n is len(conns), read without the lock by every command: with no
	// monitor, a command pays one atomic load.
	n atomic.Int32
}

func (m *monitors) add(c *Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns == nil {
		m.conns = map[*Conn]bool{}
	}
	m.conns[c] = true
	m.n.Store(int32(len(m.conns)))
}

func (m *monitors) remove(c *Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, c)
	m.n.Store(int32(len(m.conns)))
}

// list is the monitoring connections, in connection ID order.
func (m *monitors) list() []*Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedConns(m.conns)
}

// monitor is the MONITOR command.
func (c *Conn) monitor() []redis.Reply {
	switch {
	case c.execing:
		return errorReply("ERR MONITOR isn't allowed for DENY BLOCKING client")
	case c.monitoring:
		return nil // monitorCommand ignores it, without a reply
	}
	c.monitoring = true
	c.show(func(i *clientInfo) { i.monitoring = true })
	c.s.monitors.add(c)
	return one(redis.OK())
}

// stopMonitoring ends MONITOR (RESET, or the connection closed).
func (c *Conn) stopMonitoring() {
	if c.monitoring {
		c.monitoring = false
		c.show(func(i *clientInfo) { i.monitoring = false })
		c.s.monitors.remove(c)
	}
}

// monitorRefuses answers a monitoring connection's command that would
// read or write keys, or may replicate (processCommand's check for
// replicas); ok false when the command may run.
func (c *Conn) monitorRefuses(spec *redis.Spec, args [][]byte) (redis.Reply, bool) {
	if !c.monitoring {
		return redis.Reply{}, false
	}
	switch {
	case spec.HasFlagFor(args, "write"), spec.HasFlagFor(args, "readonly"),
		spec.Name == "publish", spec.Name == "eval", spec.Name == "evalsha", spec.Name == "fcall": // may_replicate
		return redis.Error("ERR Replica can't interact with the keyspace"), true
	}
	return redis.Reply{}, false
}

// feedMonitors shows a command this connection ran to the node's
// monitoring connections (args[0] is its name as the client sent it).
// When this connection monitors too, its own line is returned instead of
// pushed (Kind 0: none), for Do to send after the command's reply, where
// Redis puts it.
func (c *Conn) feedMonitors(args [][]byte, now time.Time) (self redis.Reply) {
	if c.s.monitors.n.Load() == 0 || adminCommand(args) {
		return redis.Reply{}
	}
	line := fmt.Appendf(nil, "%d.%06d [%d %s]", now.Unix(), now.Nanosecond()/1000, c.db, c.addr)
	redacted := redact(args)
	for i, a := range args {
		line = append(line, ' ')
		if redacted[i] {
			a = []byte("(redacted)")
		}
		line = appendRepr(line, a)
	}
	r := redis.SimpleString(string(line))
	for _, m := range c.s.monitors.list() {
		switch {
		case m == c:
			self = r
		case m.push != nil:
			m.push(r)
		}
	}
	return self
}

// adminCommand reports whether args run a command (or subcommand) of the
// @admin category, which Redis never shows to monitors (CMD_ADMIN).
func adminCommand(args [][]byte) bool {
	table := aclTable()
	name := strings.ToLower(string(args[0]))
	i, ok := aclByName[name]
	if !ok {
		return false
	}
	if len(table[i].subs) > 0 && len(args) > 1 {
		if j, ok := aclByName[name+"|"+strings.ToLower(string(args[1]))]; ok {
			i = j
		}
	}
	return table[i].cats&adminCategory != 0
}

// adminCategory is the @admin bit of aclCommand.cats.
var adminCategory = uint32(1) << slices.Index(aclCategories, "admin")

// appendRepr appends a quoted as Redis's sdscatrepr does.
func appendRepr(dst, a []byte) []byte {
	dst = append(dst, '"')
	for _, b := range a {
		switch b {
		case '\\', '"':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\a':
			dst = append(dst, '\\', 'a')
		case '\b':
			dst = append(dst, '\\', 'b')
		default:
			if b >= 0x20 && b < 0x7f { // isprint in the C locale
				dst = append(dst, b)
			} else {
				dst = fmt.Appendf(dst, "\\x%02x", b)
			}
		}
	}
	return append(dst, '"')
}
