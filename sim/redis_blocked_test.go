package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

// A blocked client unblocked as an element arrives (CLIENT UNBLOCK): a
// second connection of the client's session blocks in BLPOP on a fresh
// list; once the session has a client waiting, the client pushes one
// element and, 0–150 ms later, unblocks the BLPOP (TIMEOUT or ERROR), so
// that the UNBLOCK meets the BLPOP waiting (it looks again when a write
// applies on its node, or after BlockPoll, 100 ms), probing, in the
// middle of the step that pops, or done. Whatever the race, the element is the BLPOP's
// reply or still in the list at the end (checkUnblocked): UNBLOCK ends
// the wait, never a step's outcome (planted: unblock-cancels-step).

// unblockedList is a list whose blocked reader was unblocked after its
// one element was pushed; took says whether the BLPOP returned it.
type unblockedList struct {
	key, elem string
	client    int
	took      bool
}

// unblockRace runs one round; it reports whether the push was answered.
func (c *redisCluster) unblockRace(rt kernel.Runtime, sess *session.Server, rc redisConn, rng *rand.Rand, i, n int) bool {
	key, elem := fmt.Sprintf("u%d.%d", i, n), fmt.Sprintf("e%d.%d", i, n)
	conn := sess.NewConn(fmt.Sprintf("client-%d-unblocked", i), nil)
	done := false
	var reply redis.Reply
	rt.Go("redis unblocked client", func(ctx context.Context) {
		defer conn.Close()
		if replies, _ := conn.Do(ctx, [][]byte{[]byte("BLPOP"), []byte(key), []byte("0")}); len(replies) == 1 {
			reply = replies[0]
		}
		done = true
	})
	for !done && sess.Stats().Blocked == 0 {
		if rt.Sleep(rc.ctx, time.Millisecond) != nil {
			return false
		}
	}
	r := rc.do("RPUSH", key, elem)
	pushed := outcomeOf(r) == definite
	if pushed && (r.Kind != redis.KindInt || r.Int != 1) {
		c.anomaly("RPUSH %s %s (a fresh list): %s", key, elem, describeReply(r))
		return true
	}
	if rt.Sleep(rc.ctx, time.Duration(rng.IntN(151))*time.Millisecond) != nil {
		return false
	}
	how := []string{"TIMEOUT", "ERROR"}[rng.IntN(2)]
	u := rc.do("CLIENT", "UNBLOCK", fmt.Sprint(conn.ID()), how)
	if u.Kind != redis.KindInt || u.Int < 0 || u.Int > 1 {
		c.anomaly("CLIENT UNBLOCK %d %s: %s", conn.ID(), how, describeReply(u))
		return true
	}
	for waited := time.Duration(0); !done && waited < unblockWait; waited += time.Millisecond {
		if rt.Sleep(rc.ctx, time.Millisecond) != nil {
			return false
		}
	}
	if !done || !pushed {
		return pushed // a step stuck behind a fault, or a push of unknown outcome: nothing to check
	}
	switch {
	case reply.Kind == redis.KindArray && len(reply.Elems) == 2:
		if string(reply.Elems[1].Str) != elem {
			c.anomaly("BLPOP %s returned %s; the one element pushed was %s", key, describeReply(reply), elem)
			return true
		}
		c.unblocked = append(c.unblocked, unblockedList{key: key, elem: elem, client: i, took: true})
	case reply.Kind == redis.KindNullArray, reply.Kind == redis.KindError && strings.HasPrefix(string(reply.Str), "UNBLOCKED "):
		c.unblocked = append(c.unblocked, unblockedList{key: key, elem: elem, client: i})
	}
	// Any other reply (a failure under faults): the step's outcome is
	// unknown.
	return true
}

// unblockWait bounds how long the client waits for an unblocked BLPOP to
// return (a step under way finishes first).
const unblockWait = 2 * time.Second

// checkUnblocked: every list whose BLPOP was unblocked holds its element
// unless the BLPOP returned it.
func (c *redisCluster) checkUnblocked() error {
	for _, u := range c.unblocked {
		got, ok := c.final[u.key]
		if !ok {
			return fmt.Errorf("unblocked clients: no final read of %s", u.key)
		}
		want := []string{u.elem}
		if u.took {
			want = nil
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("unblocked clients: %s holds %q, want %q: client %d pushed %s and unblocked its BLPOP, which took it: %t",
				u.key, got, want, u.client, u.elem, u.took)
		}
	}
	return nil
}

// unblockedTook counts the unblocked BLPOPs that returned their element.
func unblockedTook(us []unblockedList) int {
	n := 0
	for _, u := range us {
		if u.took {
			n++
		}
	}
	return n
}
