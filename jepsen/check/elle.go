package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Elle checks a history of list-append transactions, after Kingsbury and
// Alvaro's Elle ("Elle: Inferring Isolation Anomalies from Experimental
// Observations", VLDB 2020): each transaction appends distinct elements
// to lists and reads whole lists; since every list's order is visible in
// the reads, the order of the writes to each key is known, and with it
// the dependencies between transactions:
//
//   - ww: T1 appended the element right before T2's on some key;
//   - wr: T2 read a list whose last element T1 appended;
//   - rw: T1 read a list that T2's append extended (T1 did not see it);
//   - rt: T1 completed before T2 began (strict serializability's
//     real-time order).
//
// A cycle of these is an anomaly, named by the kinds of edge it needs
// (Adya's phenomena): G0 (ww only: dirty writes), G1c (ww and wr:
// circular information flow), G-single (one rw: read skew, a lost
// update), G2 (more than one rw: write skew); with "-realtime" when the
// cycle needs a real-time edge (serializable, but not strictly). Besides
// cycles: G1a (a read of an element only a failed transaction appended),
// G1b (a read of a transaction's intermediate state), a read that
// disagrees with the transaction's own earlier operations (internal), two
// reads of a key that are not prefixes of one another (incompatible
// order), and elements read that nobody appended or read twice.
//
// Outcomes follow check.go's rules: an ok transaction happened; a fail
// one did not (its appends must never be seen); an info one may have, at
// any time after its invocation (its reads are not trusted; its appends
// count once seen).

// Txn is one list-append transaction as a client saw it.
type Txn struct {
	Process int
	Type    string // history.TypeOK, TypeFail or TypeInfo
	Ops     []MicroOp
	// Invoke and Complete are nanoseconds since the run started.
	Invoke, Complete int64
}

// MicroOp is one step of a transaction (history.MicroOp).
type MicroOp = history.MicroOp

func (t Txn) String() string {
	var ops []string
	for _, o := range t.Ops {
		ops = append(ops, o.String())
	}
	return fmt.Sprintf("{p%d %s [%s] %d–%d}", t.Process, t.Type, strings.Join(ops, ", "), t.Invoke, t.Complete)
}

// ElleOps judges the list-append transactions (F "txn") of a Jepsen
// history.
func ElleOps(ops []history.Op) Result {
	var txns []Txn
	for _, op := range ops {
		if op.F == "txn" {
			txns = append(txns, Txn{Process: op.Process, Type: op.Type, Ops: op.Txn, Invoke: op.Invoke, Complete: op.Complete})
		}
	}
	return Elle(txns)
}

// Anomaly is one thing Elle found: its name and what shows it.
type Anomaly struct {
	Name    string
	Explain string
}

// Elle judges txns (see above).
func Elle(txns []Txn) Result {
	anomalies := ElleAnomalies(txns)
	var p problems
	names := map[string]int{}
	for _, a := range anomalies {
		names[a.Name]++
		p.addf("%s: %s", a.Name, a.Explain)
	}
	var counts []string
	for _, typ := range []string{history.TypeOK, history.TypeFail, history.TypeInfo} {
		n := 0
		for _, t := range txns {
			if t.Type == typ {
				n++
			}
		}
		counts = append(counts, fmt.Sprintf("%d %s", n, typ))
	}
	summary := "transactions: " + strings.Join(counts, ", ")
	if len(names) > 0 {
		var found []string
		for _, n := range slices.Sorted(maps.Keys(names)) {
			found = append(found, fmt.Sprintf("%s ×%d", n, names[n]))
		}
		summary += "; anomalies: " + strings.Join(found, ", ")
	}
	return Result{Name: "elle list-append", Valid: len(anomalies) == 0, Summary: summary, Problems: p.result()}
}

// Edge kinds, as bits.
type edgeKind uint8

const (
	ww edgeKind = 1 << iota
	wr
	rw
	rt
)

func (k edgeKind) String() string {
	var s []string
	for _, e := range []struct {
		k    edgeKind
		name string
	}{{ww, "ww"}, {wr, "wr"}, {rw, "rw"}, {rt, "rt"}} {
		if k&e.k != 0 {
			s = append(s, e.name)
		}
	}
	return strings.Join(s, "+")
}

// elle is one check's state.
type elle struct {
	txns  []Txn
	found []Anomaly
	// writer maps key and element to the transaction that appended it.
	writer map[[2]string]int
	// order is each key's list as the longest ok read shows it.
	order map[string][]string
	// edges[from][to] are the kinds of dependency from one transaction
	// to another; adj[from] the tos in order.
	edges []map[int]edgeKind
	adj   [][]int
}

func (e *elle) addf(name, format string, args ...any) {
	e.found = append(e.found, Anomaly{Name: name, Explain: fmt.Sprintf(format, args...)})
}

