package query

import (
	"encoding/binary"

	"github.com/cockroachdb/apd/v3"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// aggregate is one aggregate call of a grouped query.
type aggregate struct {
	name     string
	arg      expr // nil: count(*)
	sep      expr // string_agg's separator
	distinct bool
	t        Type // the result's type
}

var aggregateFuncs = map[string]bool{"count": true, "sum": true, "avg": true, "min": true, "max": true, "bool_and": true, "bool_or": true, "every": true, "string_agg": true}

// aggregateCall analyses an aggregate's argument over the input scope and
// returns a reference to its result in the group's output.
func (a *analyzer) aggregateCall(name string, f *pg.FuncCall, sc *scope) (expr, error) {
	if a.agg == nil {
		return nil, withPosition(errorf("42803", "aggregate functions are not allowed here"), f.Location)
	}
	if a.agg.inAgg {
		return nil, withPosition(errorf("42803", "aggregate function calls cannot be nested"), f.Location)
	}
	if f.AggFilter != nil || len(f.AggOrder) > 0 || f.AggWithinGroup {
		return nil, withPosition(errorf("0A000", "aggregate FILTER and ORDER BY are not supported"), f.Location)
	}
	ag := &aggregate{name: name, distinct: f.AggDistinct}
	switch {
	case f.AggStar:
		if name != "count" {
			return nil, withPosition(errorf("42809", "%s(*) specified, but %s is not an aggregate function", name, name), f.Location)
		}
		ag.t = TypeInt8
	case name == "string_agg":
		if len(f.Args) != 2 {
			return nil, withPosition(errorf("42883", "function string_agg with %d arguments does not exist", len(f.Args)), f.Location)
		}
		a.agg.inAgg = true
		var args []expr
		var err error
		for _, n := range f.Args {
			x, xerr := a.expr(n, sc)
			if xerr != nil {
				err = xerr
				break
			}
			args = append(args, x)
		}
		a.agg.inAgg = false
		if err != nil {
			return nil, err
		}
		if args, err = a.textArgs(args); err != nil {
			return nil, err
		}
		// The separator is one expression evaluated per row, as in
		// PostgreSQL; the argument carries both.
		ag.arg, ag.sep, ag.t = args[0], args[1], TypeText
	case len(f.Args) != 1:
		return nil, withPosition(errorf("42883", "function %s with %d arguments does not exist", name, len(f.Args)), f.Location)
	default:
		a.agg.inAgg = true
		x, err := a.expr(f.Args[0], sc)
		a.agg.inAgg = false
		if err != nil {
			return nil, err
		}
		if x, err = a.coerce(x, TypeText); err != nil {
			return nil, err
		}
		ag.arg = x
		t := x.typ()
		switch name {
		case "count":
			ag.t = TypeInt8
		case "sum":
			switch {
			case t.OID == TypeInt2.OID || t.OID == TypeInt4.OID:
				ag.t = TypeInt8
			case t.OID == TypeInt8.OID || t.family() == famNumeric:
				ag.t = TypeNumeric
			case t.family() == famFloat:
				ag.t = t
			}
		case "avg":
			switch t.family() {
			case famInt, famNumeric:
				ag.t = TypeNumeric
			case famFloat:
				ag.t = TypeFloat8
			}
		case "min", "max":
			switch t.family() {
			case famUnknown:
			case famString:
				ag.t = TypeText // min(text) is the only string min: varchar and char become text
			default:
				ag.t = t
			}
		case "bool_and", "bool_or", "every":
			if t.OID == TypeBool.OID {
				ag.t = TypeBool
			}
		}
		if ag.t.OID == 0 {
			e := errorf("42883", "function %s(%s) does not exist", name, t.shortName())
			e.Hint = "No function matches the given name and argument types. You might need to add explicit type casts."
			return nil, withPosition(e, f.Location)
		}
	}
	a.agg.aggs = append(a.agg.aggs, ag)
	return &aggRef{i: len(a.agg.aggs) - 1, t: ag.t}, nil
}

// accumulator computes one aggregate over a group's rows.
type accumulator struct {
	ag    *aggregate
	count int64
	sum   any // int64, float64 or *apd.Decimal; the extreme for min/max; the bool for bool_and/or
	seen  [][]byte
	set   bool
	// pendingSep is string_agg's separator for the value being added.
	pendingSep string
}

func (acc *accumulator) add(v any) error {
	if acc.ag.arg != nil && v == nil {
		return nil // aggregates skip NULLs (count(*) counts rows)
	}
	if acc.ag.distinct {
		k := appendDistinctKey(nil, v)
		for _, s := range acc.seen {
			if string(s) == string(k) {
				return nil
			}
		}
		acc.seen = append(acc.seen, k)
	}
	acc.count++
	switch acc.ag.name {
	case "count":
	case "sum", "avg":
		if !acc.set {
			acc.sum, acc.set = v, true
			switch acc.ag.t.family() {
			case famNumeric:
				acc.sum = toDecimal(v)
			case famFloat:
				if f := v.(float64); f == 0 {
					acc.sum = 0.0 // from +0, as float8_accum: a lone -0 sums to 0
				}
			}
			return nil
		}
		switch acc.ag.t.family() {
		case famInt:
			r, err := arith("+", TypeInt8, acc.sum, v)
			if err != nil {
				return err
			}
			acc.sum = r
		case famFloat:
			acc.sum = acc.sum.(float64) + v.(float64)
		default:
			r, err := arith("+", TypeNumeric, acc.sum, toDecimal(v))
			if err != nil {
				return err
			}
			acc.sum = r
		}
	case "min", "max":
		if !acc.set {
			acc.sum, acc.set = v, true
			return nil
		}
		c := compareValues(v, acc.sum)
		if (acc.ag.name == "min" && c < 0) || (acc.ag.name == "max" && c > 0) {
			acc.sum = v
		}
	case "string_agg":
		// add is given the value and, through addSep, the separator.
		if !acc.set {
			acc.sum, acc.set = v.(string), true
			return nil
		}
		acc.sum = acc.sum.(string) + acc.pendingSep + v.(string)
	case "bool_and", "every", "bool_or":
		b := v.(bool)
		if !acc.set {
			acc.sum, acc.set = b, true
			return nil
		}
		if acc.ag.name == "bool_or" {
			acc.sum = acc.sum.(bool) || b
		} else {
			acc.sum = acc.sum.(bool) && b
		}
	}
	return nil
}

func (acc *accumulator) result() (any, error) {
	switch acc.ag.name {
	case "count":
		return acc.count, nil
	case "avg":
		if !acc.set {
			return nil, nil
		}
		if acc.ag.t.family() == famFloat {
			return acc.sum.(float64) / float64(acc.count), nil
		}
		return arith("/", TypeNumeric, acc.sum, apd.New(acc.count, 0))
	}
	if !acc.set {
		return nil, nil
	}
	return acc.sum, nil
}

func toDecimal(v any) *apd.Decimal {
	switch x := v.(type) {
	case int64:
		return apd.New(x, 0)
	case *apd.Decimal:
		return x
	}
	panic("query: toDecimal of an unexpected value")
}

// appendDistinctKey is a value's form for DISTINCT and GROUP BY: equal
// values, and only they, have equal forms (NULL included).
func appendDistinctKey(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, 0)
	case *apd.Decimal:
		var r apd.Decimal
		r.Reduce(x)
		return appendEscaped(append(dst, 1), []byte(r.Text('E')))
	case jsonText:
		return appendEscaped(append(dst, 3), []byte(x))
	case intervalValue:
		return appendIntervalKey(append(dst, 4), x)
	case []any:
		dst = binary.AppendUvarint(append(dst, 2), uint64(len(x)))
		for _, e := range x {
			dst = appendDistinctKey(dst, e)
		}
		return dst
	}
	return appendKey(append(dst, 1), v)
}
