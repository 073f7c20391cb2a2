package query

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/txn"
)

// Foreign keys (docs/sql.md, "Indexes and constraints"). A child table's
// descriptor lists its foreign keys, each naming its parent table (same
// schema) and the parent's columns, which must be its primary key or a
// unique index's; the parent lists the tables that reference it, so that
// a rename keeps both in step and only statements on a referenced table
// look for children. Checks run at the end of each statement, as
// PostgreSQL's NO ACTION checks do, and read in the statement's
// serializable transaction: a child row inserted beside a concurrent
// delete of its parent conflicts (40001), it never commits orphaned.
//
//   - a row written to a child table with no NULL among its key columns
//     (MATCH SIMPLE) needs its parent row: 23503 otherwise;
//   - a parent row deleted, or whose referenced columns change, while
//     child rows reference it: ON DELETE CASCADE deletes them, ON DELETE
//     SET NULL sets their key columns to NULL, NO ACTION and RESTRICT
//     fail with 23503 (ON UPDATE acts only as NO ACTION).
//
// A DEFERRABLE foreign key's NO ACTION checks wait, when deferred
// (INITIALLY DEFERRED, or SET CONSTRAINTS), for the block's COMMIT or a
// SET CONSTRAINTS ... IMMEDIATE: the session keeps them (deferredCheck)
// and runs them then against what the transaction reads (a child row
// deleted since needs nothing; a parent row put back satisfies its
// children). MATCH FULL, ON UPDATE CASCADE/SET NULL and SET DEFAULT are
// refused (0A000).

// ForeignKeyDesc is a foreign key of a child table.
type ForeignKeyDesc struct {
	Name          string   `json:"name"`
	Columns       []uint32 `json:"columns"`
	Parent        string   `json:"parent"`
	ParentColumns []uint32 `json:"parent_columns"`
	// OnDelete is PostgreSQL's letter: a (no action), r (restrict), c
	// (cascade), n (set null).
	OnDelete string `json:"on_delete"`
	OnUpdate string `json:"on_update"`
	// Deferrable: SET CONSTRAINTS may defer its checks to COMMIT;
	// InitiallyDeferred: they are, unless it says otherwise.
	Deferrable        bool `json:"deferrable,omitempty"`
	InitiallyDeferred bool `json:"initially_deferred,omitempty"`
}

