package query

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// The SQL layer's keys in the transactional keyspace (txn), all under
// "sql/" (docs/sql.md, "Keys"):
//
//	sql/desc/<database>\x00<schema>\x00<table>  a table's descriptor (JSON)
//	sql/id                                      the last table ID handed out
//	sql/seq/<table ID, 8 bytes>/<column ID>     a serial column's last value
//	sql/row/<table ID, 8 bytes><primary key>    a row (encodeRow)
//
// A primary key is its columns' values, each in an order-preserving form
// (appendKey), so that a scan in key order is a scan in primary-key order.
const (
	descPrefix = "sql/desc/"
	rowPrefix  = "sql/row/"
	seqPrefix  = "sql/seq/"
	idKey      = "sql/id"
)

func descKey(database, schema, table string) []byte {
	return []byte(descPrefix + database + "\x00" + schema + "\x00" + table)
}

// tablePrefix is where table id's rows start; its end is
// tablePrefix(id+1).
func tablePrefix(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(rowPrefix), id)
}

// appendKey appends v (of family f, not NULL) in an order-preserving
// form: for two values a < b of one family, appendKey(a) < appendKey(b)
// bytewise, and no form is a prefix of another's.
func appendKey(dst []byte, v any) []byte {
	switch x := v.(type) {
	case bool:
		if x {
			return append(dst, 1)
		}
		return append(dst, 0)
	case int64:
		return binary.BigEndian.AppendUint64(dst, uint64(x)^(1<<63))
	case float64:
		if x == 0 {
			x = 0 // -0 and 0 are equal
		}
		if math.IsNaN(x) {
			return append(dst, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // NaN sorts last
		}
		b := math.Float64bits(x)
		if b&(1<<63) != 0 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(dst, b)
	case string:
		return appendEscaped(dst, []byte(x))
	case []byte:
		return appendEscaped(dst, x)
	case time.Time:
		return binary.BigEndian.AppendUint64(dst, uint64(x.UnixMicro())^(1<<63))
	case uuidValue:
		return append(dst, x[:]...) // fixed length: never a prefix of another
	case timeOfDay:
		return binary.BigEndian.AppendUint64(dst, uint64(x)) // never negative
	}
	panic("query: appendKey of an unexpected value")
}

// appendEscaped writes b with 0x00 escaped as 0x00 0xFF, ended by 0x00
// 0x01: order-preserving, and never a prefix of a longer value's form.
func appendEscaped(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, 0, 1)
}

// keyable reports whether a type can be a primary-key column.
func keyable(t Type) bool {
	switch t.family() {
	case famBool, famInt, famFloat, famString, famBytes, famTime, famUUID, famTimeOfDay:
		return true
	}
	return false
}

