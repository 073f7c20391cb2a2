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
	case famBool, famInt, famFloat, famString, famBytes, famTime:
		return true
	}
	return false
}

// encodeRow writes a row's non-NULL values as (column ID, value) pairs:
// a column added later is NULL in older rows, a dropped one is skipped.
func encodeRow(cols []ColumnDesc, row []any) []byte {
	var out []byte
	for i, c := range cols {
		v := row[i]
		if v == nil {
			continue
		}
		out = binary.AppendUvarint(out, uint64(c.ID))
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

// decodeRow reads encodeRow's form into a row of cols (NULL where absent).
func decodeRow(cols []ColumnDesc, b []byte) ([]any, error) {
	row := make([]any, len(cols))
	for len(b) > 0 {
		id, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errCorrupt
		}
		b = b[n:]
		i := columnIndex(cols, uint32(id))
		if i < 0 {
			// A dropped column: its value's form is unknown now, so rows
			// are rewritten when a column is dropped (never left).
			return nil, errCorrupt
		}
		var v any
		switch cols[i].Type.family() {
		case famBool:
			if len(b) < 1 {
				return nil, errCorrupt
			}
			v, b = b[0] == 1, b[1:]
		case famInt:
			x, n := binary.Varint(b)
			if n <= 0 {
				return nil, errCorrupt
			}
			v, b = x, b[n:]
		case famFloat:
			if len(b) < 8 {
				return nil, errCorrupt
			}
			v, b = math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:]
		case famTime:
			x, n := binary.Varint(b)
			if n <= 0 {
				return nil, errCorrupt
			}
			v, b = time.UnixMicro(x).UTC(), b[n:]
		default:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errCorrupt
			}
			raw := b[n : n+int(l)]
			b = b[n+int(l):]
			switch cols[i].Type.family() {
			case famNumeric:
				d, _, err := apd.NewFromString(string(raw))
				if err != nil {
					return nil, errCorrupt
				}
				v = d
			case famBytes:
				v = append([]byte(nil), raw...)
			default:
				v = string(raw)
			}
		}
		row[i] = v
	}
	return row, nil
}

func columnIndex(cols []ColumnDesc, id uint32) int {
	for i, c := range cols {
		if c.ID == id {
			return i
		}
	}
	return -1
}
