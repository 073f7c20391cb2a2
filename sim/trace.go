package sim

import (
	"fmt"
	"io"
	"time"

	"github.com/orbitkernel/orbit/kernel"
)

// tailLen is how many recent events a run keeps for its report.
const tailLen = 40

// traceTail is a ring of the most recent events, formatted only when shown.
type traceTail struct {
	buf [tailLen]traceEntry
	n   uint64
}

type traceEntry struct {
	at    int64
	seq   uint64
	kind  eventKind
	node  kernel.NodeID
	label string
}

func (t *traceTail) add(s *Sim, e *event) {
	te := traceEntry{at: e.at, seq: e.seq, kind: e.kind, label: e.label}
	if e.node != nil {
		te.node = e.node.id
	}
	if e.kind == evResume {
		te.node, te.label = e.task.node.id, "run "+e.task.name
	}
	t.buf[t.n%tailLen] = te
	t.n++
}

// LastEvents formats the most recent events, oldest first.
func (s *Sim) LastEvents() []string {
	t := &s.tail
	start := uint64(0)
	if t.n > tailLen {
		start = t.n - tailLen
	}
	var out []string
	for i := start; i < t.n; i++ {
		e := t.buf[i%tailLen]
		where := "sim"
		if e.node != 0 {
			where = fmt.Sprintf("n%d", e.node)
		}
		out = append(out, fmt.Sprintf("%12v #%-8d %-4s %s", time.Duration(e.at), e.seq, where, e.label))
	}
	return out
}

// SetLog sends node logs and fault notes to w (nil: nowhere). Lines carry
// virtual time, so a replay prints the same log.
func (s *Sim) SetLog(w io.Writer) { s.logw = w }

// logf notes something the simulator did (a fault, a crash).
func (s *Sim) logf(node kernel.NodeID, format string, args ...any) {
	if s.logw == nil {
		return
	}
	where := "sim"
	if node != 0 {
		where = fmt.Sprintf("n%d", node)
	}
	fmt.Fprintf(s.logw, "%12v %-4s %s\n", s.Elapsed(), where, fmt.Sprintf(format, args...))
}

// TraceTo writes every executed event to w, one line each with the running
// hash: diffing two runs' traces finds where a non-reproducible seed first
// goes its own way.
func (s *Sim) TraceTo(w io.Writer) { s.tracew = w }

func (s *Sim) writeTrace(e *event) {
	var te traceTail
	te.add(s, e)
	x := te.buf[0]
	fmt.Fprintf(s.tracew, "%d #%d n%d %s %016x\n", x.at, x.seq, x.node, x.label, s.trace)
}
