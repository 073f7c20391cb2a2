// Package bank is the example actor application (issue 16): a bank
// account actor whose methods take and answer JSON. `orbit serve
// --actors bank` hosts it (make run does); call it with
//
//	orbit actor call account alice deposit '{"amount": 100}'
//	orbit actor call account alice withdraw '{"amount": 30}'
//	orbit actor call account alice balance '{}'
//
// and move money between accounts with the built-in saga type (Transfer
// makes the plan; a saga's key names the transfer):
//
//	orbit actor call saga t1 start '{"steps":[
//	  {"do":{"type":"account","key":"alice","method":"withdraw","payload":{"amount":10}},
//	   "undo":{"type":"account","key":"alice","method":"deposit","payload":{"amount":10}}},
//	  {"do":{"type":"account","key":"bob","method":"deposit","payload":{"amount":10}}}]}'
//	orbit actor call saga t1 status
package bank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orbitkernel/orbit/kernel/actor"
)

// Types are the application's actor types, by name.
func Types() map[string]actor.Handler {
	return map[string]actor.Handler{"account": Account}
}

// accountState is an account's durable state.
type accountState struct {
	Balance int64 `json:"balance"`
	Closed  bool  `json:"closed,omitempty"`
}

// amount is the payload of deposit and withdraw.
type amount struct {
	Amount int64 `json:"amount"`
}

// Refusals.
var (
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrClosed            = errors.New("account closed")
)

// Transfer is the saga plan that moves amount from one account to
// another: withdraw (undone by a deposit back), then deposit. Start it
// with a call of "start" to a saga actor (type actor.SagaType) whose key
// names the transfer.
func Transfer(from, to string, amount int64) []byte {
	a := []byte(fmt.Sprintf(`{"amount": %d}`, amount))
	plan := actor.SagaPlan{Steps: []actor.SagaStep{
		{Do: actor.SagaCall{Type: "account", Key: from, Method: "withdraw", Payload: a},
			Undo: &actor.SagaCall{Type: "account", Key: from, Method: "deposit", Payload: a}},
		{Do: actor.SagaCall{Type: "account", Key: to, Method: "deposit", Payload: a}},
	}}
	b, _ := json.Marshal(plan) // plain data: never fails
	return b
}

// Account is the account actor: "deposit" and "withdraw" take
// {"amount": N} (N > 0) and answer the new balance; "balance" answers it;
// "close" closes the account, which then refuses deposits (and so a
// transfer into it is compensated). Every answer is the account's state,
// {"balance": N} (and "closed": true).
func Account(_ context.Context, c actor.Call) (actor.Result, error) {
	var st accountState
	if c.State != nil {
		if err := json.Unmarshal(c.State, &st); err != nil {
			return actor.Result{}, fmt.Errorf("account %s: corrupt state: %w", c.Ref.Key, err)
		}
	}
	var a amount
	switch c.Method {
	case "balance":
		reply, err := json.Marshal(st)
		return actor.Result{Reply: reply}, err
	case "close":
		st.Closed = true
		out, err := json.Marshal(st)
		return actor.Result{Reply: out, Write: true, State: out}, err
	case "deposit", "withdraw":
		if err := json.Unmarshal(c.Payload, &a); err != nil || a.Amount <= 0 {
			return actor.Result{}, fmt.Errorf(`%s takes {"amount": N} with N > 0`, c.Method)
		}
	default:
		return actor.Result{}, fmt.Errorf("account has no method %q (deposit, withdraw, balance)", c.Method)
	}
	if c.Method == "deposit" && st.Closed {
		return actor.Result{}, fmt.Errorf("%w: account %s", ErrClosed, c.Ref.Key)
	}
	if c.Method == "withdraw" {
		if a.Amount > st.Balance {
			return actor.Result{}, fmt.Errorf("%w: balance %d, withdrawal %d", ErrInsufficientFunds, st.Balance, a.Amount)
		}
		a.Amount = -a.Amount
	}
	st.Balance += a.Amount
	out, err := json.Marshal(st)
	if err != nil {
		return actor.Result{}, err
	}
	return actor.Result{Reply: out, Write: true, State: out}, nil
}
