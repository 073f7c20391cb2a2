package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
)

// KVModel is the sequential specification of a key-value store, partitioned
// by key: a history is linearizable if and only if each key's is. The state
// of one key is its value ("" when missing). A key may also be a counter
// (OpIncr: its value is a decimal number, "" counting as 0, and an
// increment answers the new value), so counter histories are checked by
// the same model.
//
// It is nondeterministic in one place: a write whose outcome the client does
// not know may have taken effect or not. (An unknown write left open to the
// end of time could be placed last, which is "not at all"; one bounded by
// History.Bound cannot, so the model itself must allow both.)
var KVModel = kvModel.ToModel()

// partitionByKey splits a history into one per key, in order of first
// appearance: single-key operations on different keys are independent, and
// Porcupine checks each part alone (far faster).
func partitionByKey(key func(porcupine.Operation) string) func([]porcupine.Operation) [][]porcupine.Operation {
	return func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := key(op)
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	}
}

var kvModel = porcupine.NondeterministicModel{
	Partition: partitionByKey(func(op porcupine.Operation) string { return op.Input.(KVInput).Key }),
	Init:      func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(string), input.(KVInput), output.(KVOutput)
		// next is the state after the operation takes effect.
		var next string
		switch in.Op {
		case OpGet:
			if out.Unknown || out.Value == st {
				return []any{st}
			}
			return nil
		case OpPut:
			next = in.Value
		case OpDelete:
			next = ""
		case OpIncr:
			n, err := counterValue(st)
			if err != nil {
				return nil
			}
			next = strconv.FormatInt(n+1, 10)
			if !out.Unknown && out.Value != next {
				return nil
			}
		case OpCAS:
			swap := st == in.Expect
			if !out.Unknown && out.OK != swap {
				return nil
			}
			next = st
			if swap {
				next = in.Value
			}
		default:
			return nil
		}
		if out.Unknown {
			return []any{st, next}
		}
		return []any{next}
	},
	Hash: func(state any) uint64 { return strHash(state.(string)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(KVInput), output.(KVOutput)
		switch {
		case out.Unknown:
			return in.String() + " -> ?"
		case in.Op == OpGet, in.Op == OpIncr:
			return fmt.Sprintf("%s -> %q", in, out.Value)
		case in.Op == OpCAS:
			return fmt.Sprintf("%s -> %v", in, out.OK)
		}
		return in.String()
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
	DescribeOperationMetadata: func(info any) string {
		return fmt.Sprintf("called at %v (virtual)", info)
	},
}

// counterValue is a counter key's state as a number: "" (never
// incremented) is 0; anything else not a number is no counter's state.
func counterValue(st string) (int64, error) {
	if st == "" {
		return 0, nil
	}
	return strconv.ParseInt(st, 10, 64)
}

// LinearizabilityError reports a history that no sequential execution
// explains, with the path of Porcupine's visualization of it.
type LinearizabilityError struct {
	Ops  int
	Path string // HTML visualization; empty if it could not be written
}

func (e *LinearizabilityError) Error() string {
	return fmt.Sprintf("linearizability: the history of %d operations is not linearizable; visualization: %s", e.Ops, e.Path)
}

// CheckTimeout bounds one linearizability check. A check that runs out is
// reported as such, never as a pass.
var CheckTimeout = time.Minute

// CheckLinearizable checks h against the key-value model. On failure it
// writes Porcupine's visualization to vizPath.
func CheckLinearizable(h *History, vizPath string) error {
	res, info := porcupine.CheckOperationsVerbose(KVModel, h.ops, CheckTimeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return fmt.Errorf("linearizability: the check of %d operations did not finish in %v", len(h.ops), CheckTimeout)
	}
	err := &LinearizabilityError{Ops: len(h.ops)}
	if vizPath != "" {
		if werr := os.MkdirAll(filepath.Dir(vizPath), 0o755); werr == nil {
			if werr = porcupine.VisualizePath(KVModel, info, vizPath); werr == nil {
				err.Path = vizPath
			}
		}
	}
	return err
}

// VizPath is where a failing run's visualization goes: $ORBIT_SIM_OUT, or
// orbit-sim under the system's temporary directory.
func VizPath(scenario string, seed uint64) string {
	dir := os.Getenv("ORBIT_SIM_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "orbit-sim")
	}
	return filepath.Join(dir, fmt.Sprintf("%s-seed%d.html", scenario, seed))
}
