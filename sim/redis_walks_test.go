package sim

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// Walks under faults: the commands that visit every range (KEYS, SCAN,
// DBSIZE, RANDOMKEY) run now and then during the faults, and their
// replies must be well formed; they are the long queries consensus runs
// off its driver, on a view, on a task of their own (consensus/
// longquery.go), so this is where those tasks meet crashes, closing
// stores and ranges that split and merge. After the run, in a quiet
// cluster, the walks must agree with each other and with point reads
// (finalWalks).

// walkOp runs one walk command during the run.
func (c *redisCluster) walkOp(rc redisConn, rng *rand.Rand) bool {
	var args []string
	switch rng.IntN(4) {
	case 0:
		args = []string{"DBSIZE"}
	case 1:
		args = []string{"SCAN", "0", "COUNT", strconv.Itoa(1 + rng.IntN(20))}
	case 2:
		args = []string{"RANDOMKEY"}
	default:
		args = []string{"KEYS", "*"}
	}
	r := rc.do(args...)
	if outcomeOf(r) != definite {
		return false
	}
	ok := false
	switch args[0] {
	case "DBSIZE":
		ok = r.Kind == redis.KindInt && r.Int >= 0
	case "SCAN":
		ok = r.Kind == redis.KindArray && len(r.Elems) == 2 && r.Elems[0].Kind == redis.KindBulk && r.Elems[1].Kind == redis.KindArray
	case "RANDOMKEY":
		ok = r.Kind == redis.KindBulk || r.Kind == redis.KindNull
	case "KEYS":
		ok = r.Kind == redis.KindArray
	}
	if !ok {
		c.anomaly("%q during the run: %s", args, describeReply(r))
	}
	return true
}

// finalWalks checks the walks in the quiet cluster, once every key with a
// time to live the workload sets has expired: KEYS * before and after
// DBSIZE bound its count (keys only expire now); a full SCAN finds every
// key the second KEYS found and nothing the first did not; RANDOMKEY
// names one of them; and each list or set the final reads found holding
// elements is among them.
func (c *redisCluster) finalWalks(rc redisConn) {
	if rc.rt.Sleep(rc.ctx, 200*time.Millisecond) != nil { // the TTL keys' 20–100 ms have run out
		return
	}
	// ask sends args until a definite answer; false if the run ends.
	ask := func(args ...string) (redis.Reply, bool) {
		for rc.ctx.Err() == nil {
			if r := rc.do(args...); outcomeOf(r) == definite {
				return r, true
			}
		}
		return redis.Reply{}, false
	}
	keys := func() (map[string]bool, bool) {
		r, ok := ask("KEYS", "*")
		if !ok {
			return nil, false
		}
		if r.Kind != redis.KindArray {
			c.anomaly("final KEYS *: %s", describeReply(r))
			return nil, false
		}
		set := map[string]bool{}
		for _, e := range r.Elems {
			if set[string(e.Str)] {
				c.anomaly("final KEYS * names %q twice", e.Str)
			}
			set[string(e.Str)] = true
		}
		return set, true
	}
	before, ok := keys()
	if !ok {
		return
	}
	r, ok := ask("DBSIZE")
	if !ok {
		return
	}
	after, ok := keys()
	if !ok {
		return
	}
	if r.Kind != redis.KindInt || r.Int > int64(len(before)) || r.Int < int64(len(after)) {
		c.anomaly("final DBSIZE answered %s between KEYS * of %d and of %d keys", describeReply(r), len(before), len(after))
	}
	scanned := map[string]bool{}
	for cursor := "0"; ; {
		r, ok := ask("SCAN", cursor, "COUNT", "7")
		if !ok {
			return
		}
		if r.Kind != redis.KindArray || len(r.Elems) != 2 || r.Elems[1].Kind != redis.KindArray {
			c.anomaly("final SCAN %s: %s", cursor, describeReply(r))
			return
		}
		for _, e := range r.Elems[1].Elems {
			scanned[string(e.Str)] = true
		}
		if cursor = string(r.Elems[0].Str); cursor == "0" {
			break
		}
	}
	for k := range after {
		if !scanned[k] {
			c.anomaly("final SCAN missed %q, which KEYS * found after it", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(scanned)) {
		if !before[k] {
			c.anomaly("final SCAN found %q, which KEYS * did not find before it", k)
		}
	}
	if r, ok := ask("RANDOMKEY"); ok {
		switch {
		case r.Kind == redis.KindNull && len(after) > 0:
			c.anomaly("final RANDOMKEY answered null; KEYS * found %d keys", len(after))
		case r.Kind == redis.KindBulk && !before[string(r.Str)]:
			c.anomaly("final RANDOMKEY named %q, which KEYS * did not find", r.Str)
		case r.Kind != redis.KindNull && r.Kind != redis.KindBulk:
			c.anomaly("final RANDOMKEY: %s", describeReply(r))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.final)) {
		if len(c.final[k]) > 0 && !before[k] {
			c.anomaly("final KEYS * misses %q, whose final read found %d elements", k, len(c.final[k]))
		}
	}
}
