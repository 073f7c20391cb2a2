package query

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// json and jsonb. A value is its text (jsonText): json keeps the text it
// was given (checked), jsonb its canonical form, as PostgreSQL prints it:
// object keys sorted (shorter first, then bytewise) and unique (the last
// wins), ", " and ": " between items, numbers as numerics print. The
// operators ->, ->> (a field or an element), @> and <@ (containment) and
// ? (a key) read the parsed value.

// jsonText is a json or jsonb value.
type jsonText string

var (
	TypeJSON  = Type{OID: 114, Name: "json", Size: -1, Mod: -1}
	TypeJSONB = Type{OID: 3802, Name: "jsonb", Size: -1, Mod: -1}
)

func init() {
	typeNames["json"], typeNames["jsonb"] = TypeJSON, TypeJSONB
	typesByOID[TypeJSON.OID], typesByOID[TypeJSONB.OID] = TypeJSON, TypeJSONB
}

// parseJSON reads s as a value of t (json or jsonb).
func parseJSON(t Type, s string) (jsonText, error) {
	v, err := decodeJSON(s)
	if err != nil {
		e := errorf("22P02", "invalid input syntax for type json") // jsonb's too, as PostgreSQL says
		e.Detail = "Token is invalid or the input is not one JSON value."
		return "", e
	}
	if t.OID == TypeJSON.OID {
		return jsonText(s), nil
	}
	return jsonText(canonicalJSON(v)), nil
}

// decodeJSON parses one JSON value, numbers kept as their text.
func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, errorf("22P02", "trailing data")
	}
	return v, nil
}

// canonicalJSON writes v as jsonb prints it.
func canonicalJSON(v any) string {
	var b strings.Builder
	writeJSON(&b, v)
	return b.String()
}

func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		if d, _, err := apd.NewFromString(string(x)); err == nil {
			b.WriteString(d.Text('f'))
		} else {
			b.WriteString(string(x))
		}
	case string:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) < len(keys[j])
			}
			return keys[i] < keys[j]
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, k)
			b.WriteString(": ")
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	}
}

// jsonOf parses a stored value (it was checked when it came in).
func jsonOf(v any) any {
	x, err := decodeJSON(string(v.(jsonText)))
	if err != nil {
		return nil
	}
	return x
}

// jsonPart is json's -> (and ->>, text): the field or element's own
// text, as it was given (json keeps it).
func jsonPart(doc jsonText, key any, asText bool) any {
	var raw json.RawMessage
	switch k := key.(type) {
	case string:
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(doc), &obj) != nil {
			return nil
		}
		var ok bool
		if raw, ok = obj[k]; !ok {
			return nil
		}
	case int64:
		var arr []json.RawMessage
		if json.Unmarshal([]byte(doc), &arr) != nil {
			return nil
		}
		if k < 0 {
			k += int64(len(arr))
		}
		if k < 0 || k >= int64(len(arr)) {
			return nil
		}
		raw = arr[k]
	}
	text := strings.TrimSpace(string(raw))
	if !asText {
		return jsonText(text)
	}
	v, err := decodeJSON(text)
	switch x := v.(type) {
	case nil:
		if err == nil {
			return nil // a JSON null is SQL's NULL through ->>
		}
		return text
	case string:
		return x
	}
	return text
}

