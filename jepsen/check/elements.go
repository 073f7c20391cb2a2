package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// elements holds one key of a set or list workload with its elements
// interned as small ints. Reads return the whole collection, so the
// per-read work (membership, duplicates) dominates these checkers; with ids
// it is array indexing rather than hashing strings.
type elements struct {
	key   string
	verb  string      // "add" or "append", for messages
	names []string    // by id
	att   []*attempts // by id; nil for an element never attempted
	reads []history.Op
	ids   [][]int32 // ids[i] is reads[i].Values interned

	// mark[id] == stamp when id is in the read last loaded, first at
	// position pos[id].
	mark  []int32
	pos   []int32
	stamp int32
}

// newElements indexes one key: att are its adds or appends by element,
// reads its ok reads.
func newElements(key, verb string, att map[string]*attempts, reads []history.Op) *elements {
	es := &elements{key: key, verb: verb, reads: reads, ids: make([][]int32, len(reads))}
	id := make(map[string]int32, len(att))
	intern := func(e string) int32 {
		i, ok := id[e]
		if !ok {
			i = int32(len(es.names))
			id[e] = i
			es.names = append(es.names, e)
			es.att = append(es.att, att[e])
		}
		return i
	}
	for _, e := range sortedKeys(att) {
		intern(e)
	}
	for i, r := range reads {
		es.ids[i] = make([]int32, len(r.Values))
		for j, e := range r.Values {
			es.ids[i][j] = intern(e)
		}
	}
	es.mark = make([]int32, len(es.names))
	es.pos = make([]int32, len(es.names))
	return es
}

// load marks the elements of read i, for has. It returns the duplicates:
// pairs of positions holding the same element.
func (es *elements) load(i int) (dups [][2]int) {
	es.stamp++
	for j, id := range es.ids[i] {
		if es.mark[id] == es.stamp {
			dups = append(dups, [2]int{int(es.pos[id]), j})
			continue
		}
		es.mark[id], es.pos[id] = es.stamp, int32(j)
	}
	return dups
}

// has says whether the read last loaded holds id.
func (es *elements) has(id int32) bool { return es.mark[id] == es.stamp }

// checkRead reports the elements of read i that cannot be there:
// duplicates, elements never attempted, elements whose every attempt
// failed, and elements first attempted only after the read completed.
func (es *elements) checkRead(i int, p *problems) {
	r := es.reads[i]
	for _, d := range es.load(i) {
		p.addf("key %s: duplicate element %q at positions %d and %d of %s", es.key, r.Values[d[0]], d[0], d[1], r)
	}
	for j, id := range es.ids[i] {
		if int(es.pos[id]) != j {
			continue // a duplicate, reported above
		}
		e, a := r.Values[j], es.att[id]
		switch {
		case a == nil:
			p.addf("key %s: phantom element %q (never %sed) in %s", es.key, e, es.verb, r)
		case len(a.ok) == 0 && len(a.info) == 0:
			p.addf("key %s: element %q is present but every %s of it failed (e.g. %s); seen in %s", es.key, e, es.verb, a.fail[0], r)
		case a.first > r.Complete:
			p.addf("key %s: element %q read from the future: %s completed before the first %s of it was invoked at %s", es.key, e, r, es.verb, history.Seconds(a.first))
		}
	}
}

// known is an element that a read must contain from a time on: its ok add
// completed then, or a read saw it then (nothing removes elements).
type known struct {
	id  int32
	at  int64      // ns: the completion that made it known
	by  history.Op // the op that made it known
	add bool       // by is the element's ok add (else a read that saw it)
}

// known returns when each element became known to be present, sorted by
// that time: from ok attempts, and from reads too if fromReads.
func (es *elements) known(fromReads bool) []known {
	first := make([]known, len(es.names))
	for id, a := range es.att {
		first[id] = known{id: int32(id), at: -1}
		if a == nil {
			continue
		}
		if op, ok := a.firstOK(); ok {
			first[id] = known{id: int32(id), at: op.Complete, by: op, add: true}
		}
	}
	if fromReads {
		for i, r := range es.reads {
			for _, id := range es.ids[i] {
				if k := first[id]; k.at < 0 || r.Complete < k.at {
					first[id] = known{id: id, at: r.Complete, by: r}
				}
			}
		}
	}
	out := make([]known, 0, len(first))
	for _, k := range first {
		if k.at >= 0 {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].at != out[j].at {
			return out[i].at < out[j].at
		}
		return out[i].id < out[j].id
	})
	return out
}

// missing returns the elements of ks known present before read i was
// invoked that it lacks, at most limit of them, and how many there are.
func (es *elements) missing(ks []known, i int, limit int) (some []known, n int) {
	r := es.reads[i]
	before := sort.Search(len(ks), func(j int) bool { return ks[j].at >= r.Invoke })
	if before == 0 {
		return nil, 0
	}
	es.load(i)
	for _, k := range ks[:before] {
		if !es.has(k.id) {
			n++
			if len(some) < limit {
				some = append(some, k)
			}
		}
	}
	return some, n
}

// describeMissing is "\"e1\" (added ok by ...), \"e2\" (seen by ...) and 3
// more".
func (es *elements) describeMissing(some []known, n int) string {
	var parts []string
	for _, k := range some {
		how := "seen by"
		if k.add {
			how = es.verb + "ed ok by"
		}
		parts = append(parts, fmt.Sprintf("%q (%s %s)", es.names[k.id], how, k.by))
	}
	s := strings.Join(parts, ", ")
	if n > len(some) {
		s += fmt.Sprintf(" and %d more", n-len(some))
	}
	return s
}

// againstFinal compares the final read (read fi, op final) with every
// element written: it counts the elements only info writes attempted that
// the final read holds (recovered), and ok writes that completed after the
// final read began and are absent from it (unsure: they may land after it),
// and hands every other absent element to missing, with its first ok write
// if it has one (ok false: only info writes attempted it).
func (es *elements) againstFinal(fi int, final history.Op, missing func(id int, first history.Op, ok bool)) (recovered, unsure int) {
	es.load(fi)
	for id, a := range es.att {
		if a == nil {
			continue // a phantom, reported by checkRead
		}
		if es.has(int32(id)) {
			if len(a.ok) == 0 && len(a.info) > 0 {
				recovered++
			}
			continue
		}
		first, ok := a.firstOK()
		if ok && first.Complete >= final.Invoke {
			unsure++
			continue
		}
		missing(id, first, ok)
	}
	return recovered, unsure
}