// ElleAnomalies returns every anomaly in txns (none: the history is
// strictly serializable as far as its reads show).
func ElleAnomalies(txns []Txn) []Anomaly {
	e := &elle{txns: txns, writer: map[[2]string]int{}, order: map[string][]string{}, edges: make([]map[int]edgeKind, len(txns))}
	e.indexAppends()
	e.checkReads()
	if len(e.found) > 0 {
		return e.found // the order is not known well enough for cycles
	}
	e.buildEdges()
	e.adj = make([][]int, len(txns))
	for i := range e.edges {
		e.adj[i] = slices.Sorted(maps.Keys(e.edges[i]))
	}
	e.findCycles()
	return e.found
}

func (e *elle) indexAppends() {
	for i, t := range e.txns {
		for _, o := range t.Ops {
			if !o.Append {
				continue
			}
			k := [2]string{o.Key, o.Value}
			if j, dup := e.writer[k]; dup {
				e.addf("duplicate-append", "%s and %s both append %s to %s (elements must be distinct)", e.txns[j], t, o.Value, o.Key)
				continue
			}
			e.writer[k] = i
		}
	}
}

// external is what a read of key by txn t (at step s) shows of other
// transactions: its list without t's own appends to key before step s,
// which must end it; false if they do not (an internal anomaly).
func (e *elle) external(t Txn, s int) ([]string, bool) {
	read := t.Ops[s]
	var own []string
	for _, o := range t.Ops[:s] {
		if o.Append && o.Key == read.Key {
			own = append(own, o.Value)
		}
	}
	n := len(read.Values) - len(own)
	if n < 0 || !slices.Equal(read.Values[n:], own) {
		return nil, false
	}
	return read.Values[:n], true
}

// checkReads checks every ok read against its own transaction, against
// the appends, and against the other reads of its key, and fixes each
// key's order.
func (e *elle) checkReads() {
	longest := map[string][]string{}
	for i, t := range e.txns {
		if t.Type != history.TypeOK {
			continue
		}
		last := map[string][]string{} // the txn's view of each key so far
		for s, o := range t.Ops {
			if o.Append {
				if v, ok := last[o.Key]; ok {
					last[o.Key] = append(slices.Clone(v), o.Value)
				}
				continue
			}
			if v, ok := last[o.Key]; ok && !slices.Equal(v, o.Values) {
				e.addf("internal", "%s read %s as %v after its own operations left it %v", t, o.Key, o.Values, v)
			}
			last[o.Key] = o.Values
			if _, ok := e.external(t, s); !ok {
				e.addf("internal", "%s read %s as %v, which does not end with its own appends", t, o.Key, o.Values)
			}
			seen := map[string]bool{}
			for _, v := range o.Values {
				w, ok := e.writer[[2]string{o.Key, v}]
				switch {
				case seen[v]:
					e.addf("duplicate-element", "%s read %s with %s twice: %v", t, o.Key, v, o.Values)
				case !ok:
					e.addf("garbage-read", "%s read %s with %s, which no transaction appended", t, o.Key, v)
				case e.txns[w].Type == history.TypeFail:
					e.addf("G1a", "%s read %s with %s, appended by %s, which failed (aborted read)", t, o.Key, v, e.txns[w])
				case w == i:
				default:
					e.checkIntermediate(t, o, v, w)
				}
				seen[v] = true
			}
			if len(o.Values) > len(longest[o.Key]) {
				longest[o.Key] = o.Values
			}
		}
	}
	e.order = longest
	for _, t := range e.txns {
		if t.Type != history.TypeOK {
			continue
		}
		for _, o := range t.Ops {
			if !o.Append && !slices.Equal(o.Values, longest[o.Key][:min(len(o.Values), len(longest[o.Key]))]) {
				e.addf("incompatible-order", "%s read %s as %v, which is not a prefix of another read's %v", t, o.Key, o.Values, longest[o.Key])
			}
		}
	}
}

// checkIntermediate reports a read of key that ends in the middle of
// writer w's appends to it (w's later appends missing): G1b. v is an
// element of the read that w appended.
func (e *elle) checkIntermediate(t Txn, read MicroOp, v string, w int) {
	var mine []string
	for _, o := range e.txns[w].Ops {
		if o.Append && o.Key == read.Key {
			mine = append(mine, o.Value)
		}
	}
	if mine[len(mine)-1] == v {
		return
	}
	if at := slices.Index(read.Values, v); at == len(read.Values)-1 {
		e.addf("G1b", "%s read %s as %v, ending with %s, which %s appended before more (intermediate read)", t, read.Key, read.Values, v, e.txns[w])
	}
}

// committed reports whether transaction i counts in the graph: ok, or
// info with one of its appends seen.
func (e *elle) committed(i int) bool {
	t := e.txns[i]
	if t.Type == history.TypeOK {
		return true
	}
	if t.Type != history.TypeInfo {
		return false
	}
	for _, o := range t.Ops {
		if o.Append && slices.Contains(e.order[o.Key], o.Value) {
			return true
		}
	}
	return false
}

