package actor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sagas (docs/actors.md, "Sagas"): SagaType is a built-in actor type, a
// durable orchestration. "start" (payload: a SagaPlan in JSON) runs its
// steps one after another as calls to other actors; when a step is
// refused, it runs the compensations ("undo") of the steps that
// happened, latest first. Calls between actors are sent until their
// outcome is known and run once, so a step whose outcome is unknown is
// never compensated: the saga waits for it. The saga's progress is its
// durable state, so it resumes after any node's crash; "status" answers
// it.

// SagaType is the type name under which hosts run Saga.
const SagaType = "saga"

// SagaCall is one call of a saga.
type SagaCall struct {
	Type    string          `json:"type"`
	Key     string          `json:"key"`
	Method  string          `json:"method"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// SagaStep is a step and its compensation (none: nothing to undo).
type SagaStep struct {
	Do   SagaCall  `json:"do"`
	Undo *SagaCall `json:"undo,omitempty"`
}

// SagaPlan is what a saga runs.
type SagaPlan struct {
	Steps []SagaStep `json:"steps"`
}

// The phases of a saga.
const (
	SagaRunning      = "running"      // steps going forward
	SagaCompensating = "compensating" // a step was refused: undoing the earlier ones
	SagaDone         = "done"         // every step happened
	SagaAborted      = "aborted"      // a step was refused and every earlier one undone
	SagaStuck        = "stuck"        // a compensation was refused sagaUndoAttempts times
)

// sagaUndoAttempts bounds the tries of a refused compensation: a
// compensation is meant to always succeed, and one that keeps failing
// needs a person.
const sagaUndoAttempts = 5

// SagaState is a saga's durable state, and what "status" answers.
type SagaState struct {
	Plan  SagaPlan `json:"plan"`
	Phase string   `json:"phase"`
	// Step is the step in flight: forward, the one being done;
	// compensating, the one being undone.
	Step int `json:"step"`
	// Failed is the refused step and why (compensating, aborted).
	Failed    int    `json:"failed,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Saga is the handler of SagaType.
func Saga(_ context.Context, c Call) (Result, error) {
	var st *SagaState
	if c.State != nil {
		st = &SagaState{}
		if err := json.Unmarshal(c.State, st); err != nil {
			return Result{}, fmt.Errorf("saga %s: corrupt state: %w", c.Ref.Key, err)
		}
	}
	if c.Reply != nil {
		if st == nil {
			return Result{}, fmt.Errorf("saga %s: an answer before a start", c.Ref.Key)
		}
		return st.answer(c.Reply)
	}
	switch c.Method {
	case "status":
		if st == nil {
			return Result{Reply: []byte(`{"phase":"none"}`)}, nil
		}
		out, err := json.Marshal(st)
		return Result{Reply: out}, err
	case "start":
		if st != nil { // started already: its state, not a second run
			out, err := json.Marshal(st)
			return Result{Reply: out}, err
		}
		var plan SagaPlan
		if err := json.Unmarshal(c.Payload, &plan); err != nil || len(plan.Steps) == 0 {
			return Result{}, errors.New(`saga start takes {"steps": [{"do": {...}, "undo": {...}}, ...]} with at least one step`)
		}
		st = &SagaState{Plan: plan, Phase: SagaRunning}
		return st.result(st.call(0, false))
	}
	return Result{}, fmt.Errorf("saga has no method %q (start, status)", c.Method)
}

// call is the call of step i (its compensation if undo), tagged.
func (st *SagaState) call(i int, undo bool) []OutCall {
	sc, tag := st.Plan.Steps[i].Do, "do:"
	if undo {
		sc, tag = *st.Plan.Steps[i].Undo, "undo:"
	}
	return []OutCall{{To: Ref{Type: sc.Type, Key: sc.Key}, Method: sc.Method, Payload: sc.Payload, Tag: tag + strconv.Itoa(i)}}
}

// result writes the state with calls.
func (st *SagaState) result(calls []OutCall) (Result, error) {
	out, err := json.Marshal(st)
	return Result{Reply: out, Write: true, State: out, Calls: calls}, err
}

// compensateFrom undoes the steps before i that have a compensation,
// latest first; none left: aborted.
func (st *SagaState) compensateFrom(i int) (Result, error) {
	for j := i - 1; j >= 0; j-- {
		if st.Plan.Steps[j].Undo != nil {
			st.Phase, st.Step, st.Attempts = SagaCompensating, j, 0
			return st.result(st.call(j, true))
		}
	}
	st.Phase = SagaAborted
	return st.result(nil)
}

// answer takes a step's or a compensation's answer.
func (st *SagaState) answer(r *CallReply) (Result, error) {
	kind, n, _ := strings.Cut(r.Tag, ":")
	i, err := strconv.Atoi(n)
	if err != nil || i != st.Step {
		return Result{}, fmt.Errorf("saga: an answer for %q while at step %d", r.Tag, st.Step)
	}
	switch {
	case kind == "do" && st.Phase == SagaRunning && r.Err == "":
		if i+1 < len(st.Plan.Steps) {
			st.Step = i + 1
			return st.result(st.call(i+1, false))
		}
		st.Phase = SagaDone
		return st.result(nil)
	case kind == "do" && st.Phase == SagaRunning:
		// Refused: the step did not happen; undo the ones before it.
		st.Failed, st.Reason = i, r.Err
		return st.compensateFrom(i)
	case kind == "undo" && st.Phase == SagaCompensating && r.Err == "":
		return st.compensateFrom(i)
	case kind == "undo" && st.Phase == SagaCompensating:
		st.Attempts++
		st.LastError = r.Err
		if st.Attempts >= sagaUndoAttempts {
			st.Phase = SagaStuck
			return st.result(nil)
		}
		return st.result(st.call(i, true))
	}
	return Result{}, fmt.Errorf("saga: an answer for %q in phase %s", r.Tag, st.Phase)
}
