package query

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Arrays, as far as clients need them today: built by ARRAY[...] and
// ARRAY(subquery), compared with = ANY (...), printed, and passed to
// array_to_string. A value is []any of the element type's values (nil
// elements are NULL); one dimension only. Array columns in tables are not
// supported yet.

// arrayTypes maps an element type's OID to its array type's.
var arrayTypes = map[uint32]uint32{
	TypeUUID.OID: 2951, TypeJSON.OID: 199, TypeJSONB.OID: 3807, TypeInterval.OID: 1187, TypeTime.OID: 1183, TypeBool.OID: 1000, TypeBytea.OID: 1001, TypeChar.OID: 1002, TypeName.OID: 1003, TypeInt2.OID: 1005,
	TypeInt4.OID: 1007, TypeText.OID: 1009, TypeBpchar.OID: 1014, TypeVarchar.OID: 1015, TypeInt8.OID: 1016,
	TypeFloat4.OID: 1021, TypeFloat8.OID: 1022, TypeOid.OID: 1028, TypeTimestamp.OID: 1115, TypeDate.OID: 1182,
	TypeTimestamptz.OID: 1185, TypeNumeric.OID: 1231,
}

// registerArrayTypes adds the array types to typesByOID (types.go's init
// calls it once the element types are there).
func registerArrayTypes() {
	for elem := range arrayTypes {
		t, _ := arrayOf(typesByOID[elem])
		typesByOID[t.OID] = t
	}
}

// arrayOf is the array type of elements of t.
func arrayOf(t Type) (Type, error) {
	arr, ok := arrayTypes[t.OID]
	if !ok {
		return Type{}, errorf("0A000", "arrays of %s are not supported", t.shortName())
	}
	// Built here, not read from typesByOID: the catalog tables' columns
	// are made before init fills it.
	return Type{OID: arr, Name: t.Name + "[]", Size: -1, Mod: -1, Elem: t.OID}, nil
}

// elemType is an array type's element type.
func (t Type) elemType() Type { return typesByOID[t.Elem] }

