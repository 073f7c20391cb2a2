// Package history records what the clients of a Jepsen-style run saw and
// when the nemesis injected faults, in forms a checker can judge afterwards
// and a person can read.
//
// Times are nanoseconds since the run started, not wall-clock instants, so
// that a history read back from disk means the same thing and a report can
// plot it without knowing when the run happened.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The outcomes of an operation, as the client saw them.
const (
	// TypeOK: the operation took effect (for a read, it returned what it
	// returned).
	TypeOK = "ok"
	// TypeFail: the operation definitely did not take effect (for example
	// the server refused it before doing anything). Checkers drop it.
	TypeFail = "fail"
	// TypeInfo: the client cannot know whether it took effect (a timeout, a
	// lost connection). Checkers must accept both.
	TypeInfo = "info"
)

// Op is one operation as a client saw it: invoked, then completed ok, failed
// (definitely did not happen) or info (unknown: may or may not have
// happened, e.g. timeout, connection lost).
//
// One struct serves every workload, rather than one per workload, so that a
// single history.jsonl format, recorder and report plot cover them all; each
// workload uses the fields its F needs.
type Op struct {
	Process int    `json:"process"` // client number
	Node    int    `json:"node"`    // the node the client talked to
	F       string `json:"f"`       // "read","write","cas" (register); "add","read-set" (set); "incr","read-counter" (counter); "append","read-list" (list); "transfer","read-bank" (bank); "txn" (txn-list)
	Key     string `json:"key,omitempty"`
	Value   string `json:"value,omitempty"`  // write/cas: new value; add/append: element
	Expect  string `json:"expect,omitempty"` // cas: the value required (a cas on a missing key is not generated)
	Type    string `json:"type"`             // TypeOK | TypeFail | TypeInfo
	Found   bool   `json:"found,omitempty"`  // read: the key existed
	Read    string `json:"read,omitempty"`   // read: value read
	// Values is the result of read-set (membership, any order) or read-list
	// (the list in order).
	Values []string `json:"values,omitempty"`
	// Int is incr's reply, or read-counter's value (0 if the key is
	// missing).
	Int int64 `json:"int,omitempty"`
	// Txn are the steps of a list-append transaction (F "txn"), reads
	// with the lists they returned once it is ok.
	Txn []MicroOp `json:"txn,omitempty"`
	// Swapped, for an ok cas, says whether it swapped. False means the EXEC
	// aborted or the value differed, which a client cannot tell apart, so
	// it only says the cas did not write.
	Swapped bool   `json:"swapped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Invoke and Complete are nanoseconds since the run started.
	// Invariant: Invoke <= Complete.
	Invoke   int64 `json:"invoke_ns"`
	Complete int64 `json:"complete_ns"`
}

// MicroOp is one step of a list-append transaction: append Value to Key,
// or read Key (Values: the list it returned, for an ok transaction).
type MicroOp struct {
	Append bool     `json:"append,omitempty"`
	Key    string   `json:"key"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
}

func (m MicroOp) String() string {
	if m.Append {
		return fmt.Sprintf("append %s %s", m.Key, m.Value)
	}
	return fmt.Sprintf("read %s %v", m.Key, m.Values)
}

