package sim

import (
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/adapters/redis/session"
)

// Databases under faults: a second connection of the client's session
// SELECTs a database other than 0 and SETs a fresh key there; the final
// reads require every acknowledged one in its database, and none of them
// in database 0 (checkDatabases). The commands go through consensus
// wrapped with their database (redis.InDB) and apply through the state
// machine's database view, on every replica.

// dbWrite is a key written in a database other than 0.
type dbWrite struct {
	db         int
	key, value string
	at         time.Duration
}

// dbWrite runs one round; it reports whether the SET was answered.
func (c *redisCluster) dbWriteOp(sess *session.Server, rc redisConn, i, n int) bool {
	db := 1 + (i+n)%(redis.Databases-1)
	conn := sess.NewConn(fmt.Sprintf("client-%d-db%d", i, db), nil)
	defer conn.Close()
	other := redisConn{c: rc.c, rt: rc.rt, ctx: rc.ctx, conn: conn}
	if r := other.do("SELECT", fmt.Sprint(db)); !isOK(r) {
		c.anomaly("SELECT %d: %s", db, describeReply(r))
		return true
	}
	w := dbWrite{db: db, key: fmt.Sprintf("db%d.%d", i, n), value: fmt.Sprintf("v%d.%d", i, n)}
	r := other.do("SET", w.key, w.value)
	switch {
	case outcomeOf(r) != definite:
		return false
	case !isOK(r):
		c.anomaly("SET %s in db %d: %s", w.key, db, describeReply(r))
	default:
		w.at = c.s.Elapsed()
		c.dbWrites = append(c.dbWrites, w)
	}
	return true
}

// finalDBReads reads every key written in another database, there and in
// database 0.
func (c *redisCluster) finalDBReads(rc redisConn, sess *session.Server) {
	conn := sess.NewConn("client-final-db", nil)
	defer conn.Close()
	other := redisConn{c: rc.c, rt: rc.rt, ctx: rc.ctx, conn: conn}
	get := func(conn redisConn, key string) (string, bool) {
		for conn.ctx.Err() == nil {
			r := conn.do("GET", key)
			if outcomeOf(r) != definite {
				continue
			}
			switch r.Kind {
			case redis.KindNull:
				return "(nil)", true
			case redis.KindBulk:
				return string(r.Str), true
			}
			c.anomaly("final GET %s: %s", key, describeReply(r))
			return "", false
		}
		return "", false
	}
	c.dbFinal = map[string][2]string{}
	for _, w := range c.dbWrites {
		for other.ctx.Err() == nil {
			if r := other.do("SELECT", fmt.Sprint(w.db)); isOK(r) {
				break
			}
		}
		there, ok1 := get(other, w.key)
		in0, ok2 := get(rc, w.key)
		if ok1 && ok2 {
			c.dbFinal[w.key] = [2]string{there, in0}
		}
	}
}

// checkDatabases: every acknowledged write in another database is there,
// and not in database 0.
func (c *redisCluster) checkDatabases() error {
	for _, w := range c.dbWrites {
		got, ok := c.dbFinal[w.key]
		if !ok {
			return fmt.Errorf("databases: no final read of %s (db %d)", w.key, w.db)
		}
		if got[0] != w.value {
			return fmt.Errorf("databases: %s in db %d reads %q, want %q (acknowledged at %v)", w.key, w.db, got[0], w.value, w.at)
		}
		if got[1] != "(nil)" {
			return fmt.Errorf("databases: %s, written only in db %d, reads %q in db 0", w.key, w.db, got[1])
		}
	}
	return nil
}