// formatArray is an array's text form: {1,2,NULL,"a b"}.
func formatArray(t Type, v []any) []byte {
	elem := t.elemType()
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		if x == nil {
			b.WriteString("NULL")
			continue
		}
		s := string(formatText(elem, x))
		if s == "" || strings.EqualFold(s, "null") || strings.ContainsAny(s, "{},\"\\ \t\n") {
			s = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
		}
		b.WriteString(s)
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// arrayExpr is ARRAY[e1, e2, ...].
func (a *analyzer) arrayExpr(ae *pg.A_ArrayExpr, sc *scope) (expr, error) {
	xs, t, err := a.common(ae.Elements, sc, "ARRAY")
	if err != nil {
		return nil, err
	}
	at, err := arrayOf(t)
	if err != nil {
		return nil, withPosition(err.(*Error), ae.Location)
	}
	return &funcExpr{args: xs, t: at, fn: func(_ *env, v []any) (any, error) {
		return append([]any{}, v...), nil
	}}, nil
}

// anyExpr is x op ANY (array) (or ALL): over the array's elements, true
// if one (every one) compares true; NULL rather than false when an
// unknown comparison could decide it.
func (a *analyzer) anyExpr(e *pg.A_Expr, sc *scope, all bool) (expr, error) {
	op := opName(e.Name)
	cmp := compare(op)
	if cmp == nil {
		return nil, withPosition(errorf("0A000", "operator %s with ANY/ALL is not supported", op), e.Location)
	}
	x, err := a.expr(e.Lexpr, sc)
	if err != nil {
		return nil, err
	}
	arr, err := a.expr(e.Rexpr, sc)
	if err != nil {
		return nil, err
	}
	if arr.typ().Elem == 0 {
		return nil, withPosition(errorf("42809", "op ANY/ALL (array) requires array on right side"), e.Location)
	}
	elem := arr.typ().elemType()
	if x, _, _, err = a.unify(x, &constExpr{t: elem}, op); err != nil {
		return nil, err
	}
	if x.typ().family() != elem.family() {
		return nil, withPosition(errUndefinedOperator(op, x.typ(), elem), e.Location)
	}
	return &funcExpr{args: []expr{x, arr}, t: TypeBool, strict: true, fn: func(_ *env, v []any) (any, error) {
		sawNull := false
		for _, y := range v[1].([]any) {
			if y == nil {
				sawNull = true
				continue
			}
			if hit := cmp(compareValues(v[0], y)); hit != all {
				return !all, nil
			}
		}
		if sawNull {
			return nil, nil
		}
		return all, nil
	}}, nil
}

func init() {
	scalarFuncs["array_to_string"] = func(a *analyzer, args []expr) (expr, error) {
		if len(args) < 2 || len(args) > 3 {
			return nil, nil
		}
		if args[0].typ().Elem == 0 {
			return nil, nil
		}
		elem := args[0].typ().elemType()
		rest, err := a.textArgs(args[1:])
		if err != nil {
			return nil, err
		}
		return &funcExpr{args: append(args[:1:1], rest...), t: TypeText, fn: func(_ *env, v []any) (any, error) {
			if v[0] == nil || v[1] == nil {
				return nil, nil
			}
			var parts []string
			for _, x := range v[0].([]any) {
				switch {
				case x != nil:
					parts = append(parts, textOf(elem, x))
				case len(v) == 3 && v[2] != nil:
					parts = append(parts, v[2].(string))
				}
			}
			return strings.Join(parts, v[1].(string)), nil
		}}, nil
	}
}

// parseArray reads an array's text form: {1,2,NULL,"a b"} (one
// dimension).
func parseArray(t Type, s string) ([]any, error) {
	bad := func() error { return errorf("22P02", "malformed array literal: %q", s) }
	in := strings.TrimSpace(s)
	if len(in) < 2 || in[0] != '{' || in[len(in)-1] != '}' {
		return nil, bad()
	}
	in = in[1 : len(in)-1]
	out := []any{}
	if strings.TrimSpace(in) == "" {
		return out, nil
	}
	elem := t.elemType()
	for i := 0; i <= len(in); {
		for i < len(in) && in[i] == ' ' {
			i++
		}
		var item strings.Builder
		quoted := i < len(in) && in[i] == '"'
		if quoted {
			i++
			for ; i < len(in) && in[i] != '"'; i++ {
				if in[i] == '\\' && i+1 < len(in) {
					i++
				}
				item.WriteByte(in[i])
			}
			if i >= len(in) {
				return nil, bad()
			}
			i++ // the closing quote
			for i < len(in) && in[i] == ' ' {
				i++
			}
		} else {
			for ; i < len(in) && in[i] != ','; i++ {
				if in[i] == '{' || in[i] == '"' {
					return nil, bad()
				}
				item.WriteByte(in[i])
			}
		}
		if i < len(in) && in[i] != ',' {
			return nil, bad()
		}
		i++ // the comma (or the end)
		text := item.String()
		if !quoted {
			text = strings.TrimSpace(text)
			if strings.EqualFold(text, "null") {
				out = append(out, nil)
				continue
			}
		}
		v, err := parseText(elem, text)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// subscript is arr[i] (1-based; NULL outside the array).
func (a *analyzer) subscript(ind *pg.A_Indirection, sc *scope) (expr, error) {
	x, err := a.expr(ind.Arg, sc)
	if err != nil {
		return nil, err
	}
	for _, n := range ind.Indirection {
		idx := n.GetAIndices()
		if idx == nil || idx.IsSlice {
			return nil, errorf("0A000", "this kind of indirection (%s) is not supported", nodeName(n))
		}
		if x.typ().Elem == 0 {
			return nil, errorf("42804", "cannot subscript type %s because it does not support subscripting", x.typ().shortName())
		}
		i, err := a.expr(idx.Uidx, sc)
		if err != nil {
			return nil, err
		}
		if i, err = a.coerce(i, TypeInt4); err != nil {
			return nil, err
		}
		if i.typ().family() != famInt {
			return nil, errorf("42804", "array subscript must have type integer")
		}
		x = strict([]expr{x, i}, x.typ().elemType(), func(v []any) (any, error) {
			arr, k := v[0].([]any), v[1].(int64)
			if k < 1 || k > int64(len(arr)) {
				return nil, nil
			}
			return arr[k-1], nil
		})
	}
	return x, nil
}

func init() {
	bound := func(upper bool) scalarFunc {
		return func(a *analyzer, args []expr) (expr, error) {
			if len(args) != 2 || args[0].typ().Elem == 0 {
				return nil, nil
			}
			return strict(args, TypeInt4, func(v []any) (any, error) {
				n := len(v[0].([]any))
				if v[1].(int64) != 1 || n == 0 {
					return nil, nil
				}
				if upper {
					return int64(n), nil
				}
				return int64(1), nil
			}), nil
		}
	}
	scalarFuncs["array_upper"] = bound(true)
	scalarFuncs["array_lower"] = bound(false)
	scalarFuncs["array_length"] = bound(true)
}