// encodeRow writes a row's values as (column ID, value) pairs, the ID
// shifted left one bit with the low bit set for a NULL. A NULL is
// written only for a column that has a value for rows written before it
// existed (ColumnDesc.Missing); elsewhere an absent column is NULL.
func encodeRow(cols []ColumnDesc, row []any) []byte {
	var out []byte
	for i, c := range cols {
		v := row[i]
		if v == nil {
			if c.Missing != nil {
				out = binary.AppendUvarint(out, uint64(c.ID)<<1|1)
			}
			continue
		}
		out = binary.AppendUvarint(out, uint64(c.ID)<<1)
		switch x := v.(type) {
		case bool:
			if x {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		case int64:
			out = binary.AppendVarint(out, x)
		case float64:
			out = binary.BigEndian.AppendUint64(out, math.Float64bits(x))
		case *apd.Decimal:
			out = appendBytes(out, []byte(x.Text('E')))
		case string:
			out = appendBytes(out, []byte(x))
		case []byte:
			out = appendBytes(out, x)
		case uuidValue:
			out = appendBytes(out, x[:])
		case jsonText:
			out = appendBytes(out, []byte(x))
		case timeOfDay:
			out = binary.AppendVarint(out, int64(x))
		case intervalValue:
			b := binary.BigEndian.AppendUint32(nil, uint32(x.months))
			b = binary.BigEndian.AppendUint32(b, uint32(x.days))
			out = appendBytes(out, binary.BigEndian.AppendUint64(b, uint64(x.micros)))
		case time.Time:
			out = binary.AppendVarint(out, x.UnixMicro())
		default:
			panic("query: encodeRow of an unexpected value")
		}
	}
	return out
}

func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// errCorrupt is a row the SQL layer cannot read: a bug, never bad input.
var errCorrupt = errorf("XX001", "could not decode a stored row")

// decode reads a row of t (encodeRow's form): an absent column is its
// Missing value or NULL; a dropped column's value is skipped.
func (t *TableDesc) decode(b []byte) ([]any, error) {
	row := make([]any, len(t.Columns))
	seen := make([]bool, len(t.Columns))
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errCorrupt
		}
		b = b[n:]
		id := uint32(tag >> 1)
		i := columnIndex(t.Columns, id)
		if i >= 0 {
			seen[i] = true
		}
		if tag&1 == 1 {
			continue // an explicit NULL
		}
		c, ok := t.column(id)
		if !ok {
			return nil, errCorrupt
		}
		var v any
		var err error
		if v, b, err = decodeValue(c.Type, b); err != nil {
			return nil, err
		}
		if i >= 0 {
			row[i] = v
		}
	}
	for i, c := range t.Columns {
		if !seen[i] && c.Missing != nil {
			v, _, err := decodeValue(c.Type, c.Missing)
			if err != nil {
				return nil, err
			}
			row[i] = v
		}
	}
	return row, nil
}

// column finds a live or dropped column by ID (a dropped column's type
// says how to skip its values).
func (t *TableDesc) column(id uint32) (ColumnDesc, bool) {
	if i := columnIndex(t.Columns, id); i >= 0 {
		return t.Columns[i], true
	}
	if i := columnIndex(t.Dropped, id); i >= 0 {
		return t.Dropped[i], true
	}
	return ColumnDesc{}, false
}

// encodeValue is one non-NULL value's form in a row (decodeValue reads
// it).
func encodeValue(v any) []byte {
	return encodeRow([]ColumnDesc{{}}, []any{v})[1:] // without the column tag (one byte for ID 0)
}

// decodeValue reads one value of type t from b and returns the rest.
func decodeValue(t Type, b []byte) (any, []byte, error) {
	switch t.family() {
	case famBool:
		if len(b) < 1 {
			return nil, nil, errCorrupt
		}
		return b[0] == 1, b[1:], nil
	case famInt, famTime, famTimeOfDay:
		x, n := binary.Varint(b)
		if n <= 0 {
			return nil, nil, errCorrupt
		}
		switch t.family() {
		case famTime:
			return time.UnixMicro(x).UTC(), b[n:], nil
		case famTimeOfDay:
			return timeOfDay(x), b[n:], nil
		}
		return x, b[n:], nil
	case famFloat:
		if len(b) < 8 {
			return nil, nil, errCorrupt
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:], nil
	}
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return nil, nil, errCorrupt
	}
	raw, rest := b[n:n+int(l)], b[n+int(l):]
	switch t.family() {
	case famNumeric:
		d, _, err := apd.NewFromString(string(raw))
		if err != nil {
			return nil, nil, errCorrupt
		}
		return d, rest, nil
	case famBytes:
		return append([]byte(nil), raw...), rest, nil
	case famUUID:
		var u uuidValue
		if len(raw) != len(u) {
			return nil, nil, errCorrupt
		}
		copy(u[:], raw)
		return u, rest, nil
	case famJSON:
		return jsonText(raw), rest, nil
	case famInterval:
		if len(raw) != 16 {
			return nil, nil, errCorrupt
		}
		return intervalValue{months: int32(binary.BigEndian.Uint32(raw)), days: int32(binary.BigEndian.Uint32(raw[4:])), micros: int64(binary.BigEndian.Uint64(raw[8:]))}, rest, nil
	}
	return string(raw), rest, nil
}

func columnIndex(cols []ColumnDesc, id uint32) int {
	for i, c := range cols {
		if c.ID == id {
			return i
		}
	}
	return -1
}
