package backup

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation); compiled out of every build without the
// orbit_mutations tag. The bank scenario's backup audits must catch them.
var MutPagesApart = mutation.Plant("backup-pages-apart", mutation.Txn,
	"a backup reads each page in a transaction of its own, at the time it reaches it: a transfer committed between two pages is half in the backup")

// The Redis keyspace's backups (redis.go), caught by the redistxn
// scenario's backup audits.
var (
	MutRedisUnfenced = mutation.Plant("redis-backup-unfenced", mutation.RedisTxn,
		"a backup of the Redis keyspace sets no fence: a transaction across ranges that commits between two ranges' reads is half in the backup")
	MutHeldAsRead = mutation.Plant("redis-backup-held-as-read", mutation.RedisTxn,
		"a backup of the Redis keyspace writes a locked key's records as the range held them, without reading the transaction's decision: a committed transaction not yet resolved there is half in the backup")
)
