package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/kernel"
)

// A blocked client that goes away (issue 17, point 1): a second connection
// of the client's session blocks in BLPOP on a fresh list; once the
// session has it waiting, the connection is told its client left
// (session.Conn.Gone, what the wire does at EOF), and only then does the
// client push one element. The element must be in the list at the end
// (checkAbandoned): a session whose client left never takes it.
//
// That holds under any fault, because the blocked connection and the push
// share the session's one consensus client: a step of the BLPOP still in
// flight when the push is acknowledged carries a lower sequence number on
// the same range, so the range refuses it once the push applied.

// abandonedList is a list whose blocked reader went away before its one
// element was pushed.
type abandonedList struct {
	key, elem string
	client    int
	pushedAt  time.Duration
}

// goneWait bounds how long the client waits for the blocked command to
// return after Gone (it returns at once when Gone works).
const goneWait = 200 * time.Millisecond

// goneBlocker runs one round; it reports whether the push was answered.
func (c *redisCluster) goneBlocker(rt kernel.Runtime, sess *session.Server, rc redisConn, i, n int) bool {
	key, elem := fmt.Sprintf("q%d.%d", i, n), fmt.Sprintf("e%d.%d", i, n)
	conn := sess.NewConn(fmt.Sprintf("client-%d-blocked", i), nil)
	done := false
	rt.Go("redis blocked client", func(ctx context.Context) {
		defer conn.Close()
		replies, _ := conn.Do(ctx, [][]byte{[]byte("BLPOP"), []byte(key), []byte("0")})
		if len(replies) == 1 && replies[0].Kind == redis.KindArray && len(replies[0].Elems) == 2 {
			c.anomaly("BLPOP %s of a client that went away took an element: %s", key, describeReply(replies[0]))
		}
		done = true
	})
	// Until the session has the connection waiting (its first step
	// answered "not ready"), or it gave up (a failure reply).
	for !done && sess.Stats().Blocked == 0 {
		if rt.Sleep(rc.ctx, time.Millisecond) != nil {
			return false
		}
	}
	conn.Gone()
	for waited := time.Duration(0); !done && waited < goneWait; waited += time.Millisecond {
		if rt.Sleep(rc.ctx, time.Millisecond) != nil {
			return false
		}
	}
	r := rc.do("RPUSH", key, elem)
	switch outcomeOf(r) {
	case definite:
		if r.Kind != redis.KindInt || r.Int != 1 {
			c.anomaly("RPUSH %s %s (a fresh list): %s", key, elem, describeReply(r))
			return true
		}
		c.abandoned = append(c.abandoned, abandonedList{key: key, elem: elem, client: i, pushedAt: c.s.Elapsed()})
		return true
	}
	return false
}

// checkAbandoned: every list whose blocked reader left still holds the
// element pushed after it left.
func (c *redisCluster) checkAbandoned() error {
	for _, a := range c.abandoned {
		got, ok := c.final[a.key]
		if !ok {
			return fmt.Errorf("blocked clients: no final read of %s", a.key)
		}
		if len(got) != 1 || got[0] != a.elem {
			return fmt.Errorf("blocked clients: %s holds %q, want [%s]: client %d pushed it at %v after its blocked BLPOP's client went away (a session that lost its client took it)",
				a.key, got, a.elem, a.client, a.pushedAt)
		}
	}
	return nil
}