// addForeignKey adds con's foreign key to t (not yet stored); the parent
// gains t among the tables that reference it (stored here, unless it is
// t itself). With validate, every row of t must have its parent.
func (a *analyzer) addForeignKey(t *TableDesc, con *pg.Constraint, columns []string, taken map[string]bool, validate bool) error {
	switch {
	case con.FkMatchtype == "f" || con.FkMatchtype == "p":
		return withPosition(errorf("0A000", "MATCH FULL and MATCH PARTIAL are not supported"), con.Location)
	case con.FkDelAction == "d" || (con.FkUpdAction != "a" && con.FkUpdAction != "r" && con.FkUpdAction != ""):
		return withPosition(errorf("0A000", "ON DELETE SET DEFAULT and ON UPDATE actions other than NO ACTION and RESTRICT are not supported"), con.Location)
	case len(con.FkDelSetCols) > 0:
		return withPosition(errorf("0A000", "ON DELETE SET NULL of some columns is not supported"), con.Location)
	case con.SkipValidation:
		return withPosition(errorf("0A000", "NOT VALID foreign keys are not supported"), con.Location)
	}
	fk := ForeignKeyDesc{Name: con.Conname, Parent: con.Pktable.Relname, OnDelete: con.FkDelAction, OnUpdate: con.FkUpdAction,
		Deferrable: con.Deferrable || con.Initdeferred, InitiallyDeferred: con.Initdeferred}
	if fk.OnDelete == "" {
		fk.OnDelete = "a"
	}
	if fk.OnUpdate == "" {
		fk.OnUpdate = "a"
	}
	parent := t
	if fk.Parent != t.Name || (con.Pktable.Schemaname != "" && con.Pktable.Schemaname != t.Schema) {
		var err error
		if parent, err = a.table(con.Pktable); err != nil {
			return err
		}
	}
	for _, c := range columns {
		i, ok := t.columnNamed(c)
		if !ok || t.Columns[i].Hidden {
			return errorf("42703", "column %q referenced in foreign key constraint does not exist", c)
		}
		fk.Columns = append(fk.Columns, t.Columns[i].ID)
	}
	var pcols []string
	for _, n := range con.PkAttrs {
		pcols = append(pcols, stringOf(n))
	}
	if len(pcols) == 0 { // REFERENCES p: its primary key
		if hiddenKey(parent) {
			return errorf("42830", "there is no primary key for referenced table %q", parent.Name)
		}
		pcols = keyColumnNames(parent)
	}
	if len(pcols) != len(fk.Columns) {
		return errorf("42830", "number of referencing and referenced columns for foreign key disagree")
	}
	for _, c := range pcols {
		i, ok := parent.columnNamed(c)
		if !ok || parent.Columns[i].Hidden {
			return errorf("42703", "column %q referenced in foreign key constraint does not exist", c)
		}
		fk.ParentColumns = append(fk.ParentColumns, parent.Columns[i].ID)
	}
	if parentKeyOf(parent, fk.ParentColumns) == nil {
		return errorf("42830", "there is no unique constraint matching given keys for referenced table %q", parent.Name)
	}
	for i := range fk.Columns {
		ct := t.Columns[columnIndex(t.Columns, fk.Columns[i])].Type
		pt := parent.Columns[columnIndex(parent.Columns, fk.ParentColumns[i])].Type
		if ct.family() != pt.family() {
			e := errorf("42804", "foreign key constraint %q cannot be implemented", fk.Name)
			e.Detail = fmt.Sprintf("Key columns %q and %q are of incompatible types: %s and %s.", columns[i], pcols[i], ct.shortName(), pt.shortName())
			return e
		}
	}
	if fk.Name == "" {
		fk.Name = t.Name + "_" + strings.Join(columns, "_") + "_fkey"
	}
	var err error
	if fk.Name, err = t.constraintName(fk.Name, con, taken); err != nil {
		return err
	}
	t.ForeignKeys = append(t.ForeignKeys, fk)
	if validate {
		rows, err := a.allRows(t)
		if err != nil {
			return err
		}
		r := &run{ctx: a.ctx, tx: a.tx, env: &env{session: a.s}}
		for _, row := range rows {
			if err := r.checkParent(t, &t.ForeignKeys[len(t.ForeignKeys)-1], parent, row); err != nil {
				return err
			}
		}
	}
	if !slices.Contains(parent.ReferencedBy, t.Name) {
		parent.ReferencedBy = append(parent.ReferencedBy, t.Name)
		if parent != t {
			parent.Version++
			return putTable(a.ctx, a.tx, parent)
		}
	}
	return nil
}

// parentKey is the unique key of a parent table that a foreign key's
// referenced columns are: its primary key, or a unique index.
type parentKey struct {
	primary bool
	ix      *IndexDesc
}

// parentKeyOf is parent's unique key whose columns are cols, in any
// order (nil: none).
func parentKeyOf(parent *TableDesc, cols []uint32) *parentKey {
	same := func(a []uint32) bool {
		return len(a) == len(cols) && !slices.ContainsFunc(a, func(id uint32) bool { return !slices.Contains(cols, id) })
	}
	if !hiddenKey(parent) && same(parent.PrimaryKey) {
		return &parentKey{primary: true}
	}
	for i := range parent.Indexes {
		if ix := &parent.Indexes[i]; ix.Unique && same(ix.Columns) {
			return &parentKey{ix: ix}
		}
	}
	return nil
}

