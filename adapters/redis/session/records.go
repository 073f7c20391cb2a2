package session

import (
	"context"
	"errors"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/txn"
)

// The session's own records in the transactional keyspace: the function
// libraries (functions.go) and the ACL users (acl.go), each one record,
// read by every node and changed only in transactions.

// readRecord reads key: for update within tx, or else with a read of its
// own through a DB of the pool.
func (s *Server) readRecord(ctx context.Context, tx *txn.Tx, key []byte) ([]byte, error) {
	if tx != nil {
		v, _, err := tx.GetForUpdate(ctx, key)
		return v, err
	}
	v, _, err := s.readLatest(ctx, key)
	return v, err
}

// readLatest reads key's latest committed value with a read of its own
// through a DB of the pool, and the timestamp it read at: a read at a
// later timestamp sees every write this one saw, whichever of two
// overlapping reads finishes first.
func (s *Server) readLatest(ctx context.Context, key []byte) ([]byte, hlc.Timestamp, error) {
	tdb, err := s.takeDB(ctx)
	if err != nil {
		return nil, hlc.Timestamp{}, err
	}
	defer s.dbs.Send(tdb)
	var v []byte
	var at hlc.Timestamp
	err = tdb.Txn(ctx, func(tx *txn.Tx) error {
		var err error
		v, _, err = tx.Get(ctx, key)
		at = tx.ReadTimestamp()
		return err
	})
	return v, at, err
}

// replyError is a reply that ends a record's transaction (inTxn).
type replyError struct{ r redis.Reply }

func (e replyError) Error() string { return string(e.r.Str) }

// inTxn runs change in a transaction, retried as txn.DB.Txn retries, and
// answers its reply; a replyError from change is the answer instead, and
// without a transactional keyspace the answer is the error noKeyspace.
func (s *Server) inTxn(ctx context.Context, noKeyspace string, change func(tx *txn.Tx) (redis.Reply, error)) redis.Reply {
	if s.dbs == nil {
		return redis.Error(noKeyspace)
	}
	tdb, err := s.takeDB(ctx)
	if err != nil {
		return failure(err)
	}
	defer s.dbs.Send(tdb)
	var reply redis.Reply
	err = tdb.Txn(ctx, func(tx *txn.Tx) error {
		var err error
		reply, err = change(tx)
		return err
	})
	var re replyError
	switch {
	case errors.As(err, &re):
		return re.r
	case err != nil:
		return failure(err)
	}
	return reply
}
