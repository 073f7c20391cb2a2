package sim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/query"
)

// The list-append scenario over SQL: a table lists (k int PRIMARY KEY,
// v text) whose row k holds list k as comma-separated elements. Clients
// run transactions of one to four steps over five keys, each reading a
// list or appending a distinct element to it: in BEGIN ... COMMIT, every
// step reads its row (SELECT v ... WHERE k = $1, FOR UPDATE in half the
// transactions' appends) and an append writes the list one longer
// (UPDATE, or INSERT when the row is absent: a 23505 means a concurrent
// insert won, and the transaction starts over). Some appends are one
// statement outside a block (UPDATE ... SET v = v || ',' || $2 ...
// RETURNING v: the list it wrote is a read too), and some reads a lone
// SELECT. Elle (jepsen/check) judges the history as in listappend:
// G0, G1a, G1b, G1c, G-single, G2 and their real-time forms. Clients die
// mid-transaction with their server node, and the gateway clients
// vanish now and then in half the seeds.
var sqlListScenario = Scenario{
	Name:         "sqllist",
	Setup:        func(s *Sim) Workload { return newSQLList(s, []kernel.NodeID{1, 2, 3}) },
	Adjust:       txnClocks,
	FaultTime:    sqlFaultTime,
	ProgressTime: 30 * time.Second,
	QuiesceTime:  3 * time.Second,
}

// TestSimSQLList runs the SQL list-append scenario: seeds 1–20 by
// default, or those named.
func TestSimSQLList(t *testing.T) {
	runScenario(t, sqlListScenario, seedRange(1, 20))
}

const sqlListKeys = 5

type sqlList struct {
	*sqlCluster
	ready bool // the table exists
	txns  []*check.Txn
	next  int // the next element to append (elements are distinct)
	reads int // committed transactions that read
	// oddAborted counts transactions that read a row their next
	// statement did not find, and then failed to commit.
	oddAborted int
	// undone counts appends written and then undone by ROLLBACK TO
	// SAVEPOINT (in attempts that may or may not have committed).
	undone  int
	lastErr error
	// violation is an answer no correct engine gives here.
	violation error
}

func newSQLList(s *Sim, servers []kernel.NodeID) *sqlList {
	l := &sqlList{}
	l.sqlCluster = newSQLCluster(s, servers, l.client)
	sqlSetUp(s, func() bool { return l.ready })
	// Gateway clients vanish mid-transaction in half the seeds: their
	// transactions' records expire, and whoever meets their intents
	// settles them; the transaction in flight stays unknown.
	if s.Rand().IntN(2) == 0 {
		crashClientsUntil(s, sqlGatewayClients, 500*time.Millisecond, func() bool { return l.healed >= 0 || l.stopped }, func(int) {})
	}
	return l
}

func (l *sqlList) violate(err error) {
	if l.violation == nil {
		l.violation = err
	}
}

func (l *sqlList) client(ctx context.Context, rt kernel.Runtime, i int, eng *query.Engine) {
	sess := openSQL(ctx, rt, eng, uint32(i+1))
	if sess == nil {
		return
	}
	defer sess.Close()
	rng := rt.Rand()
	for !l.stopped {
		if !l.ready {
			// Every client creates the table until one sees it there:
			// concurrent CREATEs of one table, of which one commits.
			actx, cancel := rt.WithTimeout(ctx, sqlOpTimeout)
			_, _, err := sqlExec(actx, sess, "CREATE TABLE lists (k int PRIMARY KEY, v text)", nil)
			cancel()
			sqlRollback(ctx, rt, sess)
			if err == nil || sqlCode(err) == "42P07" {
				l.ready = true
			} else if rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond))) != nil {
				return
			}
			continue
		}
		var plan []check.MicroOp
		for range 1 + rng.IntN(4) {
			op := check.MicroOp{Key: strconv.Itoa(1 + rng.IntN(sqlListKeys)), Append: rng.IntN(2) == 0}
			if op.Append {
				l.next++
				op.Value = strconv.Itoa(l.next)
			}
			plan = append(plan, op)
		}
		single := len(plan) == 1 && rng.IntN(2) == 0
		// In a block, a quarter of the appends are undone by ROLLBACK TO
		// SAVEPOINT once written, in every attempt: they are left out of
		// the history altogether (even a transaction whose outcome is
		// unknown never made them), and their values must never be seen.
		undo := make([]bool, len(plan))
		var recorded []check.MicroOp
		for k, op := range plan {
			undo[k] = !single && op.Append && rng.IntN(4) == 0
			if !undo[k] {
				recorded = append(recorded, op)
			}
		}
		// Recorded as unknown from its start: a client that dies
		// mid-transaction leaves it so.
		t := &check.Txn{Process: i, Type: history.TypeInfo, Invoke: l.s.now, Ops: recorded}
		l.txns = append(l.txns, t)
		actx, cancel := rt.WithTimeout(ctx, sqlOpTimeout)
		var outcome int
		var done []check.MicroOp
		var err error
		if single {
			outcome, done, err = l.single(actx, rt, sess, plan[0])
		} else {
			outcome, done, err = l.block(actx, rt, sess, plan, undo, rng.IntN(2) == 0, rng.IntN(2) == 0)
		}
		cancel()
		sqlRollback(ctx, rt, sess)
		t.Complete = l.s.now
		switch outcome {
		case sqlCommitted:
			t.Type, t.Ops = history.TypeOK, done
			l.served[i] = l.s.now
			for _, op := range done {
				if !op.Append {
					l.reads++
					break
				}
			}
		case sqlFailed:
			t.Type = history.TypeFail
			l.served[i] = l.s.now
			l.lastErr = err
		default:
			l.lastErr = err
		}
		if ctx.Err() != nil {
			return
		}
		_ = rt.Sleep(ctx, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond)))
	}
}

