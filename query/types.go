package query

import (
	"bytes"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// Type is a SQL type. Values of a type are held as one Go type per
// family (see family): nil is NULL.
type Type struct {
	OID  uint32
	Name string // as format_type prints it
	Size int16  // pg_type.typlen
	// Mod is the type modifier: a varchar(n)'s or char(n)'s n (-1: none).
	Mod int32
	// Elem is an array type's element type (0: not an array).
	Elem uint32
}

// The types Orbit has. Their OIDs are PostgreSQL's, so that clients'
// type tables apply.
var (
	TypeBool        = Type{OID: 16, Name: "boolean", Size: 1, Mod: -1}
	TypeBytea       = Type{OID: 17, Name: "bytea", Size: -1, Mod: -1}
	TypeInt8        = Type{OID: 20, Name: "bigint", Size: 8, Mod: -1}
	TypeInt2        = Type{OID: 21, Name: "smallint", Size: 2, Mod: -1}
	TypeInt4        = Type{OID: 23, Name: "integer", Size: 4, Mod: -1}
	TypeText        = Type{OID: 25, Name: "text", Size: -1, Mod: -1}
	TypeFloat4      = Type{OID: 700, Name: "real", Size: 4, Mod: -1}
	TypeFloat8      = Type{OID: 701, Name: "double precision", Size: 8, Mod: -1}
	TypeUnknown     = Type{OID: 705, Name: "unknown", Size: -2, Mod: -1}
	TypeBpchar      = Type{OID: 1042, Name: "character", Size: -1, Mod: -1}
	TypeVarchar     = Type{OID: 1043, Name: "character varying", Size: -1, Mod: -1}
	TypeDate        = Type{OID: 1082, Name: "date", Size: 4, Mod: -1}
	TypeTimestamp   = Type{OID: 1114, Name: "timestamp without time zone", Size: 8, Mod: -1}
	TypeTimestamptz = Type{OID: 1184, Name: "timestamp with time zone", Size: 8, Mod: -1}
	TypeNumeric     = Type{OID: 1700, Name: "numeric", Size: -1, Mod: -1}
	TypeName        = Type{OID: 19, Name: "name", Size: 64, Mod: -1}
	TypeOid         = Type{OID: 26, Name: "oid", Size: 4, Mod: -1}
	TypeUUID        = Type{OID: 2950, Name: "uuid", Size: 16, Mod: -1}
	// The OID alias types: an OID that prints (and is read) as a name.
	TypeRegproc      = Type{OID: 24, Name: "regproc", Size: 4, Mod: -1}
	TypeRegclass     = Type{OID: 2205, Name: "regclass", Size: 4, Mod: -1}
	TypeRegtype      = Type{OID: 2206, Name: "regtype", Size: 4, Mod: -1}
	TypeRegnamespace = Type{OID: 4089, Name: "regnamespace", Size: 4, Mod: -1}
)

var typesByOID = map[uint32]Type{}

// typeNames maps the names a statement may use (pg_catalog's and the
// SQL standard's) to types.
var typeNames = map[string]Type{
	"bool": TypeBool, "boolean": TypeBool,
	"bytea": TypeBytea,
	"int8":  TypeInt8, "bigint": TypeInt8,
	"int2": TypeInt2, "smallint": TypeInt2,
	"int4": TypeInt4, "int": TypeInt4, "integer": TypeInt4,
	"text":   TypeText,
	"float4": TypeFloat4, "real": TypeFloat4,
	"float8": TypeFloat8, "double precision": TypeFloat8, "float": TypeFloat8,
	"bpchar": TypeBpchar, "char": TypeBpchar, "character": TypeBpchar,
	"varchar": TypeVarchar, "character varying": TypeVarchar,
	"date":        TypeDate,
	"timestamp":   TypeTimestamp,
	"timestamptz": TypeTimestamptz,
	"numeric":     TypeNumeric, "decimal": TypeNumeric,
	"name":    TypeName,
	"oid":     TypeOid,
	"uuid":    TypeUUID,
	"regproc": TypeRegproc, "regclass": TypeRegclass, "regtype": TypeRegtype, "regnamespace": TypeRegnamespace,
}

func init() {
	for _, t := range typeNames {
		typesByOID[t.OID] = t
	}
	typesByOID[TypeChar.OID] = TypeChar
	registerArrayTypes()
}

// family is how a type's values are held and compared.
type family int

const (
	famUnknown   family = iota // a literal not yet typed: string
	famBool                    // bool
	famInt                     // int64
	famFloat                   // float64
	famNumeric                 // *apd.Decimal
	famString                  // string
	famBytes                   // []byte
	famTime                    // time.Time (UTC; a date at midnight)
	famArray                   // []any of the element type's values
	famUUID                    // uuidValue
	famJSON                    // jsonText
	famInterval                // intervalValue
	famTimeOfDay               // timeOfDay
)

// uuidValue is a uuid's value.
type uuidValue [16]byte

func (t Type) family() family {
	if t.Elem != 0 {
		return famArray
	}
	switch t.OID {
	case TypeBool.OID:
		return famBool
	case TypeInt2.OID, TypeInt4.OID, TypeInt8.OID, TypeOid.OID, TypeRegproc.OID, TypeRegclass.OID, TypeRegtype.OID, TypeRegnamespace.OID:
		return famInt
	case TypeFloat4.OID, TypeFloat8.OID:
		return famFloat
	case TypeNumeric.OID:
		return famNumeric
	case TypeText.OID, TypeVarchar.OID, TypeBpchar.OID, TypeName.OID, TypeChar.OID:
		return famString
	case TypeBytea.OID:
		return famBytes
	case TypeDate.OID, TypeTimestamp.OID, TypeTimestamptz.OID:
		return famTime
	case TypeUUID.OID:
		return famUUID
	case TypeJSON.OID, TypeJSONB.OID:
		return famJSON
	case TypeInterval.OID:
		return famInterval
	case TypeTime.OID:
		return famTimeOfDay
	}
	return famUnknown
}

// withMod returns t with its modifier (a varchar's or char's length).
func (t Type) withMod(mod int32) Type { t.Mod = mod; return t }

// String is the type as format_type prints it: "character varying(10)".
func (t Type) String() string {
	switch {
	case t.Mod >= 0 && (t.OID == TypeVarchar.OID || t.OID == TypeBpchar.OID):
		return t.Name + "(" + strconv.Itoa(int(t.Mod)) + ")"
	case t.Mod >= 0 && t.OID == TypeNumeric.OID:
		return t.Name + "(" + strconv.Itoa(int(t.Mod>>16)) + "," + strconv.Itoa(int(t.Mod&0xFFFF)) + ")"
	}
	return t.Name
}

// shortName is the type as an error message names it ("integer").
func (t Type) shortName() string { return t.Name }

// intRange is the range of an integer type.
func intRange(t Type) (lo, hi int64) {
	switch t.OID {
	case TypeInt2.OID:
		return math.MinInt16, math.MaxInt16
	case TypeInt4.OID:
		return math.MinInt32, math.MaxInt32
	case TypeOid.OID, TypeRegproc.OID, TypeRegclass.OID, TypeRegtype.OID, TypeRegnamespace.OID:
		return 0, math.MaxUint32
	}
	return math.MinInt64, math.MaxInt64
}

func errInvalidInput(t Type, s string) *Error {
	return errorf("22P02", "invalid input syntax for type %s: %q", t.shortName(), s)
}

func errOutOfRange(t Type) *Error {
	if t.family() == famInt {
		return errorf("22003", "%s out of range", t.shortName())
	}
	return errorf("22003", "value out of range for type %s", t.shortName())
}

// parseText reads s, a value in PostgreSQL's text form, as type t.
func parseText(t Type, s string) (any, error) {
	switch t.family() {
	case famBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "t", "true", "y", "yes", "on", "1":
			return true, nil
		case "f", "false", "n", "no", "off", "0":
			return false, nil
		}
		return nil, errInvalidInput(t, s)
	case famInt:
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, errorf("22003", "value %q is out of range for type %s", s, t.shortName())
			}
			return nil, errInvalidInput(t, s)
		}
		if lo, hi := intRange(t); v < lo || v > hi {
			return nil, errorf("22003", "value %q is out of range for type %s", s, t.shortName())
		}
		return v, nil
	case famFloat:
		trimmed := strings.TrimSpace(s)
		switch strings.ToLower(trimmed) {
		case "nan":
			return math.NaN(), nil
		case "infinity", "inf", "+infinity", "+inf":
			return math.Inf(1), nil
		case "-infinity", "-inf":
			return math.Inf(-1), nil
		}
		v, err := strconv.ParseFloat(trimmed, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, errorf("22003", "%q is out of range for type %s", s, t.shortName())
			}
			return nil, errInvalidInput(t, s)
		}
		if t.OID == TypeFloat4.OID {
			v = float64(float32(v))
		}
		return v, nil
	case famNumeric:
		d, _, err := apd.NewFromString(strings.TrimSpace(s))
		if err != nil || d.Form != apd.Finite {
			return nil, errInvalidInput(t, s)
		}
		if d.IsZero() {
			d.Negative = false // numeric has no negative zero
		}
		return d, nil
	case famString, famUnknown:
		return s, nil
	case famBytes:
		return parseBytea(s)
	case famTime:
		return parseTime(t, s)
	case famArray:
		return parseArray(t, s)
	case famUUID:
		return parseUUID(s)
	case famJSON:
		return parseJSON(t, s)
	case famInterval:
		return parseInterval(s)
	case famTimeOfDay:
		return parseTimeOfDay(s)
	}
	return nil, errorf("0A000", "type %s is not supported", t.Name)
}

