package query

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// scalarFunc is a built-in function: it checks and converts its
// arguments (typed already) and says its result's type.
type scalarFunc func(a *analyzer, args []expr) (expr, error)

// immutable marks x (a funcExpr) as depending on its arguments alone.
func immutable(x expr) expr {
	x.(*funcExpr).immutable = true
	return x
}

// strict returns a function NULL when any argument is.
func strict(args []expr, t Type, fn func(v []any) (any, error)) expr {
	return &funcExpr{args: args, t: t, strict: true, fn: func(_ *env, v []any) (any, error) { return fn(v) }}
}

// textArgs converts every argument to text.
func (a *analyzer) textArgs(args []expr) ([]expr, error) {
	out := make([]expr, len(args))
	for i, x := range args {
		c, err := a.coerce(x, TypeText)
		if err != nil {
			return nil, err
		}
		if c.typ().family() != famString {
			if c, err = a.cast(c, TypeText); err != nil {
				return nil, err
			}
		}
		out[i] = c
	}
	return out, nil
}

func stringFunc(fn func(s string) any, t Type) scalarFunc {
	return func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 1 {
			return nil, nil
		}
		args, err := a.textArgs(args)
		if err != nil {
			return nil, err
		}
		return strict(args, t, func(v []any) (any, error) { return fn(v[0].(string)), nil }), nil
	}
}

var scalarFuncs = map[string]scalarFunc{
	"lower":            stringFunc(func(s string) any { return strings.ToLower(s) }, TypeText),
	"upper":            stringFunc(func(s string) any { return strings.ToUpper(s) }, TypeText),
	"length":           stringFunc(func(s string) any { return int64(utf8.RuneCountInString(s)) }, TypeInt4),
	"char_length":      stringFunc(func(s string) any { return int64(utf8.RuneCountInString(s)) }, TypeInt4),
	"character_length": stringFunc(func(s string) any { return int64(utf8.RuneCountInString(s)) }, TypeInt4),
	"octet_length":     stringFunc(func(s string) any { return int64(len(s)) }, TypeInt4),
	"btrim":            stringFunc(func(s string) any { return strings.Trim(s, " ") }, TypeText),
	"ltrim":            stringFunc(func(s string) any { return strings.TrimLeft(s, " ") }, TypeText),
	"rtrim":            stringFunc(func(s string) any { return strings.TrimRight(s, " ") }, TypeText),
	"md5": stringFunc(func(s string) any {
		return md5Hex(s)
	}, TypeText),
	"concat": func(a *analyzer, args []expr) (expr, error) {
		args, err := a.textArgs(args)
		if err != nil {
			return nil, err
		}
		return &funcExpr{args: args, t: TypeText, fn: func(_ *env, v []any) (any, error) {
			var b strings.Builder
			for _, x := range v {
				if x != nil {
					b.WriteString(x.(string))
				}
			}
			return b.String(), nil
		}}, nil
	},
	"substr":    substring,
	"substring": substring,
	"replace": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 3 {
			return nil, nil
		}
		args, err := a.textArgs(args)
		if err != nil {
			return nil, err
		}
		return strict(args, TypeText, func(v []any) (any, error) {
			return strings.ReplaceAll(v[0].(string), v[1].(string), v[2].(string)), nil
		}), nil
	},
	"abs": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 1 || !numericFamily(args[0].typ()) {
			return nil, nil
		}
		t := args[0].typ()
		return strict(args, t, func(v []any) (any, error) {
			switch x := v[0].(type) {
			case int64:
				if x == math.MinInt64 || (t.OID == TypeInt4.OID && x == math.MinInt32) || (t.OID == TypeInt2.OID && x == math.MinInt16) {
					return nil, errOutOfRange(t)
				}
				if x < 0 {
					return -x, nil
				}
				return x, nil
			case float64:
				return math.Abs(x), nil
			}
			d := new(apd.Decimal)
			d.Abs(v[0].(*apd.Decimal))
			return d, nil
		}), nil
	},
	"version": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &constExpr{v: versionString, t: TypeText}, nil
	},
	"current_database": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &constExpr{v: a.s.database, t: TypeName}, nil
	},
	"current_schema": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &constExpr{v: "public", t: TypeName}, nil
	},
	"pg_backend_pid": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &constExpr{v: int64(a.s.pid), t: TypeInt4}, nil
	},
	"gen_random_uuid": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		// A version 4 UUID from the node's randomness (the simulator's
		// seeded one under the simulator).
		return &funcExpr{t: TypeUUID, fn: func(env *env, _ []any) (any, error) {
			var u uuidValue
			r := env.session.e.rt.Rand()
			binary.BigEndian.PutUint64(u[:8], r.Uint64())
			binary.BigEndian.PutUint64(u[8:], r.Uint64())
			u[6] = u[6]&0x0F | 0x40
			u[8] = u[8]&0x3F | 0x80
			return u, nil
		}}, nil
	},
	"now": func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &funcExpr{t: TypeTimestamptz, fn: func(env *env, _ []any) (any, error) { return env.now, nil }}, nil
	},
}

// versionString is what version() answers: clients parse the first two
// words as PostgreSQL's version, so it leads with the version Orbit's
// wire and catalog follow.
const versionString = "PostgreSQL 15.0 (Orbit) on x86_64-pc-linux-gnu, compiled by Go, 64-bit"

func substring(a *analyzer, args []expr) (expr, error) {
	if len(args) < 2 || len(args) > 3 {
		return nil, nil
	}
	s, err := a.textArgs(args[:1])
	if err != nil {
		return nil, err
	}
	rest := args[1:]
	for i, x := range rest {
		if rest[i], err = a.coerce(x, TypeInt4); err != nil {
			return nil, err
		}
		if rest[i].typ().family() != famInt {
			return nil, nil
		}
	}
	return strict(append(s, rest...), TypeText, func(v []any) (any, error) {
		r := []rune(v[0].(string))
		start := v[1].(int64) // 1-based; may be before the start
		end := int64(len(r)) + 1
		if len(v) == 3 {
			n := v[2].(int64)
			if n < 0 {
				return nil, errorf("22011", "negative substring length not allowed")
			}
			end = start + n
		}
		start = max(start, 1)
		end = min(end, int64(len(r))+1)
		if start >= end {
			return "", nil
		}
		return string(r[start-1 : end-1]), nil
	}), nil
}

func (a *analyzer) funcCall(f *pg.FuncCall, sc *scope) (expr, error) {
	name := stringOf(f.Funcname[len(f.Funcname)-1])
	if len(f.Funcname) == 2 && stringOf(f.Funcname[0]) != "pg_catalog" {
		return nil, withPosition(errorf("42883", "function %s does not exist", name), f.Location)
	}
	if f.Over != nil {
		return a.windowCall(name, f, sc)
	}
	if _, ok := aggregateFuncs[name]; ok {
		return a.aggregateCall(name, f, sc)
	}
	fn, ok := scalarFuncs[name]
	if !ok {
		return nil, withPosition(errorf("42883", "function %s does not exist", name), f.Location)
	}
	var args []expr
	for _, n := range f.Args {
		x, err := a.expr(n, sc)
		if err != nil {
			return nil, err
		}
		args = append(args, x)
	}
	x, err := fn(a, args)
	if err != nil {
		return nil, err
	}
	if x == nil {
		var types []string
		for _, arg := range args {
			types = append(types, arg.typ().shortName())
		}
		e := errorf("42883", "function %s(%s) does not exist", name, strings.Join(types, ", "))
		e.Hint = "No function matches the given name and argument types. You might need to add explicit type casts."
		return nil, withPosition(e, f.Location)
	}
	return x, nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