// read reads list key in sess's transaction: its elements, and whether
// its row exists.
func (l *sqlList) read(ctx context.Context, sess *query.Session, key string, forUpdate bool) ([]string, bool, error) {
	q := "SELECT v FROM lists WHERE k = $1"
	if forUpdate {
		q += " FOR UPDATE"
	}
	rows, _, err := sqlExec(ctx, sess, q, oidInt4, key)
	switch {
	case err != nil:
		return nil, false, err
	case len(rows) > 1:
		l.violate(fmt.Errorf("sqllist: %d rows of key %s: %v", len(rows), key, rows))
		return nil, false, errSQLListViolation
	case len(rows) == 0:
		return []string{}, false, nil
	}
	return splitList([]byte(rows[0][0])), true, nil
}

var errSQLListViolation = fmt.Errorf("sqllist: a wrong answer")

// block runs plan in one transaction block, again after a conflict
// (40001) or a lost race to insert a row (23505).
func (l *sqlList) block(ctx context.Context, rt kernel.Runtime, sess *query.Session, plan []check.MicroOp, undo []bool, locking, think bool) (int, []check.MicroOp, error) {
	var done []check.MicroOp
	var odd error
	outcome, err := sqlTxn(ctx, rt, sess, []string{"23505"}, func() error {
		if odd != nil {
			return odd // an odd attempt is the last, whether it commits or not
		}
		done = nil         // an attempt starts over
		var later []string // keys to read again at the end
		for k, op := range plan {
			if k > 0 && think {
				// The application thinks between statements: its
				// later statements run at a timestamp older than
				// others' begun meanwhile.
				if err := rt.Sleep(ctx, time.Duration(rt.Rand().ExpFloat64()*float64(3*time.Millisecond))); err != nil {
					return err
				}
			}
			if undo[k] {
				if _, _, err := sqlExec(ctx, sess, "SAVEPOINT undo", nil); err != nil {
					return err
				}
			}
			list, exists, err := l.read(ctx, sess, op.Key, locking && op.Append)
			if err != nil {
				return err
			}
			// Every step reads the list; an append's read tells Elle what
			// it extended, too.
			done = append(done, check.MicroOp{Key: op.Key, Values: list})
			if !op.Append {
				continue
			}
			v := strings.Join(append(list, op.Value), ",")
			var tag string
			if exists {
				_, tag, err = sqlExec(ctx, sess, "UPDATE lists SET v = $2 WHERE k = $1", []uint32{23, 25}, op.Key, v)
			} else {
				_, tag, err = sqlExec(ctx, sess, "INSERT INTO lists (k, v) VALUES ($1, $2)", []uint32{23, 25}, op.Key, v)
			}
			if err != nil {
				return err
			}
			if tag != "UPDATE 1" && tag != "INSERT 0 1" {
				// The row the transaction just read is not there for its
				// UPDATE. A transaction that a concurrent one aborted may
				// read anything until it learns so (a PostgreSQL client
				// must not trust reads of a transaction that fails): it
				// is a bug only if this one commits. Try.
				odd = fmt.Errorf("sqllist: at %v, an append to key %s (row read: %v, list %v) in a transaction of %v, done %v, answered %q",
					l.s.Elapsed(), op.Key, exists, list, plan, done, tag)
				return nil
			}
			if undo[k] {
				// A locking read of the key first: it writes the buffered
				// append as an intent, which ROLLBACK TO must then remove.
				// (Not a scan: a scan's read would cover the key in the
				// timestamp cache, hiding a lost locking read's entry.)
				if _, _, err := l.read(ctx, sess, op.Key, true); err != nil {
					return err
				}
				// The lock is held a while, as an application works
				// before it changes its mind: others' writes of the key
				// queue behind it, at timestamps below this read's.
				if err := rt.Sleep(ctx, time.Duration(rt.Rand().ExpFloat64()*float64(20*time.Millisecond))); err != nil {
					return err
				}
				if _, _, err := sqlExec(ctx, sess, "ROLLBACK TO SAVEPOINT undo", nil); err != nil {
					return err
				}
				l.undone++
				if rt.Rand().IntN(2) == 0 {
					// Half the undos read the key again only at the
					// end. In a locking transaction the rollback
					// released every lock on the key, and until then
					// only the timestamp cache keeps a write (one
					// that waited for the lock, say) from landing
					// beneath what the transaction read; a read right
					// away would note the key anew and hide a locking
					// read never noted (planted lock-read-unnoted).
					// Elle finds such a write in the later read
					// (internal) or in a cycle.
					later = append(later, op.Key)
					continue
				}
				// The transaction reads the list as it was before the
				// append it undid (its own writes before the savepoint
				// stay; the undone one must be gone).
				again, _, err := l.read(ctx, sess, op.Key, false)
				if err != nil {
					return err
				}
				if !slices.Equal(again, list) {
					l.violate(fmt.Errorf("sqllist: at %v, key %s read %v after ROLLBACK TO SAVEPOINT undid the append of %s to %v", l.s.Elapsed(), op.Key, again, op.Value, list))
				}
				done = append(done, check.MicroOp{Key: op.Key, Values: again})
				continue
			}
			done = append(done, op)
		}
		if len(later) > 0 {
			if err := rt.Sleep(ctx, time.Duration(rt.Rand().ExpFloat64()*float64(5*time.Millisecond))); err != nil {
				return err
			}
		}
		for _, key := range later {
			list, _, err := l.read(ctx, sess, key, false)
			if err != nil {
				return err
			}
			done = append(done, check.MicroOp{Key: key, Values: list})
		}
		return nil
	})
	if odd != nil {
		switch outcome {
		case sqlCommitted:
			l.violate(fmt.Errorf("%w, and it committed", odd))
		case sqlUnknown:
			l.violate(fmt.Errorf("%w, and its COMMIT's outcome is unknown (%v)", odd, err))
		default:
			l.oddAborted++
		}
		return sqlFailed, nil, odd
	}
	return outcome, done, err
}

