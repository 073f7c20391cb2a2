package sim

import (
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

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

// TraceTo has every executed event traced for w, one line each with the
// running hash, and every disk operation judged: diffing two runs' traces
// finds where a non-reproducible seed first goes its own way. The lines
// are kept in memory and written by FlushTrace: formatting each event
// as it runs slowed the run enough to hide a race with Pebble's
// goroutines that one run in three of a seed met (docs/consensus.md,
// "Determinism with Pebble", cause 6).
func (s *Sim) TraceTo(w io.Writer) { s.tracew = w }

// traceRecord is one traced event (disk false) or disk operation, as kept
// until FlushTrace formats it.
type traceRecord struct {
	disk   bool
	at     int64
	seq    uint64 // the event's; for a disk operation, its index
	node   kernel.NodeID
	label  string // the event's label; for a disk operation, the path
	hash   uint64 // the running hash after the event
	onTask bool
	kind   errorfs.OpKind
}

func (s *Sim) writeTrace(e *event) {
	var te traceTail
	te.add(s, e)
	x := te.buf[0]
	s.traceMu.Lock()
	s.traced = append(s.traced, traceRecord{at: x.at, seq: x.seq, node: x.node, label: x.label, hash: s.trace})
	s.traceMu.Unlock()
}

// traceDisk notes a disk operation judged, on whatever goroutine made it
// (a task's, or Pebble's own while a task of the node runs).
func (s *Sim) traceDisk(node kernel.NodeID, onTask bool, path string, kind errorfs.OpKind, idx uint64) {
	s.traceMu.Lock()
	s.traced = append(s.traced, traceRecord{disk: true, node: node, onTask: onTask, label: path, kind: kind, seq: idx})
	s.traceMu.Unlock()
}

// FlushTrace writes the lines traced since the last call to TraceTo's
// writer.
func (s *Sim) FlushTrace() error {
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	for _, r := range s.traced {
		var err error
		if r.disk {
			_, err = fmt.Fprintf(s.tracew, "  disk n%d task=%t %s %v #%d\n", r.node, r.onTask, r.label, r.kind, r.seq)
		} else {
			_, err = fmt.Fprintf(s.tracew, "%d #%d n%d %s %016x\n", r.at, r.seq, r.node, r.label, r.hash)
		}
		if err != nil {
			return err
		}
	}
	s.traced = nil
	return nil
}
