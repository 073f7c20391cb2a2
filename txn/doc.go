// Package txn will hold cross-shard transactions: two-phase commit, locks and
// recovery.
package txn
