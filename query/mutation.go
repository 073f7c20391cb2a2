package query

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs (internal/mutation) that the simulator's SQL scenarios
// (sqlbank, sqllist) must catch. Guarded by mutation.On; compiled away
// outside builds with the orbit_mutations tag.
var (
	MutPointReadsUnrecorded = mutation.Plant("sql-point-reads-unrecorded", mutation.SQL,
		"a lookup by the whole primary key reads outside the statement's transaction, so the read is never refreshed or checked at commit (lost updates)")
	MutBlockStatementsAutocommit = mutation.Plant("sql-block-statements-autocommit", mutation.SQL,
		"a statement inside BEGIN ... COMMIT runs in a transaction of its own, so a block's writes commit one by one")
	MutForeignKeyDeleteUnchecked = mutation.Plant("sql-fk-delete-unchecked", mutation.SQL,
		"deleting a parent row never looks for the child rows that reference it: orphans")
	MutIndexUpdateSkipped = mutation.Plant("sql-index-update-skipped", mutation.SQL,
		"an UPDATE removes a changed row's old index entries but writes no new ones: a lookup through the index misses the row")
)