func (e *elle) edge(from, to int, k edgeKind) {
	if from == to {
		return
	}
	if e.edges[from] == nil {
		e.edges[from] = map[int]edgeKind{}
	}
	e.edges[from][to] |= k
}

func (e *elle) buildEdges() {
	for key, list := range e.order {
		for i := 1; i < len(list); i++ {
			e.edge(e.writer[[2]string{key, list[i-1]}], e.writer[[2]string{key, list[i]}], ww)
		}
	}
	for i, t := range e.txns {
		if t.Type != history.TypeOK {
			continue
		}
		for s, o := range t.Ops {
			if o.Append {
				continue
			}
			ext, _ := e.external(t, s)
			if len(ext) > 0 {
				e.edge(e.writer[[2]string{o.Key, ext[len(ext)-1]}], i, wr)
			}
			if list := e.order[o.Key]; len(ext) < len(list) {
				e.edge(i, e.writer[[2]string{o.Key, list[len(ext)]}], rw)
			}
		}
	}
	// Real time: an ok transaction that completed before another began.
	// (Only the latest-completing predecessors would do; all of them
	// keep the search simple and the histories are small.)
	for i, a := range e.txns {
		if a.Type != history.TypeOK {
			continue
		}
		for j, b := range e.txns {
			if e.committed(j) && a.Complete < b.Invoke {
				e.edge(i, j, rt)
			}
		}
	}
}

// findCycles looks for the anomalies in order of the fewest kinds of
// edge a cycle needs, first without real-time edges, then with them, and
// reports the first cycle of each name it finds.
func (e *elle) findCycles() {
	for _, realtime := range []bool{false, true} {
		extra, suffix := edgeKind(0), ""
		if realtime {
			extra, suffix = rt, "-realtime"
		}
		if c := e.cycle(ww|extra, 0); c != nil {
			e.report("G0"+suffix, c)
			return
		}
		if c := e.cycle(ww|wr|extra, 0); c != nil {
			e.report("G1c"+suffix, c)
			return
		}
		if c := e.cycle(ww|wr|extra, rw); c != nil {
			e.report("G-single"+suffix, c)
			return
		}
		if c := e.cycle(ww|wr|rw|extra, 0); c != nil {
			e.report("G2"+suffix, c)
			return
		}
	}
}

// cycle finds a cycle over edges of the kinds in allowed; with one set,
// a cycle of exactly one edge of that kind and the rest of allowed. It
// returns the cycle's transactions in order, first repeated last. Only
// edges inside one strongly connected component can be on a cycle, so
// each search starts there: one path search per candidate edge.
func (e *elle) cycle(allowed, one edgeKind) []int {
	comp := e.components(allowed | one)
	for from := range e.edges {
		for _, to := range e.next(from) {
			k := e.edges[from][to]
			if comp[from] != comp[to] || (one == 0 && k&allowed == 0) || (one != 0 && k&one == 0) {
				continue
			}
			if path := e.path(to, from, allowed); path != nil {
				return append([]int{from}, path...)
			}
		}
	}
	return nil
}

// components labels each transaction with its strongly connected
// component over edges of the given kinds (Tarjan's algorithm).
func (e *elle) components(kinds edgeKind) []int {
	n := len(e.txns)
	index, low, comp := make([]int, n), make([]int, n), make([]int, n)
	for i := range index {
		index[i], comp[i] = -1, -1
	}
	var stack []int
	onStack := make([]bool, n)
	next, label := 0, 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range e.next(v) {
			if e.edges[v][w]&kinds == 0 {
				continue
			}
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = label
				if w == v {
					break
				}
			}
			label++
		}
	}
	for v := range n {
		if index[v] < 0 {
			visit(v)
		}
	}
	return comp
}

// next are n's successors in order (so that a report names the same
// cycle every time).
func (e *elle) next(n int) []int { return e.adj[n] }

// path is a shortest path from a to b over edges of the allowed kinds
// (a first, b last), or nil.
func (e *elle) path(a, b int, allowed edgeKind) []int {
	parent := map[int]int{a: -1}
	queue := []int{a}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == b {
			var p []int
			for ; n != -1; n = parent[n] {
				p = append(p, n)
			}
			slices.Reverse(p)
			return p
		}
		for _, to := range e.next(n) {
			if _, seen := parent[to]; !seen && e.edges[n][to]&allowed != 0 {
				parent[to] = n
				queue = append(queue, to)
			}
		}
	}
	return nil
}

func (e *elle) report(name string, cycle []int) {
	var b strings.Builder
	for i := 0; i+1 < len(cycle); i++ {
		fmt.Fprintf(&b, "%s -%s-> ", e.txns[cycle[i]], e.edges[cycle[i]][cycle[i+1]])
	}
	b.WriteString(e.txns[cycle[len(cycle)-1]].String())
	e.addf(name, "cycle %s", b.String())
}
