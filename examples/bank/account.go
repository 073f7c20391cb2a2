// Package bank is the example actor application (issue 16): a bank
// account actor whose methods take and answer JSON. `orbit serve
// --actors bank` hosts it (make run does); call it with
//
//	orbit actor call account alice deposit '{"amount": 100}'
//	orbit actor call account alice withdraw '{"amount": 30}'
//	orbit actor call account alice balance '{}'
//
// The transfer saga of the issue needs sagas, which are not built yet
// (docs/actors.md).
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
}

// amount is the payload of deposit and withdraw.
type amount struct {
	Amount int64 `json:"amount"`
}

// ErrInsufficientFunds: a withdrawal larger than the balance.
var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is the account actor: "deposit" and "withdraw" take
// {"amount": N} (N > 0) and answer the new balance; "balance" answers it.
// Every answer is {"balance": N}.
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
	case "deposit", "withdraw":
		if err := json.Unmarshal(c.Payload, &a); err != nil || a.Amount <= 0 {
			return actor.Result{}, fmt.Errorf(`%s takes {"amount": N} with N > 0`, c.Method)
		}
	default:
		return actor.Result{}, fmt.Errorf("account has no method %q (deposit, withdraw, balance)", c.Method)
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
