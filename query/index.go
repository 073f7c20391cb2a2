package query

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/storage"
)

// Secondary indexes (docs/sql.md, "Indexes"). An index is a list of a
// table's columns kept in its descriptor; each row has one entry per
// index, written in the same transaction as the row:
//
//	sql/idx/<table ID, 8 bytes><index ID, 4 bytes><columns>[<primary key>]
//
// with the row's key as the value. Each column is a marker byte (0 NULL,
// 1 a value) and the value's order-preserving form. A unique index's
// entry ends with its columns, so a second row with the same values
// finds it (23505); an entry with a NULL, and every entry of an index
// that is not unique, ends with the primary key too (NULLs are distinct,
// as PostgreSQL's NULLS DISTINCT default says). Uniqueness is checked by
// reading the entry in the statement's serializable transaction: two
// concurrent inserts of one value conflict (40001), never both commit.

// IndexDesc describes a secondary index.
type IndexDesc struct {
	ID      uint32   `json:"id"`
	Name    string   `json:"name"`
	Columns []uint32 `json:"columns"`
	Unique  bool     `json:"unique,omitempty"`
	// Constraint: made by a UNIQUE constraint (CREATE TABLE, ALTER TABLE
	// ADD CONSTRAINT), dropped with DROP CONSTRAINT, not DROP INDEX.
	Constraint bool `json:"constraint,omitempty"`
}

const indexPrefixString = "sql/idx/"

// indexPrefix is where index ix of table t keeps its entries.
func indexPrefix(table uint64, ix uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte(indexPrefixString), table), ix)
}

// indexEntry is row's entry in ix: its key, and whether the key is the
// unique one its column values alone make.
func (t *TableDesc) indexEntry(ix *IndexDesc, row []any) (key []byte, unique bool) {
	key = indexPrefix(t.ID, ix.ID)
	unique = ix.Unique
	for _, id := range ix.Columns {
		v := row[columnIndex(t.Columns, id)]
		if v == nil {
			key = append(key, 0)
			unique = false
			continue
		}
		key = appendKey(append(key, 1), v)
	}
	if !unique {
		key = append(key, t.rowKey(row)[len(tablePrefix(t.ID)):]...)
	}
	return key, unique
}

// indexNamed is t's index called name (nil: none).
func (t *TableDesc) indexNamed(name string) *IndexDesc {
	for i := range t.Indexes {
		if t.Indexes[i].Name == name {
			return &t.Indexes[i]
		}
	}
	return nil
}

// sameEntry reports whether ix's entry for old stays as it is for new
// (same key, same row key in it).
func (t *TableDesc) sameEntry(ix *IndexDesc, old, new []any) bool {
	if old == nil || new == nil {
		return false
	}
	ok, _ := t.indexEntry(ix, old)
	nk, _ := t.indexEntry(ix, new)
	return bytes.Equal(ok, nk) && bytes.Equal(t.rowKey(old), t.rowKey(new))
}

