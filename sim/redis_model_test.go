package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The sequential specification of Redis string keys that the Redis
// scenario's history is checked against, and the history itself (History is
// specific to KVInput).
//
// A key's state is "" when the key is missing and "=" followed by its value
// otherwise, so that a missing key and an empty string stay apart.

// redisOp is a string command the scenario's clients send.
type redisOp uint8

const (
	rGet    redisOp = iota + 1 // GET k
	rSet                       // SET k v
	rSetNX                     // SET k v NX
	rSetXX                     // SET k v XX
	rDel                       // DEL k
	rIncr                      // INCR k
	rGetSet                    // GETSET k v
	// rCAS is the EXEC of WATCH k; GET k (-> Expect); MULTI; SET k v; EXEC.
	// The scenario runs it only on keys whose every write stores a value
	// never stored before (no DEL, no INCR), so a key changes back to a
	// state it had never: WATCH's digest then changes exactly when a write
	// applied after the WATCH, and a successful EXEC means the key still
	// held what GET read. An aborted EXEC (a null array) is always allowed:
	// the model cannot know the key's state at WATCH time.
	rCAS
)

// redisInput is an operation as called. Expect (rCAS) is a state.
type redisInput struct {
	Op              redisOp
	Key, Value      string
	Expect          string
	client, rangeNo int // for reports; not compared
}

// redisOutput is an operation's outcome.
type redisOutput struct {
	State   string // rGet, rGetSet: what it read, as a state
	Int     int64  // rDel: keys removed; rIncr: the new value
	OK      bool   // rSetNX, rSetXX: whether it set; rCAS: whether EXEC ran
	Err     bool   // rIncr: "ERR value is not an integer or out of range"
	Unknown bool   // the client cannot know what happened
}

func (in redisInput) String() string {
	switch in.Op {
	case rGet:
		return "GET " + in.Key
	case rSet:
		return fmt.Sprintf("SET %s %s", in.Key, in.Value)
	case rSetNX:
		return fmt.Sprintf("SET %s %s NX", in.Key, in.Value)
	case rSetXX:
		return fmt.Sprintf("SET %s %s XX", in.Key, in.Value)
	case rDel:
		return "DEL " + in.Key
	case rIncr:
		return "INCR " + in.Key
	case rGetSet:
		return fmt.Sprintf("GETSET %s %s", in.Key, in.Value)
	case rCAS:
		return fmt.Sprintf("WATCH-EXEC %s %s->%s", in.Key, describeState(in.Expect), in.Value)
	}
	return "?"
}

func describeState(st string) string {
	if st == "" {
		return "(nil)"
	}
	return strconv.Quote(st[1:])
}

func present(v string) string { return "=" + v }

// incrOf is INCR's effect on state st: the new value, or ok false when the
// value is not a (canonical) 64-bit integer or would overflow.
func incrOf(st string) (int64, bool) {
	if st == "" {
		return 1, true
	}
	n, err := strconv.ParseInt(st[1:], 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != st[1:] || n == math.MaxInt64 {
		return 0, false
	}
	return n + 1, true
}

var redisModel = porcupine.NondeterministicModel{
	Partition: partitionByKey(func(op porcupine.Operation) string { return op.Input.(redisInput).Key }),
	Init:      func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(redisInput), output.(redisOutput)
		next := st // the state after the operation takes effect
		switch in.Op {
		case rGet:
			if out.Unknown || out.State == st {
				return []any{st}
			}
			return nil
		case rSet:
			next = present(in.Value)
		case rSetNX, rSetXX:
			set := (st == "") == (in.Op == rSetNX)
			if !out.Unknown && out.OK != set {
				return nil
			}
			if set {
				next = present(in.Value)
			}
		case rDel:
			n := int64(0)
			if st != "" {
				n = 1
			}
			if !out.Unknown && out.Int != n {
				return nil
			}
			next = ""
		case rIncr:
			n, ok := incrOf(st)
			if !out.Unknown && (out.Err == ok || (ok && out.Int != n)) {
				return nil
			}
			if ok {
				next = present(strconv.FormatInt(n, 10))
			}
		case rGetSet:
			if !out.Unknown && out.State != st {
				return nil
			}
			next = present(in.Value)
		case rCAS:
			if !out.Unknown && !out.OK {
				return []any{st} // aborted: see rCAS
			}
			if st != in.Expect {
				if out.Unknown {
					return []any{st}
				}
				return nil
			}
			next = present(in.Value)
		default:
			return nil
		}
		if out.Unknown && next != st {
			return []any{st, next}
		}
		return []any{next}
	},
	Hash: func(state any) uint64 { return strHash(state.(string)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(redisInput), output.(redisOutput)
		var res string
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == rGet || in.Op == rGetSet:
			res = describeState(out.State)
		case in.Op == rDel:
			res = strconv.FormatInt(out.Int, 10)
		case in.Op == rIncr && out.Err:
			res = "ERR not an integer"
		case in.Op == rIncr:
			res = strconv.FormatInt(out.Int, 10)
		case in.Op == rSetNX || in.Op == rSetXX || in.Op == rCAS:
			res = strconv.FormatBool(out.OK)
		default:
			res = "OK"
		}
		return fmt.Sprintf("%s -> %s (client %d, range %d)", in, res, in.client, in.rangeNo)
	},
	DescribeState: func(state any) string { return describeState(state.(string)) },
	DescribeOperationMetadata: func(info any) string {
		return fmt.Sprintf("called at %v (virtual)", info)
	},
}

