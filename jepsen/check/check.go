// Package check judges a history recorded by the Jepsen harness: one
// checker per workload, each a pure function of the ops, so a run can be
// re-checked from its history.jsonl alone.
//
// Every checker follows the same rules for outcomes: an ok op happened as
// reported; a fail op definitely did not happen and is dropped; an info op
// may or may not have happened, at any time after its invocation, so every
// checker must accept both. Problems name the key, the element and the ops
// (process, node, times) so that a person can find them in the history, the
// fault log and the node logs.
package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Result is one checker's verdict on a history.
type Result struct {
	Name  string
	Valid bool
	// Unknown means the checker could not decide (e.g. the linearizability
	// search timed out). It counts as not valid: a check that did not finish
	// proves nothing.
	Unknown bool
	// Summary is one line with counts, e.g. ops by f and outcome.
	Summary string
	// Problems are human-readable, at most maxProblems of them, plus a last
	// line saying how many more there were.
	Problems []string
}

// maxProblems bounds Result.Problems: one bug tends to produce thousands of
// identical violations, and the first few are the ones worth reading.
const maxProblems = 20

// problems collects violations, keeping the first maxProblems and counting
// the rest.
type problems struct {
	list []string
	n    int
}

func (p *problems) addf(format string, args ...any) {
	p.n++
	if len(p.list) < maxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// result returns the kept problems, noting how many were left out.
func (p *problems) result() []string {
	out := slices.Clone(p.list)
	if p.n > len(p.list) {
		out = append(out, fmt.Sprintf("... and %d more problems", p.n-len(p.list)))
	}
	return out
}

// countByF is "read: 10 ok, 1 fail, 2 info; write: ..." for the fs given, in
// that order, skipping fs with no ops, so that a summary line shows at a
// glance how much of the history was definite.
func countByF(ops []history.Op, fs ...string) string {
	type counts struct{ ok, fail, info, other int }
	by := map[string]*counts{}
	for _, op := range ops {
		c := by[op.F]
		if c == nil {
			c = &counts{}
			by[op.F] = c
		}
		switch op.Type {
		case history.TypeOK:
			c.ok++
		case history.TypeFail:
			c.fail++
		case history.TypeInfo:
			c.info++
		default:
			c.other++
		}
	}
	var parts []string
	for _, f := range fs {
		c := by[f]
		if c == nil {
			continue
		}
		s := fmt.Sprintf("%s: %d ok, %d fail, %d info", f, c.ok, c.fail, c.info)
		if c.other > 0 {
			s += fmt.Sprintf(", %d of unknown type", c.other)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no ops"
	}
	return strings.Join(parts, "; ")
}

// selectOps returns the ops whose F is one of fs, in history order.
func selectOps(ops []history.Op, fs ...string) []history.Op {
	var out []history.Op
	for _, op := range ops {
		if slices.Contains(fs, op.F) {
			out = append(out, op)
		}
	}
	return out
}

// badTypes reports ops whose Type is none of ok, fail, info: the harness
// has a bug, and a checker cannot know what such an op means.
func badTypes(ops []history.Op, p *problems) {
	for _, op := range ops {
		switch op.Type {
		case history.TypeOK, history.TypeFail, history.TypeInfo:
		default:
			p.addf("op with unknown type %q: %s", op.Type, op)
		}
	}
}

// byKey groups ops by key, with the keys sorted, so that problems come out
// in a stable order.
func byKey(ops []history.Op) (keys []string, groups map[string][]history.Op) {
	groups = map[string][]history.Op{}
	for _, op := range ops {
		if _, ok := groups[op.Key]; !ok {
			keys = append(keys, op.Key)
		}
		groups[op.Key] = append(groups[op.Key], op)
	}
	sort.Strings(keys)
	return keys, groups
}

// okOf returns the ok ops among ops with f, sorted by invocation.
func okOf(ops []history.Op, f string) []history.Op {
	var out []history.Op
	for _, op := range ops {
		if op.F == f && op.Type == history.TypeOK {
			out = append(out, op)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Invoke < out[j].Invoke })
	return out
}

// lastRead is the index of the read that completed last (ties: the one
// invoked last): the final read the harness takes after healing every
// fault; -1 when there is none.
func lastRead(reads []history.Op) int {
	last := -1
	for i, r := range reads {
		if last < 0 || r.Complete > reads[last].Complete || (r.Complete == reads[last].Complete && r.Invoke > reads[last].Invoke) {
			last = i
		}
	}
	return last
}

// attempts is every add or append of one element of one key, by outcome.
type attempts struct {
	ok, info, fail []history.Op
	// first is the earliest invocation of an ok or info attempt (one that
	// may have taken effect), or -1 if there is none.
	first int64
}

// firstOK is the ok add that completed first; ok is false when none did.
func (a *attempts) firstOK() (first history.Op, ok bool) {
	for _, op := range a.ok {
		if !ok || op.Complete < first.Complete {
			first, ok = op, true
		}
	}
	return first, ok
}

// attemptsOf groups the ops with f (add or append) by element.
func attemptsOf(ops []history.Op, f string) map[string]*attempts {
	m := map[string]*attempts{}
	for _, op := range ops {
		if op.F != f {
			continue
		}
		a := m[op.Value]
		if a == nil {
			a = &attempts{first: -1}
			m[op.Value] = a
		}
		switch op.Type {
		case history.TypeOK:
			a.ok = append(a.ok, op)
		case history.TypeInfo:
			a.info = append(a.info, op)
		case history.TypeFail:
			a.fail = append(a.fail, op)
			continue
		default:
			continue
		}
		if a.first < 0 || op.Invoke < a.first {
			a.first = op.Invoke
		}
	}
	return m
}
