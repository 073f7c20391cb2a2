package backup

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`, see
// internal/mutation); compiled out of every build without the
// orbit_mutations tag. The bank scenario's backup audits must catch them.
var MutPagesApart = mutation.Plant("backup-pages-apart", mutation.Txn,
	"a backup reads each page in a transaction of its own, at the time it reaches it: a transfer committed between two pages is half in the backup")