// removeIndexEntries deletes the entries of old (a row being deleted, or
// updated to new) that new does not keep.
func (r *run) removeIndexEntries(t *TableDesc, old, new []any) error {
	for i := range t.Indexes {
		ix := &t.Indexes[i]
		if t.sameEntry(ix, old, new) {
			continue
		}
		k, _ := t.indexEntry(ix, old)
		if err := r.tx.Delete(r.ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// uniqueViolation is the first unique index whose entry for new (a row
// inserted, or updated from old) another row holds (nil: none).
func (r *run) uniqueViolation(t *TableDesc, old, new []any) (*IndexDesc, error) {
	for i := range t.Indexes {
		ix := &t.Indexes[i]
		k, unique := t.indexEntry(ix, new)
		if !unique || t.sameEntry(ix, old, new) {
			continue
		}
		_, found, err := r.tx.Get(r.ctx, k)
		if err != nil {
			return nil, err
		}
		if found {
			return ix, nil
		}
	}
	return nil, nil
}

// addIndexEntries writes the entries of new (a row inserted, or updated
// from old) that old did not have, refusing a duplicate of a unique
// index's values (23505) before writing any.
func (r *run) addIndexEntries(t *TableDesc, old, new []any) error {
	dup, err := r.uniqueViolation(t, old, new)
	if err != nil {
		return err
	}
	if dup != nil {
		return duplicateIndexKey(t, dup, new, "already exists.")
	}
	for i := range t.Indexes {
		ix := &t.Indexes[i]
		if t.sameEntry(ix, old, new) || (old != nil && mutation.On(MutIndexUpdateSkipped)) {
			continue
		}
		k, _ := t.indexEntry(ix, new)
		if err := r.tx.Put(r.ctx, k, t.rowKey(new)); err != nil {
			return err
		}
	}
	return nil
}

// duplicateIndexKey is PostgreSQL's unique violation of ix by row.
func duplicateIndexKey(t *TableDesc, ix *IndexDesc, row []any, what string) *Error {
	e := errorf("23505", "duplicate key value violates unique constraint %q", ix.Name)
	names, vals := t.indexColumnText(ix, row)
	e.Detail = "Key (" + names + ")=(" + vals + ") " + what
	return e
}

// indexColumnText is ix's column names and row's values for them, as
// PostgreSQL's messages list them.
func (t *TableDesc) indexColumnText(ix *IndexDesc, row []any) (names, vals string) {
	var ns, vs []string
	for _, id := range ix.Columns {
		i := columnIndex(t.Columns, id)
		ns = append(ns, t.Columns[i].Name)
		if row == nil {
			continue
		}
		if row[i] == nil {
			vs = append(vs, "null")
		} else {
			vs = append(vs, string(formatText(t.Columns[i].Type, row[i])))
		}
	}
	return strings.Join(ns, ", "), strings.Join(vs, ", ")
}

// backfill writes every row's entry of ix (a new index, or one rebuilt),
// refusing duplicates of a unique one as CREATE UNIQUE INDEX does.
func (a *analyzer) backfill(t *TableDesc, ix *IndexDesc) error {
	rows, err := a.allRows(t)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, row := range rows {
		k, unique := t.indexEntry(ix, row)
		if unique {
			if seen[string(k)] {
				e := errorf("23505", "could not create unique index %q", ix.Name)
				e.Detail = duplicateIndexKey(t, ix, row, "is duplicated.").Detail
				return e
			}
			seen[string(k)] = true
		}
		if err := a.tx.Put(a.ctx, k, t.rowKey(row)); err != nil {
			return err
		}
	}
	return nil
}

// deleteSpan deletes every key in [start, end) in the statement's
// transaction.
func (a *analyzer) deleteSpan(start, end []byte) error {
	return scanSpan(a.ctx, a.tx, start, end, func(kv storage.KeyValue) error { return a.tx.Delete(a.ctx, kv.Key) })
}

// deleteIndex deletes every entry of ix.
func (a *analyzer) deleteIndex(t *TableDesc, ix *IndexDesc) error {
	p := indexPrefix(t.ID, ix.ID)
	return a.deleteSpan(p, prefixEnd(p))
}

// relationExists reports whether a table, an index or a sequence of the
// schema is called name (they share one namespace, as PostgreSQL's
// relations do).
func (a *analyzer) relationExists(schema, name string) (bool, error) {
	tables, err := listTables(a.ctx, a.tx, a.s.database, schema)
	if err != nil {
		return false, err
	}
	for _, t := range tables {
		if t.Name == name || t.indexNamed(name) != nil || (!hiddenKey(t) && t.pkName() == name) {
			return true, nil
		}
	}
	seqs, err := listSequences(a.ctx, a.tx, a.s.database, schema)
	if err != nil {
		return false, err
	}
	for _, s := range seqs {
		if s.desc.Name == name {
			return true, nil
		}
	}
	v, err := a.lookupView(schema, name)
	return v != nil, err
}

// indexOwner finds the table of the schema that has the index called
// name (nil: none).
func (a *analyzer) indexOwner(schema, name string) (*TableDesc, *IndexDesc, error) {
	tables, err := listTables(a.ctx, a.tx, a.s.database, schema)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tables {
		if ix := t.indexNamed(name); ix != nil {
			return t, ix, nil
		}
	}
	return nil, nil, nil
}

// chooseIndexName is PostgreSQL's name for an index on t's columns:
// <table>_<columns>_<suffix> ("idx", or "key" for a unique constraint),
// numbered past the first one free.
func (a *analyzer) chooseIndexName(t *TableDesc, columns []string, suffix string, taken map[string]bool) (string, error) {
	base := t.Name + "_" + strings.Join(columns, "_")
	for n := 0; ; n++ {
		name := base + "_" + suffix
		if n > 0 {
			name = fmt.Sprintf("%s_%s%d", base, suffix, n)
		}
		if taken[name] {
			continue
		}
		exists, err := a.relationExists(t.Schema, name)
		if err != nil || !exists {
			return name, err
		}
	}
}

// newIndex adds an index on the named columns to t (not yet stored nor
// filled), checking what CREATE INDEX checks.
func (a *analyzer) newIndex(t *TableDesc, name string, columns []string, unique, constraint bool) (*IndexDesc, error) {
	ix := IndexDesc{Name: name, Unique: unique, Constraint: constraint}
	for _, c := range columns {
		i, ok := t.columnNamed(c)
		if !ok || t.Columns[i].Hidden {
			if constraint {
				return nil, errorf("42703", "column %q named in key does not exist", c)
			}
			return nil, errorf("42703", "column %q does not exist", c)
		}
		if !keyable(t.Columns[i].Type) {
			return nil, errorf("0A000", "an index on a %s column is not supported", t.Columns[i].Type.shortName())
		}
		if slices.Contains(ix.Columns, t.Columns[i].ID) {
			if constraint {
				return nil, errorf("42701", "column %q appears twice in unique constraint", c)
			}
			// PostgreSQL allows it; nothing gains from it.
			return nil, errorf("0A000", "an index naming a column twice is not supported")
		}
		ix.Columns = append(ix.Columns, t.Columns[i].ID)
	}
	if t.NextIndexID == 0 {
		t.NextIndexID = 1
	}
	ix.ID = t.NextIndexID
	t.NextIndexID++
	t.Indexes = append(t.Indexes, ix)
	return &t.Indexes[len(t.Indexes)-1], nil
}

// patternOps are the operator classes an index may name: PostgreSQL's
// for LIKE prefix searches under a non-C collation, which order strings
// bytewise, as every index here does already (Django asks for them).
var patternOps = map[string]bool{"text_pattern_ops": true, "varchar_pattern_ops": true, "bpchar_pattern_ops": true}

// createIndex runs CREATE [UNIQUE] INDEX: the descriptor gains the index
// and every row its entry, in the statement's transaction.
func (a *analyzer) createIndex(st *pg.IndexStmt) (string, error) {
	switch {
	case st.AccessMethod != "" && st.AccessMethod != "btree":
		return "", errorf("0A000", "index access method %q is not supported", st.AccessMethod)
	case st.WhereClause != nil:
		return "", errorf("0A000", "partial indexes are not supported")
	case len(st.IndexIncludingParams) > 0:
		return "", errorf("0A000", "CREATE INDEX ... INCLUDE is not supported")
	case st.NullsNotDistinct:
		return "", errorf("0A000", "NULLS NOT DISTINCT is not supported")
	}
	// CONCURRENTLY: every CREATE INDEX is one transaction here, which
	// other statements run beside (serializable isolation orders them).
	t, err := a.table(st.Relation)
	if err != nil {
		return "", err
	}
	if err := a.requireOwner(t); err != nil {
		return "", err
	}
	var columns []string
	for _, n := range st.IndexParams {
		p := n.GetIndexElem()
		switch {
		case p == nil || p.Name == "":
			return "", errorf("0A000", "indexes on expressions are not supported")
		case len(p.Collation) > 0 || len(p.Opclass) > 1 || (len(p.Opclass) == 1 && !patternOps[stringOf(p.Opclass[0])]):
			return "", errorf("0A000", "index collations and operator classes are not supported")
		case p.Ordering == pg.SortByDir_SORTBY_DESC || p.NullsOrdering != pg.SortByNulls_SORTBY_NULLS_DEFAULT:
			return "", errorf("0A000", "DESC and NULLS FIRST/LAST index columns are not supported")
		}
		columns = append(columns, p.Name)
	}
	name := st.Idxname
	if name == "" {
		if name, err = a.chooseIndexName(t, columns, "idx", nil); err != nil {
			return "", err
		}
	} else if exists, err := a.relationExists(t.Schema, name); err != nil {
		return "", err
	} else if exists {
		if st.IfNotExists {
			a.s.notice("42P07", "relation %q already exists, skipping", name)
			return "CREATE INDEX", nil
		}
		return "", errorf("42P07", "relation %q already exists", name)
	}
	ix, err := a.newIndex(t, name, columns, st.Unique, false)
	if err != nil {
		return "", err
	}
	if err := a.backfill(t, ix); err != nil {
		return "", err
	}
	t.Version++
	return "CREATE INDEX", putTable(a.ctx, a.tx, t)
}

// dropIndexes runs DROP INDEX.
func (a *analyzer) dropIndexes(st *pg.DropStmt) (string, error) {
	for _, o := range st.Objects {
		schema, name := objectName(o)
		t, ix, err := a.indexOwner(schema, name)
		if err != nil {
			return "", err
		}
		if ix == nil {
			if exists, err := a.relationExists(schema, name); err != nil {
				return "", err
			} else if exists {
				return "", errorf("42809", "%q is not an index", name)
			}
			if st.MissingOk {
				a.s.notice("00000", "index %q does not exist, skipping", name)
				continue
			}
			return "", errorf("42704", "index %q does not exist", name)
		}
		if ix.Constraint {
			e := errorf("2BP01", "cannot drop index %s because constraint %s on table %s requires it", name, name, t.Name)
			e.Hint = fmt.Sprintf("You can drop constraint %s on table %s instead.", name, t.Name)
			return "", e
		}
		if err := a.dropIndex(t, ix); err != nil {
			return "", err
		}
	}
	return "DROP INDEX", nil
}

// dropIndex removes ix from t and deletes its entries.
func (a *analyzer) dropIndex(t *TableDesc, ix *IndexDesc) error {
	if err := a.deleteIndex(t, ix); err != nil {
		return err
	}
	i := slices.IndexFunc(t.Indexes, func(x IndexDesc) bool { return x.ID == ix.ID })
	t.Indexes = slices.Delete(t.Indexes, i, i+1)
	t.Version++
	return putTable(a.ctx, a.tx, t)
}

// uniqueConstraint adds the index of a UNIQUE constraint (CREATE TABLE's
// or ALTER TABLE's) to t; taken are names given to others not yet stored.
func (a *analyzer) uniqueConstraint(t *TableDesc, con *pg.Constraint, columns []string, taken map[string]bool) (*IndexDesc, error) {
	switch {
	case con.NullsNotDistinct:
		return nil, withPosition(errorf("0A000", "NULLS NOT DISTINCT is not supported"), con.Location)
	case len(con.Including) > 0:
		return nil, withPosition(errorf("0A000", "UNIQUE ... INCLUDE is not supported"), con.Location)
	case con.Deferrable:
		return nil, withPosition(errorf("0A000", "deferrable constraints are not supported"), con.Location)
	}
	name := con.Conname
	if name == "" {
		var err error
		if name, err = a.chooseIndexName(t, columns, "key", taken); err != nil {
			return nil, err
		}
	} else if exists, err := a.relationExists(t.Schema, name); err != nil {
		return nil, err
	} else if exists || taken[name] {
		return nil, withPosition(errorf("42P07", "relation %q already exists", name), con.Location)
	}
	taken[name] = true
	return a.newIndex(t, name, columns, true, true)
}

// indexScan reads a table's rows through an index whose leading columns
// the filter pins to constants or parameters: the entries under those
// values, and each entry's row.
type indexScan struct {
	ix     *IndexDesc
	pinned []expr // one per leading index column
}

func (s *tableScan) indexRows(r *run) ([][]any, error) {
	start := indexPrefix(s.t.ID, s.index.ix.ID)
	for _, p := range s.index.pinned {
		v, err := p.eval(r.env, nil)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, nil // col = NULL matches nothing
		}
		start = appendKey(append(start, 1), v)
	}
	end := prefixEnd(start)
	get := r.tx.Get
	if s.forUpdate {
		get = r.tx.GetForUpdate
	}
	var out [][]any
	err := scanSpan(r.ctx, r.tx, start, end, func(kv storage.KeyValue) error {
		b, found, err := get(r.ctx, kv.Value)
		if err != nil {
			return err
		}
		if !found {
			return errorf("XX001", "index %q of table %q names a row that does not exist", s.index.ix.Name, s.t.Name)
		}
		row, err := s.t.decode(b)
		if err != nil {
			return err
		}
		// The entry and its row are read at one snapshot: they agree, or
		// the index is corrupt (a write that forgot an entry).
		if k, _ := s.t.indexEntry(s.index.ix, row); !bytes.Equal(k, kv.Key) {
			return errorf("XX001", "index %q of table %q has an entry its row does not make", s.index.ix.Name, s.t.Name)
		}
		out = append(out, row)
		return r.take(1, s.maxRows)
	})
	return out, err
}

// chooseIndex picks, when the primary key is not pinned, the index
// whose leading columns the equalities pin (pins: column position ->
// value): a unique one pinned in full first, then the longest prefix.
func (s *tableScan) chooseIndex(pins map[int]expr) {
	var best *indexScan
	full := func(x *indexScan) bool { return x.ix.Unique && len(x.pinned) == len(x.ix.Columns) }
	for i := range s.t.Indexes {
		ix := &s.t.Indexes[i]
		var pinned []expr
		for _, id := range ix.Columns {
			v, ok := pins[columnIndex(s.t.Columns, id)]
			if !ok {
				break
			}
			pinned = append(pinned, v)
		}
		if len(pinned) == 0 {
			continue
		}
		c := &indexScan{ix: ix, pinned: pinned}
		if best == nil || (full(c) && !full(best)) || (full(c) == full(best) && len(pinned) > len(best.pinned)) {
			best = c
		}
	}
	s.index = best
}
