package jepsen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"
)

// The harness's clients authenticate (issue 18): before the workload
// starts, the harness creates a Redis ACL user and a SQL role for them,
// through the default user and postgres, and every workload client and
// final read logs in as those. So every connection a client opens under
// the nemeses (after a kill, a partition, a pause) reads the user's or
// the role's replicated record on the node it reaches: AUTH with the
// user's password on RESP; on the PostgreSQL port, the role's LOGIN and
// CONNECT privilege (the nodes run with trust authentication, which
// checks no password: SCRAM is tested by cmd/orbit's TestServeSQLScram).
const (
	clientUser     = "jepsen"
	clientPassword = "jepsen-secret"
)

// createClientUsers makes the clients' Redis user and SQL role, through
// whichever node answers, until both exist or ctx ends.
func (c *cluster) createClientUsers(ctx context.Context, deadline time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	var last error
	for i := 0; ctx.Err() == nil; i++ {
		n := c.nodes[i%len(c.nodes)]
		if last = createUsersOn(ctx, n); last == nil {
			return nil
		}
		_ = sleep(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("jepsen: creating the clients' user and role: %w", last)
}

func createUsersOn(ctx context.Context, n *node) error {
	admin := goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, TLSConfig: n.tls.clientConfig()})
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", clientUser, "on", ">"+clientPassword, "~*", "&*", "+@all").Err(); err != nil {
		return err
	}
	if n.pgAddr == "" {
		return nil
	}
	conn, err := connectSQL(ctx, n, "postgres", 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A superuser: the sql-bank workload's first client creates its table.
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE USER %s SUPERUSER PASSWORD '%s'", clientUser, clientPassword))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42710" {
		return nil // made by an earlier attempt whose answer was lost
	}
	return err
}