// jsonContains is jsonb's @>: every part of b is in a (an array contains
// an element of b's anywhere; a scalar array contains that scalar).
func jsonContains(a, b any) bool {
	switch y := b.(type) {
	case map[string]any:
		x, ok := a.(map[string]any)
		if !ok {
			return false
		}
		for k, bv := range y {
			av, ok := x[k]
			if !ok || !jsonContains(av, bv) {
				return false
			}
		}
		return true
	case []any:
		x, ok := a.([]any)
		if !ok {
			return false
		}
		for _, be := range y {
			found := false
			for _, ae := range x {
				if jsonContains(ae, be) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	if x, ok := a.([]any); ok {
		for _, ae := range x {
			if jsonScalarEqual(ae, b) {
				return true
			}
		}
		return false
	}
	return jsonScalarEqual(a, b)
}

func jsonScalarEqual(a, b any) bool {
	if x, ok := a.(json.Number); ok {
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		dx, _, err1 := apd.NewFromString(string(x))
		dy, _, err2 := apd.NewFromString(string(y))
		return err1 == nil && err2 == nil && dx.Cmp(dy) == 0
	}
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}

// jsonOperator analyses ->, ->>, @>, <@ and ? (false: op is not one).
func (a *analyzer) jsonOperator(e *pg.A_Expr, sc *scope, op string) (expr, bool, error) {
	switch op {
	case "->", "->>", "@>", "<@", "?":
	default:
		return nil, false, nil
	}
	l, r, err := a.sides(e, sc)
	if err != nil {
		return nil, true, err
	}
	if c, ok := l.(*constExpr); ok && c.t.family() == famUnknown && op != "->" && op != "->>" {
		if l, err = a.coerce(l, TypeJSONB); err != nil {
			return nil, true, err
		}
	}
	lt := l.typ()
	if lt.OID != TypeJSON.OID && lt.OID != TypeJSONB.OID {
		return nil, true, withPosition(errUndefinedOperator(op, lt, r.typ()), e.Location)
	}
	switch op {
	case "->", "->>":
		if r.typ().family() == famUnknown {
			r, err = a.coerce(r, TypeText)
		}
		if err != nil {
			return nil, true, err
		}
		rf := r.typ().family()
		if rf != famString && rf != famInt {
			return nil, true, withPosition(errUndefinedOperator(op, lt, r.typ()), e.Location)
		}
		out := lt
		if op == "->>" {
			out = TypeText
		}
		return &funcExpr{args: []expr{l, r}, t: out, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
			if lt.OID == TypeJSON.OID {
				return jsonPart(v[0].(jsonText), v[1], op == "->>"), nil
			}
			var got any
			switch doc := jsonOf(v[0]).(type) {
			case map[string]any:
				k, ok := v[1].(string)
				if !ok {
					return nil, nil
				}
				x, ok := doc[k]
				if !ok {
					return nil, nil
				}
				got = x
			case []any:
				i, ok := v[1].(int64)
				if !ok {
					return nil, nil
				}
				if i < 0 {
					i += int64(len(doc))
				}
				if i < 0 || i >= int64(len(doc)) {
					return nil, nil
				}
				got = doc[i]
			default:
				// jsonb keeps a scalar as a one-element array: element 0
				// (or -1) is the scalar, as PostgreSQL answers.
				i, ok := v[1].(int64)
				if !ok || lt.OID != TypeJSONB.OID || (i != 0 && i != -1) {
					return nil, nil
				}
				got = doc
			}
			if op == "->>" {
				switch x := got.(type) {
				case nil:
					return nil, nil
				case string:
					return x, nil
				}
				return canonicalJSON(got), nil
			}
			return jsonText(canonicalJSON(got)), nil
		}}, true, nil
	case "?":
		if r, err = a.coerce(r, TypeText); err != nil {
			return nil, true, err
		}
		return &funcExpr{args: []expr{l, r}, t: TypeBool, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
			switch doc := jsonOf(v[0]).(type) {
			case map[string]any:
				_, ok := doc[v[1].(string)]
				return ok, nil
			case []any:
				for _, e := range doc {
					if s, ok := e.(string); ok && s == v[1].(string) {
						return true, nil
					}
				}
				return false, nil
			case string:
				return doc == v[1].(string), nil
			}
			return false, nil
		}}, true, nil
	}
	if r, err = a.coerce(r, TypeJSONB); err != nil {
		return nil, true, err
	}
	if lt.OID != TypeJSONB.OID || r.typ().OID != TypeJSONB.OID {
		return nil, true, withPosition(errUndefinedOperator(op, lt, r.typ()), e.Location)
	}
	return &funcExpr{args: []expr{l, r}, t: TypeBool, strict: true, immutable: true, fn: func(_ *env, v []any) (any, error) {
		if op == "<@" {
			return jsonContains(jsonOf(v[1]), jsonOf(v[0])), nil
		}
		return jsonContains(jsonOf(v[0]), jsonOf(v[1])), nil
	}}, true, nil
}
