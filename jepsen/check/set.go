package check

import (
	"fmt"
	"slices"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// missingShown bounds how many missing elements one problem line names.
const missingShown = 5

// Set checks a grow-only set workload: "add" ops (SADD of one element) on a
// few keys and "read-set" ops returning the full membership.
//
// The final read of a key (the last ok read-set, which the harness takes
// after healing) must contain every ok add: one it lacks is lost. An info
// add it contains is "recovered" (counted, not a problem), one it lacks
// never happened, unless a read saw it, in which case it too was lost.
// Every read must contain each element known present before it was
// invoked, because an ok add of it had completed or an earlier read had
// seen it (nothing removes elements), else it is a stale read; and no read
// may contain an element that no add attempted (a phantom), that only
// failed adds attempted, or that was first added after the read completed.
func Set(ops []history.Op) Result {
	ops = selectOps(ops, "add", "read-set")
	var p problems
	badTypes(ops, &p)
	keys, groups := byKey(ops)
	var okAdds, infoAdds, lost, lostSeen, recovered, stale, unsure int
	for _, key := range keys {
		att := attemptsOf(groups[key], "add")
		es := newElements(key, "add", att, okOf(groups[key], "read-set"))
		for _, a := range att {
			okAdds += len(a.ok)
			infoAdds += len(a.info)
		}
		for i := range es.reads {
			es.checkRead(i, &p)
		}
		fi := lastRead(es.reads)
		if fi < 0 {
			if len(att) > 0 {
				p.addf("key %s: no ok read-set, so nothing shows whether its adds survived", key)
			}
			continue
		}
		final := es.reads[fi]

		ks := es.known(true)
		for i := range es.reads {
			if i == fi {
				continue // the final read's omissions are losses, below
			}
			if some, n := es.missing(ks, i, missingShown); n > 0 {
				stale++
				p.addf("key %s: stale read: %s lacks %d element(s) known present before it began: %s", key, es.reads[i], n, es.describeMissing(some, n))
			}
		}

		seenBy := make([]*known, len(es.names))
		for i := range ks {
			if !ks[i].add {
				seenBy[ks[i].id] = &ks[i]
			}
		}
		rec, uns := es.againstFinal(fi, final, func(id int, first history.Op, ok bool) {
			switch {
			case ok:
				lost++
				p.addf("key %s: lost add: %s is missing from the final read %s", key, first, final)
			case seenBy[id] != nil && seenBy[id].at < final.Invoke:
				// Its add's outcome was unknown, but a read saw it.
				lostSeen++
				p.addf("key %s: lost element %q: %s saw it, the final read %s does not", key, es.names[id], seenBy[id].by, final)
			}
		})
		recovered += rec
		unsure += uns
	}
	summary := fmt.Sprintf("%s; %d key(s), %d of %d ok adds lost, %d of %d info adds recovered, %d stale reads",
		countByF(ops, "add", "read-set"), len(keys), lost, okAdds, recovered, infoAdds, stale)
	if lostSeen > 0 {
		summary += fmt.Sprintf(", %d elements of info adds seen by a read and then lost", lostSeen)
	}
	if unsure > 0 {
		summary += fmt.Sprintf(", %d ok adds concurrent with the final read and absent from it", unsure)
	}
	return Result{Name: "set", Valid: p.n == 0, Summary: summary, Problems: p.result()}
}

// sortedKeys returns m's keys in order, so problems come out stably.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