// String describes op in one line for problem reports: who, what, outcome
// and when.
func (op Op) String() string {
	var what string
	switch op.F {
	case "read":
		what = "read " + op.Key
		if op.Type == TypeOK {
			if op.Found {
				what += fmt.Sprintf(" -> %q", op.Read)
			} else {
				what += " -> nil"
			}
		}
	case "write":
		what = fmt.Sprintf("write %s %q", op.Key, op.Value)
	case "cas":
		what = fmt.Sprintf("cas %s %q->%q", op.Key, op.Expect, op.Value)
		if op.Type == TypeOK {
			what += fmt.Sprintf(" swapped=%v", op.Swapped)
		}
	case "add", "append":
		what = fmt.Sprintf("%s %s %q", op.F, op.Key, op.Value)
	case "incr":
		what = "incr " + op.Key
		if op.Type == TypeOK {
			what += fmt.Sprintf(" -> %d", op.Int)
		}
	case "read-counter":
		what = "read-counter " + op.Key
		if op.Type == TypeOK {
			what += fmt.Sprintf(" -> %d", op.Int)
		}
	case "txn":
		var steps []string
		for _, m := range op.Txn {
			steps = append(steps, m.String())
		}
		what = "txn [" + strings.Join(steps, ", ") + "]"
	case "transfer":
		what = fmt.Sprintf("transfer %s %s", op.Key, op.Value)
	case "read-set", "read-list", "read-bank":
		what = op.F + " " + op.Key
		if op.Type == TypeOK {
			what += " -> " + describeValues(op.Values)
		}
	default:
		what = op.F + " " + op.Key
	}
	s := fmt.Sprintf("process %d (node %d) %s %s [%s..%s]", op.Process, op.Node, what, op.Type, Seconds(op.Invoke), Seconds(op.Complete))
	if op.Error != "" {
		s += ": " + op.Error
	}
	return s
}

// describeValues shows a read's elements, eliding the middle of a long one:
// the start and the end are where prefixes and recent appends differ.
func describeValues(vs []string) string {
	const ends = 4
	quote := func(vs []string) string {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = strconv.Quote(v)
		}
		return strings.Join(q, " ")
	}
	if len(vs) <= 2*ends {
		return "[" + quote(vs) + "]"
	}
	return fmt.Sprintf("[%s ... %s] (%d elements)", quote(vs[:ends]), quote(vs[len(vs)-ends:]), len(vs))
}

// Seconds formats ns since the start of the run as "+12.345s", the form
// used in every log line and problem report so they can be lined up.
func Seconds(ns int64) string {
	return fmt.Sprintf("+%.3fs", float64(ns)/1e9)
}

// Recorder appends ops as JSON lines to w and keeps them; safe for
// concurrent use.
//
// Each op is written as it is recorded, not at the end, so that a run that
// crashes or is interrupted still leaves the history up to that point.
type Recorder struct {
	start time.Time

	mu  sync.Mutex
	w   io.Writer
	ops []Op
	err error // the first write error; later writes are skipped
}

// NewRecorder returns a Recorder writing to w (which may be nil to only
// keep ops in memory) and measuring time from start.
func NewRecorder(w io.Writer, start time.Time) *Recorder {
	return &Recorder{start: start, w: w}
}

// Since is the time since the start of the run in ns, for Op.Invoke and
// Op.Complete. It reads the monotonic clock, so a clock fault injected on
// the host does not bend the history.
func (r *Recorder) Since() int64 { return int64(time.Since(r.start)) }

// Record appends op.
func (r *Recorder) Record(op Op) {
	line, err := json.Marshal(op)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	if r.w == nil || r.err != nil {
		return
	}
	if err != nil {
		r.err = fmt.Errorf("history: encoding op: %w", err)
		return
	}
	if _, err := r.w.Write(append(line, '\n')); err != nil {
		r.err = fmt.Errorf("history: writing op: %w", err)
	}
}

// Err is the first error met writing the history, if any. The ops are kept
// in memory regardless, so the run can still be checked.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Ops returns a copy of the ops, in record order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Op, len(r.ops))
	copy(out, r.ops)
	return out
}

// ReadFile reads a history.jsonl back, for re-checking a run without
// running it again.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read reads ops written by a Recorder, one JSON object a line. Blank
// lines are skipped; a malformed line is an error naming its number,
// except a truncated last line (a run killed while writing), which is
// dropped.
func Read(r io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(r)
	// A read-set or read-list op of a long run can be large.
	sc.Buffer(make([]byte, 0, 64*1024), 256<<20)
	var pending error
	for n := 1; sc.Scan(); n++ {
		if pending != nil {
			return nil, pending
		}
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var op Op
		if err := json.Unmarshal(line, &op); err != nil {
			// Only an error if another line follows.
			pending = fmt.Errorf("history: line %d: %w", n, err)
			continue
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return ops, nil
}