// RedisModel is the model the Redis scenario is checked against.
var RedisModel = redisModel.ToModel()

// redisHistory is History for redisInput: the same logical clock, the same
// treatment of unknown outcomes (a read is dropped; a write stays open
// until Bound closes it).
type redisHistory struct {
	s     *Sim
	clock int64
	ops   []porcupine.Operation
}

func (h *redisHistory) tick() int64 {
	h.clock++
	return h.clock
}

type redisPending struct {
	h  *redisHistory
	op porcupine.Operation
}

func (h *redisHistory) Call(client int, in redisInput) *redisPending {
	in.client = client
	return &redisPending{h: h, op: porcupine.Operation{ClientId: client, Input: in, Call: h.tick(), Metadata: h.s.Elapsed()}}
}

func (p *redisPending) Return(out redisOutput) int64 {
	p.op.Output = out
	p.op.Return = p.h.tick()
	p.h.ops = append(p.h.ops, p.op)
	return p.op.Return
}

func (p *redisPending) Unknown() int {
	if p.op.Input.(redisInput).Op == rGet {
		return -1
	}
	p.op.Output = redisOutput{Unknown: true}
	p.op.Return = math.MaxInt64
	p.h.ops = append(p.h.ops, p.op)
	return len(p.h.ops) - 1
}

// Len is the number of recorded operations.
func (h *redisHistory) Len() int { return len(h.ops) }

// Bound closes an unknown write: it cannot take effect after ret (see
// History.Bound).
func (h *redisHistory) Bound(op int, ret int64) {
	if op >= 0 && h.ops[op].Return == math.MaxInt64 {
		h.ops[op].Return = ret
	}
}

// checkRedisLinearizable is CheckLinearizable for the Redis model.
func checkRedisLinearizable(h *redisHistory, vizPath string) error {
	res, info := porcupine.CheckOperationsVerbose(RedisModel, h.ops, CheckTimeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("linearizability: the check of %d operations did not finish in %v", len(h.ops), CheckTimeout)
	}
	err := &LinearizabilityError{Ops: len(h.ops)}
	if vizPath != "" {
		if werr := os.MkdirAll(filepath.Dir(vizPath), 0o755); werr == nil {
			if werr = porcupine.VisualizePath(RedisModel, info, vizPath); werr == nil {
				err.Path = vizPath
			}
		}
	}
	return err
}

// The model's own tests: what it must accept and refuse.
func TestRedisModel(t *testing.T) {
	type step struct {
		in  redisInput
		out redisOutput
	}
	cases := []struct {
		name  string
		steps []step // sequential: each returns before the next is called
		ok    bool
	}{
		{"set get", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=1"}}}, true},
		{"stale get", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, false},
		{"incr missing", []step{{redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 2}}}, true},
		{"incr lost", []step{{redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Int: 1}}}, false},
		{"incr not integer", []step{{redisInput{Op: rSet, Key: "k", Value: "c1"}, redisOutput{}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Err: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=c1"}}}, true},
		{"incr error on integer", []step{{redisInput{Op: rSet, Key: "k", Value: "5"}, redisOutput{}}, {redisInput{Op: rIncr, Key: "k"}, redisOutput{Err: true}}}, false},
		{"nx on present", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rSetNX, Key: "k", Value: "2"}, redisOutput{OK: true}}}, false},
		{"xx on missing", []step{{redisInput{Op: rSetXX, Key: "k", Value: "2"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, true},
		{"del counts", []step{{redisInput{Op: rDel, Key: "k"}, redisOutput{Int: 1}}}, false},
		{"getset", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rGetSet, Key: "k", Value: "2"}, redisOutput{State: "=1"}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=2"}}}, true},
		{"cas ok", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rCAS, Key: "k", Value: "2", Expect: "=1"}, redisOutput{OK: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=2"}}}, true},
		{"cas on changed key", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{}}, {redisInput{Op: rCAS, Key: "k", Value: "2", Expect: ""}, redisOutput{OK: true}}}, false},
		{"cas abort", []step{{redisInput{Op: rCAS, Key: "k", Value: "2", Expect: ""}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}}, true},
		{"unknown set either way", []step{{redisInput{Op: rSet, Key: "k", Value: "1"}, redisOutput{Unknown: true}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{}}, {redisInput{Op: rGet, Key: "k"}, redisOutput{State: "=1"}}}, true},
	}
	for _, c := range cases {
		s := New(1)
		h := &redisHistory{s: s}
		for _, st := range c.steps {
			p := h.Call(0, st.in)
			if st.out.Unknown {
				p.Unknown()
			} else {
				p.Return(st.out)
			}
		}
		err := checkRedisLinearizable(h, "")
		if (err == nil) != c.ok {
			t.Errorf("%s: check says %v, want ok=%v", c.name, err, c.ok)
		}
		s.Close()
	}
}
