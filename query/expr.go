package query

import (
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// expr is an analysed scalar expression: typed, its names resolved to
// positions in the row it is evaluated on.
type expr interface {
	eval(env *env, row []any) (any, error)
	typ() Type
}

// env is what an evaluation may read besides the row: the bound
// parameters and the statement's time.
type env struct {
	params []any
	now    time.Time
	// aggs are the current group's aggregate results (aggRef reads them).
	aggs []any
	// rowID makes a hidden row key (Engine.rowID).
	rowID func() int64
	// outer are the enclosing queries' current rows (outerRef), and run
	// the execution a subquery runs in.
	outer [][]any
	run   *run
	// session is the statement's session (the catalog tables read it).
	session *Session
}

type constExpr struct {
	v any
	t Type
}

func (e *constExpr) eval(*env, []any) (any, error) { return e.v, nil }
func (e *constExpr) typ() Type                     { return e.t }

type paramExpr struct {
	i int
	a *analyzer // its type is a.params[i], known once analysis ends
}

func (e *paramExpr) eval(env *env, _ []any) (any, error) { return env.params[e.i], nil }
func (e *paramExpr) typ() Type                           { return e.a.params[e.i] }

type colExpr struct {
	i int
	t Type
}

func (e *colExpr) eval(_ *env, row []any) (any, error) { return row[e.i], nil }
func (e *colExpr) typ() Type                           { return e.t }

// aggRef is an aggregate's result in the group being output.
type aggRef struct {
	i int
	t Type
}

func (e *aggRef) eval(env *env, _ []any) (any, error) { return env.aggs[e.i], nil }
func (e *aggRef) typ() Type                           { return e.t }

// funcExpr applies fn to its arguments' values; strict functions are
// NULL when an argument is.
type funcExpr struct {
	args   []expr
	t      Type
	strict bool
	// eq marks an equality comparison (pushed down into scans).
	eq bool
	// immutable: the result depends on the arguments alone (no clock,
	// session or catalog), so it may be computed once at analysis (fold).
	immutable bool
	fn        func(env *env, args []any) (any, error)
}

// eval evaluates every argument, then (a strict function, if one is
// NULL, being NULL) applies fn: an argument's error counts even when
// another is NULL, as in PostgreSQL.
func (e *funcExpr) eval(env *env, row []any) (any, error) {
	vals := make([]any, len(e.args))
	null := false
	for i, a := range e.args {
		v, err := a.eval(env, row)
		if err != nil {
			return nil, err
		}
		null = null || v == nil
		vals[i] = v
	}
	if null && e.strict {
		return nil, nil
	}
	return e.fn(env, vals)
}

// coalesceExpr is COALESCE: its arguments in order until one is not NULL
// (the rest are not evaluated).
type coalesceExpr struct {
	args []expr
	t    Type
}

func (e *coalesceExpr) eval(env *env, row []any) (any, error) {
	for _, a := range e.args {
		v, err := a.eval(env, row)
		if err != nil || v != nil {
			return v, err
		}
	}
	return nil, nil
}
func (e *coalesceExpr) typ() Type { return e.t }
func (e *funcExpr) typ() Type     { return e.t }

// andExpr and orExpr follow SQL's three-valued logic.
type andExpr struct{ l, r expr }

func (e *andExpr) eval(env *env, row []any) (any, error) {
	l, err := e.l.eval(env, row)
	if err != nil || l == false {
		return l, err
	}
	r, err := e.r.eval(env, row)
	if err != nil || r == false {
		return r, err
	}
	if l == nil || r == nil {
		return nil, nil
	}
	return true, nil
}
func (e *andExpr) typ() Type { return TypeBool }

type orExpr struct{ l, r expr }

func (e *orExpr) eval(env *env, row []any) (any, error) {
	l, err := e.l.eval(env, row)
	if err != nil || l == true {
		return l, err
	}
	r, err := e.r.eval(env, row)
	if err != nil || r == true {
		return r, err
	}
	if l == nil || r == nil {
		return nil, nil
	}
	return false, nil
}
func (e *orExpr) typ() Type { return TypeBool }

// caseExpr is CASE [operand] WHEN ... THEN ... [ELSE ...] END.
type caseExpr struct {
	operand expr // nil: each when is a condition
	whens   []expr
	thens   []expr
	els     expr // nil: NULL
	t       Type
}

func (e *caseExpr) eval(env *env, row []any) (any, error) {
	var op any
	if e.operand != nil {
		var err error
		if op, err = e.operand.eval(env, row); err != nil {
			return nil, err
		}
	}
	for i, w := range e.whens {
		v, err := w.eval(env, row)
		if err != nil {
			return nil, err
		}
		hit := v == true
		if e.operand != nil {
			hit = op != nil && v != nil && compareValues(op, v) == 0
		}
		if hit {
			return e.thens[i].eval(env, row)
		}
	}
	if e.els == nil {
		return nil, nil
	}
	return e.els.eval(env, row)
}
func (e *caseExpr) typ() Type { return e.t }

// inExpr is x [NOT] IN (list): NULL when x is, or when no item matches
// and one is NULL.
type inExpr struct {
	x    expr
	list []expr
	not  bool
}

func (e *inExpr) eval(env *env, row []any) (any, error) {
	x, err := e.x.eval(env, row)
	if err != nil || x == nil {
		return nil, err
	}
	sawNull := false
	for _, item := range e.list {
		v, err := item.eval(env, row)
		if err != nil {
			return nil, err
		}
		if v == nil {
			sawNull = true
			continue
		}
		if compareValues(x, v) == 0 {
			return !e.not, nil
		}
	}
	if sawNull {
		return nil, nil
	}
	return e.not, nil
}
func (e *inExpr) typ() Type { return TypeBool }

// compare returns the comparison op's function.
func compare(op string) func(c int) bool {
	switch op {
	case "=":
		return func(c int) bool { return c == 0 }
	case "<>", "!=":
		return func(c int) bool { return c != 0 }
	case "<":
		return func(c int) bool { return c < 0 }
	case "<=":
		return func(c int) bool { return c <= 0 }
	case ">":
		return func(c int) bool { return c > 0 }
	case ">=":
		return func(c int) bool { return c >= 0 }
	}
	return nil
}

// arith applies an arithmetic operator to two values of t's family.
func arith(op string, t Type, a, b any) (any, error) {
	switch t.family() {
	case famInt:
		x, y := a.(int64), b.(int64)
		var r int64
		switch op {
		case "+":
			r = x + y
			if (r > x) != (y > 0) {
				return nil, errOutOfRange(t)
			}
		case "-":
			r = x - y
			if (r < x) != (y > 0) {
				return nil, errOutOfRange(t)
			}
		case "*":
			if x != 0 && y != 0 {
				r = x * y
				if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
					return nil, errOutOfRange(t)
				}
			}
		case "/":
			if y == 0 {
				return nil, errorf("22012", "division by zero")
			}
			if x == math.MinInt64 && y == -1 {
				return nil, errOutOfRange(t)
			}
			r = x / y
		case "%":
			if y == 0 {
				return nil, errorf("22012", "division by zero")
			}
			if y == -1 {
				return int64(0), nil
			}
			r = x % y
		default:
			return nil, errUndefinedOperator(op, t, t)
		}
		if lo, hi := intRange(t); r < lo || r > hi {
			return nil, errOutOfRange(t)
		}
		return r, nil
	case famFloat:
		x, y := a.(float64), b.(float64)
		var r float64
		switch op {
		case "+":
			r = x + y
		case "-":
			r = x - y
		case "*":
			r = x * y
		case "/":
			if y == 0 {
				return nil, errorf("22012", "division by zero")
			}
			r = x / y
		case "%":
			return nil, errUndefinedOperator(op, t, t)
		default:
			return nil, errUndefinedOperator(op, t, t)
		}
		if math.IsInf(r, 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			return nil, errorf("22003", "value out of range: overflow")
		}
		return r, nil
	case famNumeric:
		x, y := a.(*apd.Decimal), b.(*apd.Decimal)
		r := new(apd.Decimal)
		var err error
		switch op {
		case "+":
			_, err = numericCtx.Add(r, x, y)
		case "-":
			_, err = numericCtx.Sub(r, x, y)
		case "*":
			_, err = numericCtx.Mul(r, x, y)
		case "/":
			if y.IsZero() {
				return nil, errorf("22012", "division by zero")
			}
			_, err = numericCtx.Quo(r, x, y)
			if err == nil {
				r = divScale(r, x, y)
			}
		case "%":
			if y.IsZero() {
				return nil, errorf("22012", "division by zero")
			}
			_, err = numericCtx.Rem(r, x, y)
		default:
			return nil, errUndefinedOperator(op, t, t)
		}
		if err != nil {
			return nil, errorf("22003", "value overflows numeric format")
		}
		if r.IsZero() {
			r.Negative = false // numeric has no negative zero
		}
		return r, nil
	}
	return nil, errUndefinedOperator(op, t, t)
}

