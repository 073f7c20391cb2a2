// Package txn will hold cross-range transactions: MVCC at hybrid-logical
// timestamps, intents, a transaction record as the single point of
// decision, read refresh, an uncertainty interval, and recovery without
// the coordinator (issue 14). Nothing is built yet; docs/txn.md is the
// design, in the order it lands.
package txn
