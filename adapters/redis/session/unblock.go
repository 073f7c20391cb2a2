package session

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/internal/mutation"
)

// CLIENT UNBLOCK, as Redis 7.0's: a client blocked in BLPOP, BLMOVE,
// XREAD BLOCK and the others is answered at once, as if its timeout had
// passed (TIMEOUT, the default) or with Redis's UNBLOCKED error (ERROR),
// and the caller gets 1; a client that is not blocked, or no client by
// that ID on this node, gives 0.
//
// A blocked command alternates between waiting and steps (a try at its
// range, which may take an element). UNBLOCK ends the wait only: a step
// in flight finishes, and if it took an element the client gets it (it
// was served before the UNBLOCK could stop it; ending the step's context
// instead would leave its outcome unknown, and an element could be lost).

// unblockHow is what CLIENT UNBLOCK asked of a blocked command.
type unblockHow int

const (
	notUnblocked unblockHow = iota
	unblockTimeout
	unblockError
)

// blockedSpan marks the connection blocked until the returned function
// runs (at the blocking command's end).
func (c *Conn) blockedSpan() func() {
	c.goneMu.Lock()
	c.blocked, c.unblock = true, notUnblocked
	c.goneMu.Unlock()
	c.show(func(i *clientInfo) { i.blocked = true })
	return func() {
		c.goneMu.Lock()
		c.blocked, c.unblock, c.stopBlock = false, notUnblocked, nil
		c.goneMu.Unlock()
		c.show(func(i *clientInfo) { i.blocked = false })
	}
}

// waitBlocked is waitStep for a blocked command, ended early by CLIENT
// UNBLOCK as well (false then, as for a deadline passed).
func (c *Conn) waitBlocked(ctx context.Context, deadline time.Time) bool {
	wctx, cancel := c.s.rt.WithCancel(ctx)
	defer cancel()
	c.goneMu.Lock()
	if c.unblock != notUnblocked {
		c.goneMu.Unlock()
		return false
	}
	c.stopBlock = cancel
	c.goneMu.Unlock()
	ok := c.s.waitStep(wctx, deadline)
	c.goneMu.Lock()
	c.stopBlock = nil
	c.goneMu.Unlock()
	return ok
}

// unblockedStep is the reply for a step that failed (err): the planted
// unblock-cancels-step answers it as unblocked, whatever the step did.
func (c *Conn) unblockedStep(spec *redis.Spec, err error) redis.Reply {
	if r, ok := c.unblocked(spec); ok && mutation.On(MutUnblockCancelsStep) {
		return r
	}
	return failure(err)
}

// unblocked is the reply a CLIENT UNBLOCK asked for, if one did.
func (c *Conn) unblocked(spec *redis.Spec) (redis.Reply, bool) {
	c.goneMu.Lock()
	how := c.unblock
	c.goneMu.Unlock()
	switch how {
	case unblockTimeout:
		return redis.TimeoutReply(spec.Name), true
	case unblockError:
		return redis.Error("UNBLOCKED client unblocked via CLIENT UNBLOCK"), true
	}
	return redis.Reply{}, false
}

// clientUnblock is CLIENT UNBLOCK id [TIMEOUT|ERROR].
func (s *Server) clientUnblock(args [][]byte) redis.Reply {
	if len(args) > 4 {
		return redis.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try CLIENT HELP.")
	}
	how := unblockTimeout
	if len(args) == 4 {
		switch strings.ToLower(string(args[3])) {
		case "timeout":
		case "error":
			how = unblockError
		default:
			return redis.Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
		}
	}
	id, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return redis.Error("ERR value is not an integer or out of range")
	}
	s.mu.Lock()
	target := s.conns[id]
	s.mu.Unlock()
	if target == nil {
		return redis.Int(0)
	}
	target.goneMu.Lock()
	if !target.blocked || target.unblock != notUnblocked {
		target.goneMu.Unlock()
		return redis.Int(0)
	}
	target.unblock = how
	stop := target.stopBlock
	if mutation.On(MutUnblockCancelsStep) {
		stop = target.stopWait // the whole command's context, steps included
	}
	target.goneMu.Unlock() // a leaf lock: the wait ends outside it
	if stop != nil {
		stop()
	}
	return redis.Int(1)
}