// fkValues are row's values of cols (false: one is NULL, so MATCH SIMPLE
// checks nothing).
func fkValues(t *TableDesc, cols []uint32, row []any) ([]any, bool) {
	out := make([]any, len(cols))
	for i, id := range cols {
		v := row[columnIndex(t.Columns, id)]
		if v == nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// parentRowKey is the key under which parent's row (or unique index
// entry) with the given values of cols would be.
func parentRowKey(parent *TableDesc, cols []uint32, vals []any) []byte {
	pk := parentKeyOf(parent, cols)
	row := make([]any, len(parent.Columns))
	for i, id := range cols {
		row[columnIndex(parent.Columns, id)] = vals[i]
	}
	if pk == nil || pk.primary {
		return parent.rowKey(row)
	}
	k, _ := parent.indexEntry(pk.ix, row)
	return k
}

// checkParent fails (23503) when row of child t has no parent row under
// fk.
func (r *run) checkParent(t *TableDesc, fk *ForeignKeyDesc, parent *TableDesc, row []any) error {
	vals, ok := fkValues(t, fk.Columns, row)
	if !ok {
		return nil
	}
	_, found, err := r.tx.Get(r.ctx, parentRowKey(parent, fk.ParentColumns, vals))
	if err != nil || found {
		return err
	}
	e := errorf("23503", "insert or update on table %q violates foreign key constraint %q", t.Name, fk.Name)
	e.Detail = fmt.Sprintf("Key (%s)=(%s) is not present in table %q.", columnNames(t, fk.Columns), valueText(t, fk.Columns, row), parent.Name)
	return e
}

func columnNames(t *TableDesc, cols []uint32) string {
	names, _ := t.indexColumnText(&IndexDesc{Columns: cols}, nil)
	return names
}

func valueText(t *TableDesc, cols []uint32, row []any) string {
	_, vals := t.indexColumnText(&IndexDesc{Columns: cols}, row)
	return vals
}

// rowChange is one row a statement wrote: old (nil: inserted) became new
// (nil: deleted).
type rowChange struct{ old, new []any }

// foreignKeys runs a statement's foreign-key work on t once its rows are
// written: the parents of the rows it wrote, and the children of the rows
// it deleted or whose referenced columns it changed.
func (r *run) foreignKeys(t *TableDesc, changes []rowChange) error {
	if len(changes) == 0 || (len(t.ForeignKeys) == 0 && len(t.ReferencedBy) == 0) {
		return nil
	}
	for i := range t.ForeignKeys {
		fk := &t.ForeignKeys[i]
		parent, err := tableBeside(r.ctx, r.tx, t, fk.Parent)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if c.new == nil || (c.old != nil && sameValues(t, fk.Columns, c.old, c.new)) {
				continue
			}
			if r.env.session.deferred(fk) {
				r.env.session.deferChecks = append(r.env.session.deferChecks, deferredCheck{child: t.Name, fk: fk.Name, rowKey: t.rowKey(c.new)})
				continue
			}
			if err := r.checkParent(t, fk, parent, c.new); err != nil {
				return err
			}
		}
	}
	for _, name := range t.ReferencedBy {
		child, err := tableBeside(r.ctx, r.tx, t, name)
		if err != nil {
			return err
		}
		for i := range child.ForeignKeys {
			fk := &child.ForeignKeys[i]
			if fk.Parent != t.Name {
				continue
			}
			for _, c := range changes {
				if c.old == nil || (c.new != nil && sameValues(t, fk.ParentColumns, c.old, c.new)) {
					continue
				}
				if err := r.parentGone(t, child, fk, c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tableBeside reads the table called name in t's schema (t itself for
// its own name: the statement's descriptor); what names it (a foreign
// key, a reference) must not be dangling.
func tableBeside(ctx context.Context, tx *txn.Tx, t *TableDesc, name string) (*TableDesc, error) {
	if name == t.Name {
		return t, nil
	}
	other, err := lookupTable(ctx, tx, t.Database, t.Schema, name)
	if err == nil && other == nil {
		err = errorf("XX001", "table %q names table %q in a foreign key, which does not exist", t.Name, name)
	}
	return other, err
}

func sameValues(t *TableDesc, cols []uint32, a, b []any) bool {
	for _, id := range cols {
		i := columnIndex(t.Columns, id)
		if !bytes.Equal(encodeValueOrNil(a[i]), encodeValueOrNil(b[i])) {
			return false
		}
	}
	return true
}

func encodeValueOrNil(v any) []byte {
	if v == nil {
		return nil
	}
	return append([]byte{1}, appendKey(nil, v)...)
}

// parentGone acts on the child rows that referenced c.old, a parent row
// deleted or whose referenced columns changed.
func (r *run) parentGone(parent, child *TableDesc, fk *ForeignKeyDesc, c rowChange) error {
	vals, ok := fkValues(parent, fk.ParentColumns, c.old)
	if !ok || mutation.On(MutForeignKeyDeleteUnchecked) {
		return nil
	}
	rows, err := r.referencing(child, fk, vals)
	if err != nil || len(rows) == 0 {
		return err
	}
	action := fk.OnDelete
	if c.new != nil {
		action = fk.OnUpdate
	}
	if action == "a" && r.env.session.deferred(fk) {
		// NO ACTION, deferred: at COMMIT, a parent with these values
		// (the same row, or another) must be there, or no child.
		r.env.session.deferChecks = append(r.env.session.deferChecks, deferredCheck{child: child.Name, fk: fk.Name, parentValues: vals})
		return nil
	}
	switch action {
	case "c": // ON DELETE CASCADE
		var gone []rowChange
		for _, row := range rows {
			if err := r.deleteRow(child, row); err != nil {
				return err
			}
			gone = append(gone, rowChange{old: row})
		}
		return r.foreignKeys(child, gone)
	case "n": // ON DELETE SET NULL
		var changed []rowChange
		for _, row := range rows {
			nr := slices.Clone(row)
			for _, id := range fk.Columns {
				nr[columnIndex(child.Columns, id)] = nil
			}
			if err := checkRow(child, nr); err != nil {
				return err
			}
			if err := r.rewriteRow(child, row, nr); err != nil {
				return err
			}
			changed = append(changed, rowChange{old: row, new: nr})
		}
		return r.foreignKeys(child, changed)
	}
	e := errorf("23503", "update or delete on table %q violates foreign key constraint %q on table %q", parent.Name, fk.Name, child.Name)
	e.Detail = fmt.Sprintf("Key (%s)=(%s) is still referenced from table %q.", columnNames(parent, fk.ParentColumns), valueText(parent, fk.ParentColumns, c.old), child.Name)
	return e
}

// referencing reads the rows of child whose fk columns hold vals: through
// an index whose leading columns they are, or by scanning the table.
func (r *run) referencing(child *TableDesc, fk *ForeignKeyDesc, vals []any) ([][]any, error) {
	scan := &tableScan{t: child, maxRows: r.env.session.e.opts.MaxRows}
	pins := map[int]expr{}
	for i, id := range fk.Columns {
		pins[columnIndex(child.Columns, id)] = &constExpr{v: vals[i], t: child.Columns[columnIndex(child.Columns, id)].Type}
	}
	scan.pinned = make([]expr, len(child.PrimaryKey))
	for i, ci := range child.pkIndexes() {
		if scan.pinned[i] = pins[ci]; scan.pinned[i] == nil {
			break
		}
	}
	if scan.pinned[0] == nil {
		scan.chooseIndex(pins)
	}
	rows, err := scan.rows(r)
	if err != nil {
		return nil, err
	}
	want := rowWith(child, fk.Columns, vals, make([]any, len(child.Columns)))
	var out [][]any
	for _, row := range rows {
		if sameValues(child, fk.Columns, row, want) {
			out = append(out, row)
		}
	}
	return out, nil
}

// rowWith is row with vals in cols.
func rowWith(t *TableDesc, cols []uint32, vals []any, row []any) []any {
	out := slices.Clone(row)
	for i, id := range cols {
		out[columnIndex(t.Columns, id)] = vals[i]
	}
	return out
}

// deleteRow deletes a row of t and its index entries.
func (r *run) deleteRow(t *TableDesc, row []any) error {
	if err := r.removeIndexEntries(t, row, nil); err != nil {
		return err
	}
	return r.tx.Delete(r.ctx, t.rowKey(row))
}

// rewriteRow writes new over old, a row of t with the same key, and
// keeps its index entries in step.
func (r *run) rewriteRow(t *TableDesc, old, new []any) error {
	if err := r.removeIndexEntries(t, old, new); err != nil {
		return err
	}
	if err := r.addIndexEntries(t, old, new); err != nil {
		return err
	}
	return r.tx.Put(r.ctx, t.rowKey(new), encodeRow(t.Columns, new))
}

// foreignKeyDef is pg_get_constraintdef's text for fk.
func foreignKeyDef(t *TableDesc, fk *ForeignKeyDesc, parent *TableDesc) string {
	var pcols []string
	for _, id := range fk.ParentColumns {
		name := fmt.Sprint(id)
		if parent != nil {
			name = quoteIdent(parent.Columns[columnIndex(parent.Columns, id)].Name).(string)
		}
		pcols = append(pcols, name)
	}
	var ccols []string
	for _, id := range fk.Columns {
		ccols = append(ccols, quoteIdent(t.Columns[columnIndex(t.Columns, id)].Name).(string))
	}
	def := "FOREIGN KEY (" + strings.Join(ccols, ", ") + ") REFERENCES " + quoteIdent(fk.Parent).(string) + "(" + strings.Join(pcols, ", ") + ")"
	switch fk.OnDelete {
	case "r":
		def += " ON DELETE RESTRICT"
	case "c":
		def += " ON DELETE CASCADE"
	case "n":
		def += " ON DELETE SET NULL"
	}
	if fk.OnUpdate == "r" {
		def += " ON UPDATE RESTRICT"
	}
	switch {
	case fk.InitiallyDeferred:
		def += " DEFERRABLE INITIALLY DEFERRED"
	case fk.Deferrable:
		def += " DEFERRABLE"
	}
	return def
}

// fkColumns are a FOREIGN KEY constraint's own columns: its list, or the
// column it was written on.
func fkColumns(con *pg.Constraint, column string) []string {
	if len(con.FkAttrs) == 0 {
		return []string{column}
	}
	var out []string
	for _, n := range con.FkAttrs {
		out = append(out, stringOf(n))
	}
	return out
}

// dropForeignKey removes t's i-th foreign key; its parent forgets t when
// no other of t's foreign keys references it.
func (a *analyzer) dropForeignKey(t *TableDesc, i int) error {
	parentName := t.ForeignKeys[i].Parent
	t.ForeignKeys = slices.Delete(t.ForeignKeys, i, i+1)
	if slices.ContainsFunc(t.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Parent == parentName }) {
		return nil
	}
	return a.forgetReference(t, parentName)
}

// forgetReference removes child from the tables that reference parent.
func (a *analyzer) forgetReference(child *TableDesc, parentName string) error {
	if parentName == child.Name {
		child.ReferencedBy = slices.DeleteFunc(child.ReferencedBy, func(n string) bool { return n == child.Name })
		return nil
	}
	parent, err := lookupTable(a.ctx, a.tx, child.Database, child.Schema, parentName)
	if err != nil || parent == nil {
		return err
	}
	parent.ReferencedBy = slices.DeleteFunc(parent.ReferencedBy, func(n string) bool { return n == child.Name })
	parent.Version++
	return putTable(a.ctx, a.tx, parent)
}

// dropReferences prepares DROP TABLE of tables: a table another one's
// foreign key references is refused (2BP01) unless cascade, which drops
// those foreign keys; the parents of the dropped tables forget them.
func (a *analyzer) dropReferences(tables []*TableDesc, cascade bool) error {
	dropped := map[string]bool{}
	for _, t := range tables {
		dropped[t.Name] = true
	}
	for _, t := range tables {
		for _, name := range t.ReferencedBy {
			if dropped[name] {
				continue
			}
			child, err := lookupTable(a.ctx, a.tx, t.Database, t.Schema, name)
			if err != nil || child == nil {
				return err
			}
			i := slices.IndexFunc(child.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Parent == t.Name })
			if i < 0 {
				continue
			}
			if !cascade {
				e := errorf("2BP01", "cannot drop table %s because other objects depend on it", t.Name)
				e.Detail = fmt.Sprintf("constraint %s on table %s depends on table %s", child.ForeignKeys[i].Name, child.Name, t.Name)
				e.Hint = "Use DROP ... CASCADE to drop the dependent objects too."
				return e
			}
			a.s.notice("00000", "drop cascades to constraint %s on table %s", child.ForeignKeys[i].Name, child.Name)
			child.ForeignKeys = slices.DeleteFunc(child.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Parent == t.Name })
			child.Version++
			if err := putTable(a.ctx, a.tx, child); err != nil {
				return err
			}
		}
		for _, fk := range t.ForeignKeys {
			if !dropped[fk.Parent] {
				if err := a.forgetReference(t, fk.Parent); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// dropColumnReferences prepares ALTER TABLE t DROP COLUMN c: t's foreign
// keys over c go with it; a foreign key of another table that references
// c refuses the drop (2BP01).
func (a *analyzer) dropColumnReferences(t *TableDesc, c ColumnDesc) error {
	for _, name := range t.ReferencedBy {
		child, err := tableBeside(a.ctx, a.tx, t, name)
		if err != nil {
			return err
		}
		for _, fk := range child.ForeignKeys {
			if fk.Parent == t.Name && slices.Contains(fk.ParentColumns, c.ID) {
				e := errorf("2BP01", "cannot drop column %s of table %s because other objects depend on it", c.Name, t.Name)
				e.Detail = fmt.Sprintf("constraint %s on table %s depends on column %s of table %s", fk.Name, child.Name, c.Name, t.Name)
				return e
			}
		}
	}
	for i := len(t.ForeignKeys) - 1; i >= 0; i-- {
		if slices.Contains(t.ForeignKeys[i].Columns, c.ID) {
			if err := a.dropForeignKey(t, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// renameReferences keeps foreign keys in step with t's rename to name.
func (a *analyzer) renameReferences(t *TableDesc, name string) error {
	rename := func(names []string) []string {
		for i, n := range names {
			if n == t.Name {
				names[i] = name
			}
		}
		return names
	}
	for _, child := range slices.Clone(t.ReferencedBy) {
		if child == t.Name {
			continue
		}
		c, err := lookupTable(a.ctx, a.tx, t.Database, t.Schema, child)
		if err != nil || c == nil {
			return err
		}
		for i := range c.ForeignKeys {
			if c.ForeignKeys[i].Parent == t.Name {
				c.ForeignKeys[i].Parent = name
			}
		}
		c.Version++
		if err := putTable(a.ctx, a.tx, c); err != nil {
			return err
		}
	}
	parents := map[string]bool{}
	for i := range t.ForeignKeys {
		if t.ForeignKeys[i].Parent == t.Name {
			t.ForeignKeys[i].Parent = name
		} else {
			parents[t.ForeignKeys[i].Parent] = true
		}
	}
	for p := range parents {
		pt, err := lookupTable(a.ctx, a.tx, t.Database, t.Schema, p)
		if err != nil || pt == nil {
			return err
		}
		pt.ReferencedBy = rename(pt.ReferencedBy)
		pt.Version++
		if err := putTable(a.ctx, a.tx, pt); err != nil {
			return err
		}
	}
	t.ReferencedBy = rename(t.ReferencedBy)
	return nil
}

// deferredCheck is a foreign-key check a deferred constraint left for
// COMMIT (or SET CONSTRAINTS ... IMMEDIATE): the child row at rowKey
// needs its parent, or (parentValues) a parent row with those values
// went while children may reference them.
type deferredCheck struct {
	child, fk    string
	rowKey       []byte
	parentValues []any
}

// deferred reports whether fk's checks wait for COMMIT: it is deferrable,
// deferred (initially, or by SET CONSTRAINTS), and a transaction block
// is open (a statement outside one commits at its end).
func (s *Session) deferred(fk *ForeignKeyDesc) bool {
	if !fk.Deferrable || s.status != StatusInTxn || s.implicit {
		return false
	}
	if mode, ok := s.constraintModes[fk.Name]; ok {
		return mode
	}
	if s.allConstraints != 0 {
		return s.allConstraints > 0
	}
	return fk.InitiallyDeferred
}

// runDeferredChecks runs the checks the transaction's deferred foreign
// keys left, against what it reads now.
func (s *Session) runDeferredChecks(ctx context.Context, tx *txn.Tx) error {
	checks := s.deferChecks
	s.deferChecks = nil
	r := &run{ctx: ctx, tx: tx, env: &env{session: s, now: s.now(), rowID: s.e.rowID}}
	r.env.run = r
	for _, c := range checks {
		child, err := lookupTable(ctx, tx, s.database, "public", c.child)
		if err != nil {
			return err
		}
		if child == nil {
			continue // dropped since: nothing references anything
		}
		i := slices.IndexFunc(child.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Name == c.fk })
		if i < 0 {
			continue // the constraint was dropped since
		}
		fk := &child.ForeignKeys[i]
		parent, err := tableBeside(ctx, tx, child, fk.Parent)
		if err != nil {
			return err
		}
		if c.rowKey != nil {
			b, found, err := tx.Get(ctx, c.rowKey)
			if err != nil || !found {
				return err // the row went since: it references nothing
			}
			row, err := child.decode(b)
			if err != nil {
				return err
			}
			if err := r.checkParent(child, fk, parent, row); err != nil {
				return err
			}
			continue
		}
		if _, found, err := tx.Get(ctx, parentRowKey(parent, fk.ParentColumns, c.parentValues)); err != nil || found {
			return err // a parent with those values is there again
		}
		rows, err := r.referencing(child, fk, c.parentValues)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			old := rowWith(parent, fk.ParentColumns, c.parentValues, make([]any, len(parent.Columns)))
			e := errorf("23503", "update or delete on table %q violates foreign key constraint %q on table %q", parent.Name, fk.Name, child.Name)
			e.Detail = fmt.Sprintf("Key (%s)=(%s) is still referenced from table %q.", columnNames(parent, fk.ParentColumns), valueText(parent, fk.ParentColumns, old), child.Name)
			return e
		}
	}
	return nil
}

// setConstraints runs SET CONSTRAINTS {ALL | name, ...} {DEFERRED |
// IMMEDIATE} for the rest of the transaction block; IMMEDIATE runs the
// checks left so far, as PostgreSQL does.
func (s *Session) setConstraints(ctx context.Context, st *pg.ConstraintsSetStmt) (string, error) {
	if s.status == StatusIdle || s.implicit {
		s.warning("25P01", "SET CONSTRAINTS can only be used in transaction blocks")
		return "SET CONSTRAINTS", nil
	}
	mode := -1
	if st.Deferred {
		mode = 1
	}
	if len(st.Constraints) == 0 {
		s.allConstraints, s.constraintModes = mode, nil
	} else {
		if s.constraintModes == nil {
			s.constraintModes = map[string]bool{}
		}
		for _, n := range st.Constraints {
			s.constraintModes[n.GetRangeVar().GetRelname()] = st.Deferred
		}
	}
	if st.Deferred {
		return "SET CONSTRAINTS", nil
	}
	// The pending checks run now (those of constraints still deferred
	// run again at COMMIT, which is harmless: a check reads, changes
	// nothing).
	pending := s.deferChecks
	if err := s.runDeferredChecks(ctx, s.tx); err != nil {
		return "", err
	}
	for _, c := range pending {
		if child, err := lookupTable(ctx, s.tx, s.database, "public", c.child); err == nil && child != nil {
			if i := slices.IndexFunc(child.ForeignKeys, func(fk ForeignKeyDesc) bool { return fk.Name == c.fk }); i >= 0 && s.deferred(&child.ForeignKeys[i]) {
				s.deferChecks = append(s.deferChecks, c)
			}
		}
	}
	return "SET CONSTRAINTS", nil
}
