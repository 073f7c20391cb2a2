package query

import (
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"
)

// Binary formats are pgx's pgtype codecs: the same code the most used Go
// client reads them with.
var binaryTypes = pgtype.NewMap()

// encodeRowOut writes a result row in its columns' formats (nil: NULL).
func encodeRowOut(cols []Column, types []Type, row []any) ([][]byte, error) {
	out := make([][]byte, len(row))
	for i, v := range row {
		if v == nil {
			continue
		}
		if cols[i].Format == 0 {
			out[i] = formatText(types[i], v)
			continue
		}
		var err error
		if out[i], err = encodeBinary(types[i], v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func encodeBinary(t Type, v any) ([]byte, error) {
	if u, ok := v.(uuidValue); ok {
		return append([]byte(nil), u[:]...), nil // uuid's binary form: its 16 bytes
	}
	if iv, ok := v.(intervalValue); ok {
		v = intervalBinary(iv)
	}
	if tod, ok := v.(timeOfDay); ok {
		v = timeOfDayBinary(tod)
	}
	if j, ok := v.(jsonText); ok {
		if t.OID == TypeJSONB.OID {
			return append([]byte{1}, j...), nil // jsonb's binary form: version 1, then the text
		}
		return []byte(j), nil
	}
	if d, ok := v.(*apd.Decimal); ok {
		var n pgtype.Numeric
		if err := n.Scan(d.Text('f')); err != nil {
			return nil, errorf("XX000", "numeric %s: %v", d, err)
		}
		v = n
	}
	b, err := binaryTypes.Encode(t.OID, pgtype.BinaryFormatCode, v, nil)
	if err != nil {
		return nil, errorf("XX000", "encoding a %s in binary: %v", t.shortName(), err)
	}
	return b, nil
}

// decodeParam reads a bound parameter's value of type t in format.
func decodeParam(t Type, format int16, b []byte) (any, error) {
	if format == 0 {
		return parseText(t, string(b))
	}
	var err error
	var v any
	switch t.family() {
	case famBool:
		var x bool
		err = binaryTypes.Scan(t.OID, 1, b, &x)
		v = x
	case famInt:
		var x int64
		err = binaryTypes.Scan(t.OID, 1, b, &x)
		v = x
	case famFloat:
		var x float64
		err = binaryTypes.Scan(t.OID, 1, b, &x)
		v = x
	case famNumeric:
		var x pgtype.Numeric
		if err = binaryTypes.Scan(t.OID, 1, b, &x); err == nil {
			if !x.Valid || x.NaN || x.InfinityModifier != pgtype.Finite {
				return nil, errorf("0A000", "numeric NaN and infinity are not supported")
			}
			v = apd.NewWithBigInt(new(apd.BigInt).SetMathBigInt(x.Int), x.Exp)
		}
	case famString, famUnknown:
		v = string(b)
	case famBytes:
		v = append([]byte(nil), b...)
	case famTimeOfDay:
		var x pgtype.Time
		if err = binaryTypes.Scan(t.OID, 1, b, &x); err == nil {
			v = timeOfDay(x.Microseconds)
		}
	case famInterval:
		var x pgtype.Interval
		if err = binaryTypes.Scan(t.OID, 1, b, &x); err == nil {
			v = intervalValue{months: x.Months, days: x.Days, micros: x.Microseconds}
		}
	case famJSON:
		text := b
		if t.OID == TypeJSONB.OID {
			if len(b) == 0 || b[0] != 1 {
				return nil, errorf("22P03", "incorrect binary data format in bind parameter: unsupported jsonb version")
			}
			text = b[1:]
		}
		return parseJSON(t, string(text))
	case famUUID:
		var u uuidValue
		if len(b) != len(u) {
			return nil, errorf("22P03", "incorrect binary data format in bind parameter: a uuid is 16 bytes, not %d", len(b))
		}
		copy(u[:], b)
		v = u
	case famTime:
		var x time.Time
		err = binaryTypes.Scan(t.OID, 1, b, &x)
		v = x.UTC()
	default:
		return nil, errorf("0A000", "binary parameters of type %s are not supported", t.shortName())
	}
	if err != nil {
		return nil, errorf("22P03", "incorrect binary data format in bind parameter: %v", err)
	}
	return v, nil
}