// single runs a one-step plan as one statement outside a block: a read,
// or an append to a row that exists (its RETURNING list is read as well),
// done in a block when the row is not there.
func (l *sqlList) single(ctx context.Context, rt kernel.Runtime, sess *query.Session, op check.MicroOp) (int, []check.MicroOp, error) {
	if !op.Append {
		list, _, err := l.read(ctx, sess, op.Key, false)
		if err != nil {
			return sqlFailed, nil, err // a read changes nothing
		}
		return sqlCommitted, []check.MicroOp{{Key: op.Key, Values: list}}, nil
	}
	rows, tag, err := sqlExec(ctx, sess, "UPDATE lists SET v = v || ',' || $2 WHERE k = $1 RETURNING v", []uint32{23, 25}, op.Key, op.Value)
	switch {
	case err != nil && sqlDefinite(err):
		return sqlFailed, nil, err
	case err != nil:
		return sqlUnknown, nil, err
	case tag == "UPDATE 0":
		return l.block(ctx, rt, sess, []check.MicroOp{op}, []bool{false}, false, false)
	case tag != "UPDATE 1" || len(rows) != 1:
		l.violate(fmt.Errorf("sqllist: an append to key %s answered %q %v", op.Key, tag, rows))
		return sqlUnknown, nil, errSQLListViolation
	}
	return sqlCommitted, []check.MicroOp{op, {Key: op.Key, Values: splitList([]byte(rows[0][0]))}}, nil
}

func (l *sqlList) Healed() {
	l.healed, l.faultsOver = l.s.now, true
	for j := range sqlGatewayClients {
		l.s.Node(firstClient + kernel.NodeID(j)).Restart() // a no-op for a running one
	}
}

// Progressed also waits for a committed read: a run without one checks
// nothing.
func (l *sqlList) Progressed() bool { return l.progressed(l.served, l.healed) && l.reads > 0 }

func (l *sqlList) Status() string {
	return fmt.Sprintf("ready %v; %d transactions, %d committed with reads, %d appends undone by ROLLBACK TO (last failure: %v); ", l.ready, len(l.txns), l.reads, l.undone, l.lastErr) +
		l.status(l.served, l.healed)
}

func (l *sqlList) Check(string) error {
	switch {
	case l.safetyError != nil:
		return l.safetyError
	case l.violation != nil:
		return l.violation
	}
	if err := checkElle("sqllist", l.txns); err != nil {
		return err
	}
	return l.checkConvergence()
}
