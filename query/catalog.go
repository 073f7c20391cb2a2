package query

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"

	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// TableDesc describes a table. It is stored as JSON at its descKey and
// read in the transaction of every statement that uses the table, so a
// schema change is a transaction like any other: a statement sees the
// table as of its transaction's timestamp, and a DDL statement conflicts
// with the statements that read the descriptor concurrently (serializable
// isolation orders them). Version counts the changes.
type TableDesc struct {
	ID       uint64       `json:"id"`
	Database string       `json:"database"`
	Schema   string       `json:"schema"`
	Name     string       `json:"name"`
	Columns  []ColumnDesc `json:"columns"`
	// PrimaryKey are the primary key's columns (IDs), in key order. A
	// table created without one has a hidden rowid column as its key.
	PrimaryKey   []uint32 `json:"primary_key"`
	NextColumnID uint32   `json:"next_column_id"`
	Version      uint64   `json:"version"`
	// Dropped are the columns ALTER TABLE DROP COLUMN removed: rows
	// written before still hold their values, which decode skips by
	// their type.
	Dropped []ColumnDesc `json:"dropped,omitempty"`
	// Indexes are the secondary indexes (index.go); NextIndexID the ID
	// the next one gets (0: 1).
	Indexes     []IndexDesc `json:"indexes,omitempty"`
	NextIndexID uint32      `json:"next_index_id,omitempty"`
	// Checks are the CHECK constraints (check.go).
	Checks []CheckDesc `json:"checks,omitempty"`
	// ForeignKeys are the table's foreign keys; ReferencedBy the tables
	// whose foreign keys reference it (foreignkey.go).
	ForeignKeys  []ForeignKeyDesc `json:"foreign_keys,omitempty"`
	ReferencedBy []string         `json:"referenced_by,omitempty"`
	// Owner is the role that made the table ("": postgres, for tables
	// made before owners were kept); Grants the privileges GRANT gave
	// other roles (or "public"), by role (privileges.go).
	Owner  string              `json:"owner,omitempty"`
	Grants map[string][]string `json:"grants,omitempty"`
}

// ColumnDesc describes a column.
type ColumnDesc struct {
	ID      uint32 `json:"id"`
	Name    string `json:"name"`
	TypeOID uint32 `json:"type"`
	TypeMod int32  `json:"type_mod"`
	NotNull bool   `json:"not_null,omitempty"`
	// Default is the default expression's SQL text ("" : NULL).
	Default string `json:"default,omitempty"`
	// Serial: the default is the column's own sequence (SERIAL, BIGSERIAL).
	Serial bool `json:"serial,omitempty"`
	// Hidden: the rowid of a table without a primary key; SELECT * leaves
	// it out.
	Hidden bool `json:"hidden,omitempty"`
	// Missing is the value (encodeValue's form) of rows written before
	// the column was added (ALTER TABLE ADD COLUMN ... DEFAULT, evaluated
	// once, as PostgreSQL's fast default); nil: NULL.
	Missing []byte `json:"missing,omitempty"`
	// Type is TypeOID and TypeMod's type (not stored).
	Type Type `json:"-"`
}

// pkName is the primary key constraint's name, as PostgreSQL makes it.
func (t *TableDesc) pkName() string { return t.Name + "_pkey" }

// pkIndexes are the positions of the primary key's columns in Columns.
func (t *TableDesc) pkIndexes() []int {
	out := make([]int, len(t.PrimaryKey))
	for i, id := range t.PrimaryKey {
		out[i] = columnIndex(t.Columns, id)
	}
	return out
}

// rowKey is the key of a row (its primary key values not NULL).
func (t *TableDesc) rowKey(row []any) []byte {
	k := tablePrefix(t.ID)
	for _, i := range t.pkIndexes() {
		k = appendKey(k, row[i])
	}
	return k
}

func (t *TableDesc) columnNamed(name string) (int, bool) {
	for i, c := range t.Columns {
		if c.Name == name {
			return i, true
		}
	}
	return -1, false
}

func decodeDesc(b []byte) (*TableDesc, error) {
	var t TableDesc
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, errorf("XX001", "could not decode a table descriptor: %v", err)
	}
	for _, cols := range [][]ColumnDesc{t.Columns, t.Dropped} {
		for i := range cols {
			c := &cols[i]
			typ, ok := typesByOID[c.TypeOID]
			if !ok {
				return nil, errorf("XX001", "table %s: unknown type OID %d", t.Name, c.TypeOID)
			}
			c.Type = typ.withMod(c.TypeMod)
		}
	}
	return &t, nil
}

// lookupTable reads a table's descriptor in tx (nil: there is none).
func lookupTable(ctx context.Context, tx *txn.Tx, database, schema, name string) (*TableDesc, error) {
	b, found, err := tx.Get(ctx, descKey(database, schema, name))
	if err != nil || !found {
		return nil, err
	}
	return decodeDesc(b)
}

// scanSpan calls fn with every pair in [start, end), in key order, read
// a page at a time in tx; fn's error stops it.
func scanSpan(ctx context.Context, tx *txn.Tx, start, end []byte, fn func(kv storage.KeyValue) error) error {
	for {
		kvs, err := tx.Scan(ctx, start, end, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := fn(kv); err != nil {
				return err
			}
		}
		if len(kvs) < scanPage {
			return nil
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
}

// listTables reads every table of a database's schema, in name order.
func listTables(ctx context.Context, tx *txn.Tx, database, schema string) ([]*TableDesc, error) {
	var out []*TableDesc
	err := scanSpan(ctx, tx, descKey(database, schema, ""), append(descKey(database, schema, ""), 0xFF), func(kv storage.KeyValue) error {
		t, err := decodeDesc(kv.Value)
		out = append(out, t)
		return err
	})
	return out, err
}

func putTable(ctx context.Context, tx *txn.Tx, t *TableDesc) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Put(ctx, descKey(t.Database, t.Schema, t.Name), b)
}

// nextCounter increments the counter at key in tx and returns its new
// value, transactionally: the catalog's IDs (a rolled-back CREATE gives
// its ID back). Sequences are not transactional (sequence.go).
func nextCounter(ctx context.Context, tx *txn.Tx, key []byte) (int64, error) {
	b, found, err := tx.GetForUpdate(ctx, key)
	if err != nil {
		return 0, err
	}
	var n int64
	if found {
		if n, err = strconv.ParseInt(string(b), 10, 64); err != nil {
			return 0, errorf("XX001", "could not decode a counter: %v", err)
		}
	}
	n++
	return n, tx.Put(ctx, key, []byte(strconv.FormatInt(n, 10)))
}

func serialKey(table uint64, column uint32) []byte {
	k := binary.BigEndian.AppendUint64([]byte(seqPrefix), table)
	return binary.BigEndian.AppendUint32(append(k, '/'), column)
}
