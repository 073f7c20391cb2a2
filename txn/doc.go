// Package txn is the transactional keyspace: MVCC at hybrid-logical
// timestamps, intents, a transaction record as the single point of
// decision, read refresh, an uncertainty interval, wound–wait, and
// recovery without the coordinator (issue 14; docs/txn.md is the design
// and its status).
//
// Machine is the keyspace's state machine, one per node, evaluated at
// each range's leaseholder; DB and Tx are the coordinator, one DB per
// caller task.
package txn
