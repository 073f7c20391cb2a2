package check

import (
	"fmt"
	"sort"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Counter checks a counter workload: "incr" ops (INCR by 1, Int the reply)
// and "read-counter" ops (Int the value, 0 when missing), usually on one
// key; each key is checked alone.
//
// Rather than search for a linearization, it checks bounds that every
// linearization must meet, which is exact enough to catch lost and doubled
// increments and costs O(n log n):
//
//   - an ok read r is at least the number of ok incrs completed before r
//     was invoked, at least any ok incr reply or ok read completed before
//     r was invoked (the counter never goes down), and at most the number
//     of incrs (ok or info) invoked before r completed;
//   - an ok incr reply is distinct from every other ok reply, and within
//     the same bounds (plus one below, since it counts itself);
//   - the final read (the last ok read) is between the number of ok incrs
//     and that plus the number of info incrs.
func Counter(ops []history.Op) Result {
	ops = selectOps(ops, "incr", "read-counter")
	var p problems
	badTypes(ops, &p)
	keys, groups := byKey(ops)
	var okIncrs, infoIncrs int
	var final history.Op
	var haveFinal bool
	for _, key := range keys {
		c := newCounterBounds(groups[key])
		okIncrs += len(c.okIncrs)
		infoIncrs += c.infoIncrs
		reads := okOf(groups[key], "read-counter")
		li := lastRead(reads)
		ok := li >= 0
		var last history.Op
		if ok {
			last = reads[li]
		}
		if !ok {
			p.addf("key %s: no ok read-counter, so nothing shows whether its %d ok incrs took effect", key, len(c.okIncrs))
		}

		// Replies: distinct and in range.
		byReply := make(map[int64]int, len(c.okIncrs)) // reply -> index in okIncrs
		for i, op := range c.okIncrs {
			if prev, dup := byReply[op.Int]; dup {
				p.addf("key %s: two incrs returned %d, so one of them did not count: %s and %s", key, op.Int, c.okIncrs[prev], op)
			} else {
				byReply[op.Int] = i
			}
			if op.Int < 1 || op.Int > int64(c.attempted) {
				p.addf("key %s: incr reply %d outside [1, %d incrs attempted]: %s", key, op.Int, c.attempted, op)
				continue
			}
			c.checkBounds(key, op, 1, &p)
		}
		for i, r := range reads {
			if i == li {
				continue // the final read is held to the totals, below
			}
			c.checkBounds(key, r, 0, &p)
		}
		if ok {
			lo, hi := int64(len(c.okIncrs)), int64(len(c.okIncrs)+c.infoIncrs)
			switch {
			case last.Int < lo:
				p.addf("key %s: lost increments: the final read %s is below the %d ok incrs", key, last, lo)
			case last.Int > hi:
				p.addf("key %s: increments applied more than once: the final read %s is above the %d ok + %d info incrs", key, last, lo, c.infoIncrs)
			}
			final, haveFinal = last, true
		}
	}
	summary := fmt.Sprintf("%s; %d key(s), %d ok + %d info incrs", countByF(ops, "incr", "read-counter"), len(keys), okIncrs, infoIncrs)
	if haveFinal && len(keys) == 1 {
		summary += fmt.Sprintf(", final value %d", final.Int)
	}
	return Result{Name: "counter", Valid: p.n == 0, Summary: summary, Problems: p.result()}
}

// counterBounds answers, for one key, what a linearizable counter could
// show at a time.
type counterBounds struct {
	ops       []history.Op // the key's ops
	okIncrs   []history.Op
	infoIncrs int
	attempted int // ok + info incrs

	// done lists ok incrs and ok reads by completion, each with the value
	// it proves the counter reached; doneCount[i] and doneMax[i] are the
	// number of ok incrs and the largest such value among done[:i].
	done      []counterDone
	doneCount []int
	doneMax   []int64
	// invokes are the invocation times of ok and info incrs, sorted.
	invokes []int64
}

type counterDone struct {
	at   int64 // completion, ns
	incr bool
	v    int64
	op   int // index in counterBounds.ops
}

func newCounterBounds(ops []history.Op) *counterBounds {
	c := &counterBounds{ops: ops, done: make([]counterDone, 0, len(ops))}
	for i, op := range ops {
		switch {
		case op.F == "incr" && op.Type == history.TypeOK:
			c.okIncrs = append(c.okIncrs, op)
			c.invokes = append(c.invokes, op.Invoke)
			c.done = append(c.done, counterDone{at: op.Complete, incr: true, v: op.Int, op: i})
		case op.F == "incr" && op.Type == history.TypeInfo:
			c.infoIncrs++
			c.invokes = append(c.invokes, op.Invoke)
		case op.F == "read-counter" && op.Type == history.TypeOK:
			c.done = append(c.done, counterDone{at: op.Complete, v: op.Int, op: i})
		}
	}
	c.attempted = len(c.okIncrs) + c.infoIncrs
	sort.Slice(c.invokes, func(i, j int) bool { return c.invokes[i] < c.invokes[j] })
	sort.SliceStable(c.done, func(i, j int) bool { return c.done[i].at < c.done[j].at })
	c.doneCount = make([]int, len(c.done)+1)
	c.doneMax = make([]int64, len(c.done)+1)
	for i, d := range c.done {
		c.doneCount[i+1] = c.doneCount[i]
		if d.incr {
			c.doneCount[i+1]++
		}
		c.doneMax[i+1] = max(c.doneMax[i], d.v)
	}
	return c
}

// checkBounds checks that op's value (a read, or an incr reply with self 1)
// is one a linearizable counter could have shown.
func (c *counterBounds) checkBounds(key string, op history.Op, self int64, p *problems) {
	before := sort.Search(len(c.done), func(i int) bool { return c.done[i].at >= op.Invoke })
	if n := int64(c.doneCount[before]) + self; op.Int < n {
		p.addf("key %s: stale counter: %s shows %d, but %d ok incrs completed before it began", key, op, op.Int, n-self)
	} else if m := c.doneMax[before]; op.Int < m+self {
		// Find an op that proves m, for the message.
		var by history.Op
		for _, d := range c.done[:before] {
			if d.v == m {
				by = c.ops[d.op]
				break
			}
		}
		p.addf("key %s: counter went backwards: %s shows %d, but %s, completed before it began, showed %d", key, op, op.Int, by, m)
	}
	invoked := sort.Search(len(c.invokes), func(i int) bool { return c.invokes[i] > op.Complete })
	if op.Int > int64(invoked) {
		p.addf("key %s: counter too high: %s shows %d, but only %d incrs were invoked before it completed", key, op, op.Int, invoked)
	}
}