// parseUUID reads a uuid as PostgreSQL does: 32 hex digits, with or
// without the hyphens of the standard form, in braces or not.
func parseUUID(s string) (uuidValue, error) {
	var u uuidValue
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		t = t[1 : len(t)-1]
	}
	if len(t) == 36 && t[8] == '-' && t[13] == '-' && t[18] == '-' && t[23] == '-' {
		t = t[:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	}
	if len(t) != 32 {
		return u, errInvalidInput(TypeUUID, s)
	}
	if _, err := hex.Decode(u[:], []byte(t)); err != nil {
		return u, errInvalidInput(TypeUUID, s)
	}
	return u, nil
}

func formatUUID(u uuidValue) []byte {
	out := make([]byte, 36)
	hex.Encode(out, u[:4])
	out[8] = '-'
	hex.Encode(out[9:], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return out
}

func parseBytea(s string) ([]byte, error) {
	if strings.HasPrefix(s, `\x`) {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, errorf("22P02", "invalid hexadecimal data: odd number of digits")
		}
		return b, nil
	}
	// The escape format: backslash, then a backslash or three octal digits.
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		if i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		return nil, errInvalidInput(TypeBytea, s)
	}
	return out, nil
}

var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04Z07:00",
	"2006-01-02 15:04Z07",
	"2006-01-02 15:04",
	"2006-01-02",
}

