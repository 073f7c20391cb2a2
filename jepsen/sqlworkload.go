package jepsen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orbitkernel/orbit/jepsen/check"
	"github.com/orbitkernel/orbit/jepsen/history"
	"github.com/orbitkernel/orbit/jepsen/topo"
)

// sqlBankWorkload: the bank over SQL through the PostgreSQL wire. A
// table of accounts, made by whichever client comes first (CREATE TABLE
// IF NOT EXISTS, then INSERT ... ON CONFLICT DO NOTHING: idempotent and
// safe from any number of clients); transfers in BEGIN ... COMMIT blocks
// (read both balances, move at most the payer's, two UPDATEs); reads of
// every balance with one SELECT. check.Bank requires every read to see
// the starting total and no balance below zero.
type sqlBankWorkload struct{ accounts int }

func newSQLBankWorkload(ranges []topo.Range) *sqlBankWorkload {
	return &sqlBankWorkload{accounts: max(5, len(ranges))}
}

// conn returns the client's connection, dialling (and making the table)
// when it has none.
// connectSQL opens a SQL connection to n as user (with the cluster's
// TLS, when on).
func connectSQL(ctx context.Context, n *node, user string, timeout time.Duration) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("postgres://" + user + "@" + n.pgAddr + "/postgres?sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = timeout
	cfg.Password = clientPassword // asked for only under SCRAM
	if tc := n.tls.clientConfig(); tc != nil {
		cfg.TLSConfig = tc // sslmode=verify-full's checks: the CA, the host
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func (w *sqlBankWorkload) conn(ctx context.Context, p *client) (*pgx.Conn, error) {
	if p.sql != nil && !p.sql.IsClosed() {
		return p.sql, nil
	}
	conn, err := connectSQL(ctx, p.node, clientUser, p.timeout)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, balance bigint NOT NULL)"); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	var values []string
	for i := range w.accounts {
		values = append(values, fmt.Sprintf("(%d, %d)", i, bankStart))
	}
	if _, err := conn.Exec(ctx, "INSERT INTO accounts VALUES "+strings.Join(values, ", ")+" ON CONFLICT DO NOTHING"); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	p.sql = conn
	return conn, nil
}

func (w *sqlBankWorkload) op(ctx context.Context, p *client, op *history.Op) error {
	if p.rng.IntN(3) == 0 {
		op.F, op.Key = "read-sql-bank", w.key()
		return readSQLBank(ctx, p, op)
	}
	from := p.rng.IntN(w.accounts)
	to := (from + 1 + p.rng.IntN(w.accounts-1)) % w.accounts
	amount := int64(1 + p.rng.IntN(10))
	op.F, op.Key = "transfer", fmt.Sprintf("%d %d", from, to)
	conn, err := w.conn(ctx, p)
	if err != nil {
		return sqlOutcome(p, err, false)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return sqlOutcome(p, err, false)
	}
	defer tx.Rollback(context.Background())
	var balance int64
	if err := tx.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", from).Scan(&balance); err != nil {
		return sqlOutcome(p, err, false)
	}
	amount = min(amount, balance)
	op.Value = strconv.FormatInt(amount, 10)
	if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, from); err != nil {
		return sqlOutcome(p, err, false)
	}
	if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", amount, to); err != nil {
		return sqlOutcome(p, err, false)
	}
	if err := tx.Commit(ctx); err != nil {
		return sqlOutcome(p, err, true)
	}
	op.Swapped = true
	return nil
}

// readSQLBank reads every balance, in account order ("" for a missing
// account, which check.Bank counts at the starting balance).
func readSQLBank(ctx context.Context, p *client, op *history.Op) error {
	w := &sqlBankWorkload{accounts: len(strings.Fields(op.Key))}
	if w.accounts == 0 {
		return errors.New("read-sql-bank: no accounts named")
	}
	conn, err := w.conn(ctx, p)
	if err != nil {
		return sqlOutcome(p, err, false)
	}
	rows, err := conn.Query(ctx, "SELECT id, balance FROM accounts ORDER BY id")
	if err != nil {
		return sqlOutcome(p, err, false)
	}
	op.Values = make([]string, w.accounts)
	for rows.Next() {
		var id, balance int64
		if err := rows.Scan(&id, &balance); err != nil {
			rows.Close()
			return sqlOutcome(p, err, false)
		}
		if id < 0 || id >= int64(w.accounts) {
			rows.Close()
			return fmt.Errorf("read-sql-bank: unexpected account %d", id)
		}
		op.Values[id] = strconv.FormatInt(balance, 10)
	}
	if err := rows.Err(); err != nil {
		return sqlOutcome(p, err, false)
	}
	return nil
}

// sqlError marks an error whose transaction certainly did not commit
// (outcome reads it as "fail"): a SQL error before COMMIT, or any error
// answered by the server but 40003 (outcome unknown).
type sqlError struct{ err error }

func (e sqlError) Error() string { return e.err.Error() }
func (e sqlError) Unwrap() error { return e.err }

// sqlOutcome classifies err for the history: a server's error answer
// before the commit, or to it other than 40003, did not commit (fail);
// a broken connection drops the connection (the next op dials again) and
// is unknown if it broke during the commit.
func sqlOutcome(p *client, err error, committing bool) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "40003" {
			return err // unknown
		}
		return sqlError{err}
	}
	if p.sql != nil {
		p.sql.Close(context.Background())
		p.sql = nil
	}
	var op *net.OpError
	if !committing || (errors.As(err, &op) && op.Op == "dial") {
		// The server rolls back a transaction whose connection ends
		// before COMMIT; a dial that failed sent nothing.
		return sqlError{err}
	}
	return err
}

func (w *sqlBankWorkload) finals() []history.Op {
	return []history.Op{{F: "read-sql-bank", Key: w.key()}}
}

func (w *sqlBankWorkload) key() string {
	ids := make([]string, w.accounts)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return strings.Join(ids, " ")
}

func (w *sqlBankWorkload) check(ops []history.Op, _ string) []check.Result {
	for i := range ops {
		if ops[i].F == "read-sql-bank" {
			ops[i].F = "read-bank" // check.Bank's name for a read of every balance
		}
	}
	return []check.Result{check.Bank(ops, w.accounts, bankStart)}
}
