package check

import (
	"fmt"
	"sort"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// ListAppend checks a list-append workload: "append" ops (RPUSH of one
// element, every element distinct) on a few keys and "read-list" ops
// returning the whole list in order.
//
// Per key: every two ok reads agree, one a prefix of the other (checked
// against the longest read, which all must prefix); a read that completed
// before another was invoked is no longer than it; no read holds a
// duplicate, an element never appended (or appended only by failed ops),
// or one first appended after the read completed; every read holds each ok
// append that completed before it was invoked; an ok append that completed
// before another append was invoked comes before it in the list; and the
// final read (the last ok read) holds every ok append.
func ListAppend(ops []history.Op) Result {
	ops = selectOps(ops, "append", "read-list")
	var p problems
	badTypes(ops, &p)
	keys, groups := byKey(ops)
	var okAppends, infoAppends, lost, recovered, stale, diverged, unsure int
	for _, key := range keys {
		att := attemptsOf(groups[key], "append")
		es := newElements(key, "append", att, okOf(groups[key], "read-list"))
		reads := es.reads
		for _, a := range att {
			okAppends += len(a.ok)
			infoAppends += len(a.info)
		}
		for i := range reads {
			es.checkRead(i, &p)
		}
		fi := lastRead(reads)
		if fi < 0 {
			if len(att) > 0 {
				p.addf("key %s: no ok read-list, so nothing shows whether its appends survived", key)
			}
			continue
		}
		final := reads[fi]

		// Prefixes: if every two reads are prefixes of one another, all
		// are prefixes of the longest, and checking that is linear.
		li := 0
		for i := range reads {
			if len(reads[i].Values) > len(reads[li].Values) {
				li = i
			}
		}
		longest := reads[li]
		for i, r := range reads {
			if j := divergence(es.ids[i], es.ids[li]); j >= 0 {
				diverged++
				p.addf("key %s: reads disagree at index %d: %s has %q, %s has %q", key, j, r, r.Values[j], longest, longest.Values[j])
			}
		}

		// Real time between reads: by completion, with the longest read
		// so far.
		byDone := make([]int, len(reads))
		for i := range byDone {
			byDone[i] = i
		}
		sort.SliceStable(byDone, func(i, j int) bool { return reads[byDone[i]].Complete < reads[byDone[j]].Complete })
		longestSoFar := make([]int, len(byDone)) // index into reads
		for i, ri := range byDone {
			longestSoFar[i] = ri
			if i > 0 && len(reads[longestSoFar[i-1]].Values) >= len(reads[ri].Values) {
				longestSoFar[i] = longestSoFar[i-1]
			}
		}
		ks := es.known(false)
		for i, r := range reads {
			n := sort.Search(len(byDone), func(j int) bool { return reads[byDone[j]].Complete >= r.Invoke })
			if n > 0 {
				if a := reads[longestSoFar[n-1]]; len(a.Values) > len(r.Values) {
					stale++
					p.addf("key %s: stale read: %s has %d elements, but %s, completed before it began, had %d", key, r, len(r.Values), a, len(a.Values))
					continue
				}
			}
			if i == fi {
				continue // the final read's omissions are losses, below
			}
			if some, n := es.missing(ks, i, missingShown); n > 0 {
				stale++
				p.addf("key %s: stale read: %s lacks %d ok append(s) completed before it began: %s", key, r, n, es.describeMissing(some, n))
			}
		}

		checkAppendOrder(key, att, longest, &p)

		rec, uns := es.againstFinal(fi, final, func(_ int, first history.Op, ok bool) {
			if ok {
				lost++
				p.addf("key %s: lost append: %s is missing from the final read %s", key, first, final)
			}
		})
		recovered += rec
		unsure += uns
	}
	summary := fmt.Sprintf("%s; %d key(s), %d of %d ok appends lost, %d of %d info appends recovered, %d stale reads, %d reads not a prefix of the longest",
		countByF(ops, "append", "read-list"), len(keys), lost, okAppends, recovered, infoAppends, stale, diverged)
	if unsure > 0 {
		summary += fmt.Sprintf(", %d ok appends concurrent with the final read and absent from it", unsure)
	}
	return Result{Name: "list-append", Valid: p.n == 0, Summary: summary, Problems: p.result()}
}

// divergence is the first index where a is not a prefix of b, or -1 if it
// is one. Precondition: len(a) <= len(b).
func divergence(a, b []int32) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// checkAppendOrder checks real-time order in the list: an ok append that
// completed before another append (of any outcome) was invoked must come
// before it, if both are in the longest read.
func checkAppendOrder(key string, att map[string]*attempts, longest history.Op, p *problems) {
	pos := make(map[string]int, len(longest.Values))
	for i, e := range longest.Values {
		if _, dup := pos[e]; !dup {
			pos[e] = i
		}
	}
	type placed struct {
		op  history.Op
		pos int
	}
	var done, all []placed // done: ok appends by completion; all: by invocation
	for e, a := range att {
		i, ok := pos[e]
		if !ok {
			continue
		}
		for _, op := range a.ok {
			done = append(done, placed{op, i})
			all = append(all, placed{op, i})
		}
		for _, op := range a.info {
			all = append(all, placed{op, i})
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].op.Complete < done[j].op.Complete })
	sort.Slice(all, func(i, j int) bool { return all[i].op.Invoke < all[j].op.Invoke })
	// latest[i] is the entry of done[:i+1] furthest along the list.
	latest := make([]int, len(done))
	for i := range done {
		latest[i] = i
		if i > 0 && done[latest[i-1]].pos > done[i].pos {
			latest[i] = latest[i-1]
		}
	}
	for _, b := range all {
		n := sort.Search(len(done), func(i int) bool { return done[i].op.Complete >= b.op.Invoke })
		if n == 0 {
			continue
		}
		if a := done[latest[n-1]]; a.pos > b.pos {
			p.addf("key %s: appends out of order: %s completed before %s began, yet the list has it at index %d after index %d (in %s)", key, a.op, b.op, a.pos, b.pos, longest)
		}
	}
}