func parseTime(t Type, s string) (time.Time, error) {
	trimmed := strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		v, err := time.Parse(layout, trimmed)
		if err != nil {
			continue
		}
		v = v.UTC()
		if t.OID == TypeDate.OID {
			v = time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
		}
		return v.Truncate(time.Microsecond), nil
	}
	return time.Time{}, errorf("22007", "invalid input syntax for type %s: %q", t.shortName(), s)
}

// formatText writes v of type t in PostgreSQL's text form (v is not nil).
func formatText(t Type, v any) []byte {
	switch x := v.(type) {
	case bool:
		if x {
			return []byte("t")
		}
		return []byte("f")
	case int64:
		if name, ok := regName(t, x); ok {
			return []byte(name)
		}
		return strconv.AppendInt(nil, x, 10)
	case float64:
		return []byte(formatFloat(x, t.OID == TypeFloat4.OID))
	case *apd.Decimal:
		return []byte(x.Text('f'))
	case string:
		return []byte(x)
	case []byte:
		out := make([]byte, 2+hex.EncodedLen(len(x)))
		copy(out, `\x`)
		hex.Encode(out[2:], x)
		return out
	case []any:
		return formatArray(t, x)
	case uuidValue:
		return formatUUID(x)
	case jsonText:
		return []byte(x)
	case intervalValue:
		return formatInterval(x)
	case timeOfDay:
		return formatTimeOfDay(x)
	case time.Time:
		switch t.OID {
		case TypeDate.OID:
			return []byte(x.Format("2006-01-02"))
		case TypeTimestamptz.OID:
			return []byte(x.UTC().Format("2006-01-02 15:04:05.999999") + "+00")
		}
		return []byte(x.Format("2006-01-02 15:04:05.999999"))
	}
	panic("query: formatText of an unexpected value")
}