// numericCtx is the precision numeric arithmetic runs at.
var numericCtx = apd.BaseContext.WithPrecision(1000)

// divScale rounds a numeric quotient x/y to the scale PostgreSQL's
// division gives it (select_div_scale in numeric.c): 16 significant
// digits counted in base-10000 digits, and no fewer decimals than either
// operand shows.
func divScale(q, x, y *apd.Decimal) *apd.Decimal {
	w1, d1 := nbaseLead(x)
	w2, d2 := nbaseLead(y)
	qweight := w1 - w2
	if d1 <= d2 {
		qweight--
	}
	scale := 16 - qweight*4
	scale = max(scale, int64(max(-x.Exponent, 0)), int64(max(-y.Exponent, 0)), 0)
	scale = min(scale, 1000)
	r := new(apd.Decimal)
	_, _ = numericCtx.Quantize(r, q, int32(-scale))
	return r
}

// nbaseLead is a non-zero value's weight and first digit in base 10000,
// as numeric.c stores it: |v| = first * 10000^weight + less.
func nbaseLead(v *apd.Decimal) (weight int64, first int64) {
	if v.IsZero() {
		return 0, 0
	}
	intDigits := v.NumDigits() + int64(v.Exponent) // digits before the point (<= 0: a fraction)
	weight = (intDigits - 1) / 4
	if intDigits-1 < 0 && (intDigits-1)%4 != 0 {
		weight-- // floor division
	}
	// first = floor(|v| / 10000^weight)
	var abs, shifted, floor apd.Decimal
	abs.Abs(v)
	shifted.Set(&abs)
	shifted.Exponent -= int32(weight * 4)
	_, _ = numericCtx.Floor(&floor, &shifted)
	first, _ = floor.Int64()
	return weight, first
}

