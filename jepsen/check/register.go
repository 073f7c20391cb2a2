package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Register checks that the register workload ("read", "write", "cas" on a
// few keys, each a string value or missing) is linearizable, with
// Porcupine, one key at a time.
//
// Outcomes map to Porcupine as follows. A fail op is dropped. An info read
// says nothing and is dropped too. An info write or cas may have taken
// effect at any time after its invocation, or never: it is given a return
// time after every other op and the model lets it either take effect or
// not, so Porcupine may place it anywhere after its call. An ok cas with
// Swapped false constrains nothing but that it did not write: the client
// cannot tell a value that differed from a WATCH that saw a concurrent
// write and aborted the EXEC.
//
// Porcupine's HTML visualization goes to vizPath whatever the verdict
// (skipped if vizPath is ""), since a valid history's picture still helps to
// see what the faults did. A search that does not finish within timeout
// gives Unknown, never Valid.
func Register(ops []history.Op, vizPath string, timeout time.Duration) Result {
	return RegisterWithFaults(ops, nil, vizPath, timeout)
}

// RegisterWithFaults is Register, with faults drawn in the visualization as
// annotations on a "nemesis" row, so that a violation can be seen against
// the partition or kill that caused it.
func RegisterWithFaults(ops []history.Op, faults []history.Fault, vizPath string, timeout time.Duration) Result {
	ops = selectOps(ops, "read", "write", "cas")
	var p problems
	badTypes(ops, &p)
	pops, keys, parts := registerOperations(ops)
	res := Result{Name: "register"}
	summary := fmt.Sprintf("%s; %d key(s), %d ops checked", countByF(ops, "read", "write", "cas"), len(keys), len(pops))

	verdict, info := porcupine.CheckOperationsVerbose(registerModel, pops, timeout)
	switch verdict {
	case porcupine.Ok:
		summary += ", linearizable"
	case porcupine.Unknown:
		res.Unknown = true
		summary += fmt.Sprintf(", unknown: the check did not finish in %v", timeout)
		p.addf("linearizability: the search over %d ops did not finish within %v; the history is neither proven linearizable nor refuted", len(pops), timeout)
	case porcupine.Illegal:
		summary += ", NOT linearizable"
		describeIllegal(info, keys, parts, &p)
	}

	if vizPath != "" {
		info.AddAnnotations(faultAnnotations(faults, pops))
		if err := writeViz(info, vizPath); err != nil {
			p.addf("could not write the linearizability visualization: %v", err)
		}
	}
	res.Valid = verdict == porcupine.Ok && p.n == 0
	res.Summary = summary
	res.Problems = p.result()
	return res
}

// regInput is a register op as invoked.
type regInput struct {
	F      string // "read", "write", "cas"
	Key    string
	Value  string // write, cas: the new value
	Expect string // cas
}

// regOutput is a register op's outcome.
type regOutput struct {
	Found   bool   // read
	Read    string // read, if Found
	Swapped bool   // cas
	Unknown bool   // info: may or may not have taken effect
}

// A register's state is "" when the key is missing and "=" followed by the
// value otherwise, so that a missing key and an empty string stay apart.
func present(v string) string { return "=" + v }

// registerModel is registerSpec as Porcupine checks it.
var registerModel = registerSpec.ToModel()

// registerSpec is the sequential specification of one register per key.
// It is nondeterministic only where the client does not know the outcome.
var registerSpec = porcupine.NondeterministicModel{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		_, parts := partitionByKey(ops)
		return parts
	},
	Init: func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.F {
		case "read":
			want := ""
			if out.Found {
				want = present(out.Read)
			}
			if out.Unknown || want == st {
				return []any{st}
			}
			return nil
		case "write":
			if out.Unknown {
				return []any{st, present(in.Value)}
			}
			return []any{present(in.Value)}
		case "cas":
			match := st == present(in.Expect)
			switch {
			case out.Unknown && match:
				return []any{st, present(in.Value)}
			case out.Unknown || !out.Swapped:
				// Not swapped: the value differed, or the transaction
				// aborted on a concurrent write; either way, no write.
				return []any{st}
			case match:
				return []any{present(in.Value)}
			}
			return nil
		}
		return nil
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	Hash:  func(state any) uint64 { return fnv64(state.(string)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		var s string
		switch in.F {
		case "read":
			s = "read"
		case "write":
			s = fmt.Sprintf("write %q", in.Value)
		case "cas":
			s = fmt.Sprintf("cas %q->%q", in.Expect, in.Value)
		}
		switch {
		case out.Unknown:
			return s + " -> ?"
		case in.F == "read" && out.Found:
			return fmt.Sprintf("%s -> %q", s, out.Read)
		case in.F == "read":
			return s + " -> nil"
		case in.F == "cas":
			return fmt.Sprintf("%s -> swapped=%v", s, out.Swapped)
		}
		return s
	},
	DescribeState: func(state any) string {
		st := state.(string)
		if st == "" {
			return "nil"
		}
		return fmt.Sprintf("%q", st[1:])
	},
	DescribeOperationMetadata: func(info any) string {
		if op, ok := info.(history.Op); ok {
			return op.String()
		}
		return ""
	},
}

// fnv64 is FNV-1a, for Porcupine's state cache.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// partitionByKey splits ops into one history per key, keys in order of
// first appearance. Porcupine checks each alone (far faster), and
// describeIllegal relies on this order to name the key of a partition.
func partitionByKey(ops []porcupine.Operation) (keys []string, parts [][]porcupine.Operation) {
	index := map[string]int{}
	for _, op := range ops {
		k := op.Input.(regInput).Key
		i, ok := index[k]
		if !ok {
			i = len(keys)
			index[k] = i
			keys = append(keys, k)
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return keys, parts
}

// registerOperations converts the ops Porcupine should see, and returns
// them split by key as Porcupine will split them.
//
// ClientId is a lane in the visualization, not the process: a process
// whose op ended info goes on with its next op while that one stays open
// to the end, so it moves to a new lane for the two not to overlap.
func registerOperations(ops []history.Op) ([]porcupine.Operation, []string, [][]porcupine.Operation) {
	var kept []history.Op
	var end int64
	for _, op := range ops {
		end = max(end, op.Invoke, op.Complete)
		switch {
		case op.Type == history.TypeOK:
		case op.Type == history.TypeInfo && op.F != "read":
		default:
			continue
		}
		kept = append(kept, op)
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Invoke < kept[j].Invoke })
	// Every info op returns at "infinity": after every other op.
	infinity := end + 1

	lane := map[int]int{}     // process -> its current lane
	retired := map[int]bool{} // process whose lane holds an open info op
	lanes := 0
	pops := make([]porcupine.Operation, 0, len(kept))
	for _, op := range kept {
		l, ok := lane[op.Process]
		if !ok || retired[op.Process] {
			l = lanes
			lanes++
			lane[op.Process] = l
			retired[op.Process] = false
		}
		in := regInput{F: op.F, Key: op.Key, Value: op.Value, Expect: op.Expect}
		out := regOutput{Found: op.Found, Read: op.Read, Swapped: op.Swapped}
		ret := op.Complete
		if op.Type == history.TypeInfo {
			out = regOutput{Unknown: true}
			ret = infinity
			retired[op.Process] = true
		}
		pops = append(pops, porcupine.Operation{ClientId: l, Input: in, Call: op.Invoke, Output: out, Return: ret, Metadata: op})
	}
	keys, parts := partitionByKey(pops)
	return pops, keys, parts
}

// describeIllegal names each key with no linearization, the longest prefix
// Porcupine could linearize, and the earliest op left out of it, which is
// usually where to start reading.
func describeIllegal(info porcupine.LinearizationInfo, keys []string, parts [][]porcupine.Operation, p *problems) {
	partials := info.PartialLinearizations()
	for i, key := range keys {
		if i >= len(partials) || i >= len(parts) {
			break
		}
		best := 0
		var bestSeq []int
		for _, seq := range partials[i] {
			if len(seq) > len(bestSeq) {
				best, bestSeq = len(seq), seq
			}
		}
		n := len(parts[i])
		if best == n {
			continue // this key is linearizable
		}
		msg := fmt.Sprintf("key %s: not linearizable: no order of its %d ops explains what the clients saw; the longest linearizable prefix has %d ops", key, n, best)
		if len(bestSeq) > 0 {
			msg += fmt.Sprintf(", ending with %s", describePop(parts[i][bestSeq[len(bestSeq)-1]]))
		}
		in := make(map[int]bool, len(bestSeq))
		for _, id := range bestSeq {
			in[id] = true
		}
		first := -1
		for id, op := range parts[i] {
			if !in[id] && (first < 0 || op.Call < parts[i][first].Call) {
				first = id
			}
		}
		if first >= 0 {
			msg += fmt.Sprintf("; the earliest op left out is %s", describePop(parts[i][first]))
		}
		p.addf("%s", msg)
	}
}

func describePop(op porcupine.Operation) string {
	if h, ok := op.Metadata.(history.Op); ok {
		return h.String()
	}
	return registerModel.DescribeOperation(op.Input, op.Output)
}

// faultAnnotations shows faults on a "nemesis" row; a fault still open at
// the end runs to the last op.
func faultAnnotations(faults []history.Fault, pops []porcupine.Operation) []porcupine.Annotation {
	var end int64
	for _, op := range pops {
		if h, ok := op.Metadata.(history.Op); ok {
			end = max(end, h.Complete)
		}
	}
	out := make([]porcupine.Annotation, 0, len(faults))
	for _, f := range faults {
		stop := f.End
		if stop == 0 {
			stop = max(end, f.Start)
		}
		out = append(out, porcupine.Annotation{
			Tag:             "nemesis",
			Start:           f.Start,
			End:             stop,
			Description:     strings.TrimSpace(f.Kind + " " + f.Detail),
			Details:         fmt.Sprintf("%s %s from %s to %s", f.Kind, f.Detail, history.Seconds(f.Start), history.Seconds(stop)),
			BackgroundColor: "#fde2c8",
		})
	}
	return out
}

func writeViz(info porcupine.LinearizationInfo, path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return porcupine.VisualizePath(registerModel, info, path)
}