// formatFloat is float8out's (and float4out's) shortest exact form:
// exponent notation below 1e-4 and from 1e15 (1e6 for real) on.
func formatFloat(f float64, single bool) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	bits, digits := 64, 15
	if single {
		bits, digits = 32, 6
	}
	e := strconv.FormatFloat(f, 'e', -1, bits)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= digits {
		return e
	}
	return strconv.FormatFloat(f, 'f', -1, bits)
}

// compareValues orders two non-NULL values of one family.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		return cmpOrdered(x, b.(int64))
	case float64:
		y := b.(float64)
		// PostgreSQL orders NaN above every other value and equal to itself.
		switch xn, yn := math.IsNaN(x), math.IsNaN(y); {
		case xn && yn:
			return 0
		case xn:
			return 1
		case yn:
			return -1
		}
		return cmpOrdered(x, y)
	case *apd.Decimal:
		return x.Cmp(b.(*apd.Decimal))
	case string:
		return strings.Compare(x, b.(string))
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case uuidValue:
		y := b.(uuidValue)
		return bytes.Compare(x[:], y[:])
	case jsonText:
		return strings.Compare(string(x), string(b.(jsonText)))
	case intervalValue:
		return compareIntervals(x, b.(intervalValue))
	case timeOfDay:
		return cmpOrdered(int64(x), int64(b.(timeOfDay)))
	case time.Time:
		return x.Compare(b.(time.Time))
	case []any:
		// Element by element, NULL above every value, then by length.
		y := b.([]any)
		for i := range min(len(x), len(y)) {
			switch {
			case x[i] == nil && y[i] == nil:
				continue
			case x[i] == nil:
				return 1
			case y[i] == nil:
				return -1
			}
			if c := compareValues(x[i], y[i]); c != 0 {
				return c
			}
		}
		return cmpOrdered(int64(len(x)), int64(len(y)))
	}
	panic("query: compareValues of an unexpected value")
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// regName is the name an OID alias type prints for oid, where it knows
// it without the catalog (types, namespaces); a table's regclass prints
// its OID (a cast to text looks the name up: regclassText).
func regName(t Type, oid int64) (string, bool) {
	switch t.OID {
	case TypeRegtype.OID:
		if rt, ok := typesByOID[uint32(oid)]; ok {
			return rt.Name, true
		}
	case TypeRegnamespace.OID:
		switch oid {
		case oidPgCatalog:
			return "pg_catalog", true
		case oidPublic:
			return "public", true
		case oidInformationSchema:
			return "information_schema", true
		}
	case TypeRegproc.OID:
		if oid == 0 {
			return "-", true
		}
	}
	return "", false
}
