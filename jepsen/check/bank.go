package check

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orbitkernel/orbit/jepsen/history"
)

// Bank judges a bank history: transfers between accounts (F "transfer")
// and reads of every balance at once (F "read-bank", Values: each
// account's value, "" for a missing one, which holds start). Every ok read
// must see the same total, accounts*start, and no balance below zero; the
// final reads through every node (the last read of each process at or
// after finalFrom) must agree. A balance is the number before a "/" (what
// follows names the write, so no value is written twice).
func Bank(ops []history.Op, accounts int, start int64) Result {
	var p problems
	var reads, transfers, finals int
	var final []string
	want := int64(accounts) * start
	for _, op := range ops {
		switch {
		case op.F == "transfer" && op.Type == history.TypeOK:
			transfers++
		case op.F == "read-bank" && op.Type == history.TypeOK:
			reads++
			if len(op.Values) != accounts {
				p.addf("%s: %d balances, want %d", op, len(op.Values), accounts)
				continue
			}
			var total int64
			for i, v := range op.Values {
				n := start
				if v != "" {
					var err error
					bal, _, _ := strings.Cut(v, "/")
					if n, err = strconv.ParseInt(bal, 10, 64); err != nil {
						p.addf("%s: account %d holds %q", op, i, v)
						continue
					}
				}
				if n < 0 {
					p.addf("%s: account %d is negative (%d)", op, i, n)
				}
				total += n
			}
			if total != want {
				p.addf("%s: the total is %d, want %d", op, total, want)
			}
			if op.Process >= finalProcess {
				finals++
				if final == nil {
					final = op.Values
				} else if fmt.Sprint(final) != fmt.Sprint(op.Values) {
					p.addf("%s: a final read differs from the first final read %v", op, final)
				}
			}
		}
	}
	if reads == 0 || transfers == 0 {
		p.addf("no ok read (%d) or no ok transfer (%d): the run checked nothing", reads, transfers)
	}
	return Result{Name: "bank", Valid: p.n == 0,
		Summary: fmt.Sprintf("%d ok transfers, %d ok reads (%d final), total %d", transfers, reads, finals, want), Problems: p.result()}
}

// finalProcess numbers the processes of the final reads (jepsen.Run's
// are 1000 and up).
const finalProcess = 1000