func errUndefinedOperator(op string, l, r Type) *Error {
	e := errorf("42883", "operator does not exist: %s %s %s", l.shortName(), op, r.shortName())
	e.Hint = "No operator matches the given name and argument types. You might need to add explicit type casts."
	return e
}

// likeMatch reports whether s matches a LIKE pattern (% and _, with
// backslash escaping), case-insensitively for ILIKE.
func likeMatch(s, pattern string, fold bool) bool {
	if fold {
		s, pattern = strings.ToLower(s), strings.ToLower(pattern)
	}
	var match func(s, p []rune) bool
	match = func(s, p []rune) bool {
		for len(p) > 0 {
			switch p[0] {
			case '%':
				for len(p) > 0 && p[0] == '%' {
					p = p[1:]
				}
				if len(p) == 0 {
					return true
				}
				for i := 0; i <= len(s); i++ {
					if match(s[i:], p) {
						return true
					}
				}
				return false
			case '_':
				if len(s) == 0 {
					return false
				}
				s, p = s[1:], p[1:]
			case '\\':
				if len(p) > 1 {
					p = p[1:]
				}
				fallthrough
			default:
				if len(s) == 0 || s[0] != p[0] {
					return false
				}
				s, p = s[1:], p[1:]
			}
		}
		return len(s) == 0
	}
	return match([]rune(s), []rune(pattern))
}

// regexCache keeps compiled patterns (a statement applies one pattern to
// every row), up to maxCachedRegexes of them.
var regexCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

const maxCachedRegexes = 256

// compileRegex compiles a POSIX-style pattern (PostgreSQL's ~ operators)
// with Go's RE2, which agrees on the common syntax.
func compileRegex(pattern string, fold bool) (*regexp.Regexp, error) {
	key := pattern
	if fold {
		key = "(?i)" + pattern
	}
	regexCache.Lock()
	defer regexCache.Unlock()
	if re, ok := regexCache.m[key]; ok {
		return re, nil
	}
	re, err := regexp.Compile(key)
	if err != nil {
		return nil, errorf("2201B", "invalid regular expression: %v", err)
	}
	if len(regexCache.m) < maxCachedRegexes {
		regexCache.m[key] = re
	}
	return re, nil
}
