package query

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/orbitkernel/orbit/storage"
	"github.com/orbitkernel/orbit/txn"
)

// Sequences (docs/sql.md, "Sequences"): CREATE SEQUENCE's, and the one
// each serial column has (<table>_<column>_seq). As PostgreSQL's, they are
// not transactional: nextval and setval commit at once, in a transaction
// of their own, so a rolled-back statement leaves a gap, and concurrent
// inserts into one table never conflict on its serial (they take numbers
// one after the other). CACHE is accepted and has no effect: every
// nextval is one replicated transaction, never a preallocated block.
//
//	sql/seqdesc/<database>\0<schema>\0<name>  a CREATE SEQUENCE's descriptor
//	sql/seq/<sequence ID, 8 bytes>            its state
//	sql/seq/<table ID, 8 bytes>/<column ID>   a serial column's state
//
// A state is its last value, followed by " f" when nextval has not
// returned it yet (a new sequence, or setval(..., false)).

// SequenceDesc describes a CREATE SEQUENCE's sequence.
type SequenceDesc struct {
	ID        uint64 `json:"id"`
	Database  string `json:"database"`
	Schema    string `json:"schema"`
	Name      string `json:"name"`
	Increment int64  `json:"increment"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
	Start     int64  `json:"start"`
	Cycle     bool   `json:"cycle,omitempty"`
}

const seqDescPrefix = "sql/seqdesc/"

func seqDescKey(database, schema, name string) []byte {
	return []byte(seqDescPrefix + database + "\x00" + schema + "\x00" + name)
}

// sequence is a sequence as nextval sees it: a CREATE SEQUENCE's, or a
// serial column's.
type sequence struct {
	desc SequenceDesc
	key  []byte
	oid  int64
}

// serialSequence is the sequence of t's serial column c.
func serialSequence(t *TableDesc, c ColumnDesc) *sequence {
	_, hi := intRange(c.Type)
	return &sequence{
		desc: SequenceDesc{Database: t.Database, Schema: t.Schema, Name: t.Name + "_" + c.Name + "_seq", Increment: 1, Min: 1, Max: hi, Start: 1},
		key:  serialKey(t.ID, c.ID),
		oid:  5_000_000 + int64(t.ID)*1000 + int64(c.ID),
	}
}

func sequenceOf(d SequenceDesc) *sequence {
	return &sequence{desc: d, key: binary.BigEndian.AppendUint64([]byte(seqPrefix), d.ID), oid: 4_000_000 + int64(d.ID)}
}

// listSequences are the schema's sequences, serial ones included.
func listSequences(ctx context.Context, tx *txn.Tx, database, schema string) ([]*sequence, error) {
	var out []*sequence
	err := scanSpan(ctx, tx, seqDescKey(database, schema, ""), append(seqDescKey(database, schema, ""), 0xFF), func(kv storage.KeyValue) error {
		var d SequenceDesc
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			return errorf("XX001", "could not decode a sequence descriptor: %v", err)
		}
		out = append(out, sequenceOf(d))
		return nil
	})
	if err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, tx, database, schema)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		for _, c := range t.Columns {
			if c.Serial {
				out = append(out, serialSequence(t, c))
			}
		}
	}
	return out, nil
}

// findSequence is the sequence a nextval argument names: its OID, or its
// name as text ("schema.name", unquoted parts folded to lower case).
func findSequence(env *env, arg any) (*sequence, error) {
	schema, name := "public", ""
	oid, byOID := arg.(int64)
	if !byOID {
		parts := strings.Split(arg.(string), ".")
		for i, p := range parts {
			if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
				parts[i] = strings.ReplaceAll(p[1:len(p)-1], `""`, `"`)
			} else {
				parts[i] = strings.ToLower(p)
			}
		}
		name = parts[len(parts)-1]
		if len(parts) > 1 {
			schema = parts[len(parts)-2]
		}
	}
	seqs, err := listSequences(env.run.ctx, env.run.tx, env.session.database, schema)
	if err != nil {
		return nil, err
	}
	for _, s := range seqs {
		if (byOID && s.oid == oid) || (!byOID && s.desc.Name == name) {
			return s, nil
		}
	}
	if byOID {
		return nil, errorf("42P01", "could not open relation with OID %d", oid)
	}
	return nil, errorf("42P01", "relation %q does not exist", arg)
}

// advance takes seq's next value in a transaction of its own (committed
// whatever the statement's becomes), as PostgreSQL's nextval does.
func (s *Session) advance(ctx context.Context, seq *sequence) (int64, error) {
	if s.readOnlyNow() {
		return 0, errorf("25006", "cannot execute nextval() in a read-only transaction")
	}
	d := seq.desc
	var v int64
	err := s.db.Txn(ctx, func(tx *txn.Tx) error {
		b, found, err := tx.GetForUpdate(ctx, seq.key)
		if err != nil {
			return err
		}
		last, called := d.Start, false
		if found {
			if last, called, err = decodeSequenceState(b); err != nil {
				return err
			}
		}
		v = last
		if called {
			switch {
			case d.Increment > 0 && last > d.Max-d.Increment:
				if !d.Cycle {
					return errorf("2200H", "nextval: reached maximum value of sequence %q (%d)", d.Name, d.Max)
				}
				v = d.Min
			case d.Increment < 0 && last < d.Min-d.Increment:
				if !d.Cycle {
					return errorf("2200H", "nextval: reached minimum value of sequence %q (%d)", d.Name, d.Min)
				}
				v = d.Max
			default:
				v = last + d.Increment
			}
		}
		return tx.Put(ctx, seq.key, []byte(strconv.FormatInt(v, 10)))
	})
	if err != nil {
		return 0, err
	}
	s.noteSequenceValue(seq, v)
	return v, nil
}

// setSequence is setval: seq's last value becomes v (returned by the
// next nextval unless called), in a transaction of its own.
func (s *Session) setSequence(ctx context.Context, seq *sequence, v int64, called bool) error {
	if s.readOnlyNow() {
		return errorf("25006", "cannot execute setval() in a read-only transaction")
	}
	d := seq.desc
	if v < d.Min || v > d.Max {
		return errorf("22003", "setval: value %d is out of bounds for sequence %q (%d..%d)", v, d.Name, d.Min, d.Max)
	}
	state := strconv.FormatInt(v, 10)
	if !called {
		state += " f"
	}
	if err := s.db.Txn(ctx, func(tx *txn.Tx) error { return tx.Put(ctx, seq.key, []byte(state)) }); err != nil {
		return err
	}
	if called {
		s.noteSequenceValue(seq, v)
	}
	return nil
}

func (s *Session) noteSequenceValue(seq *sequence, v int64) {
	if s.currvals == nil {
		s.currvals = map[int64]int64{}
	}
	s.currvals[seq.oid] = v
	s.lastval, s.lastvalSet = v, true
}

func decodeSequenceState(b []byte) (last int64, called bool, err error) {
	text, notCalled := strings.CutSuffix(string(b), " f")
	last, err = strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, false, errorf("XX001", "could not decode a sequence's state %q", b)
	}
	return last, !notCalled, nil
}

// sequenceFuncs are nextval, currval, setval and lastval.
func init() {
	named := func(a *analyzer, x expr) (expr, error) {
		if f := x.typ().family(); f == famInt || x.typ().OID == TypeRegclass.OID || x.typ().OID == TypeOid.OID {
			return a.coerce(x, TypeInt8)
		}
		return a.coerce(x, TypeText)
	}
	// of is a function of one sequence, named by its argument.
	of := func(fn func(env *env, seq *sequence) (any, error)) scalarFunc {
		return func(a *analyzer, args []expr) (expr, error) {
			if len(args) != 1 {
				return nil, nil
			}
			arg, err := named(a, args[0])
			if err != nil {
				return nil, err
			}
			return &funcExpr{args: []expr{arg}, t: TypeInt8, strict: true, fn: func(env *env, v []any) (any, error) {
				seq, err := findSequence(env, v[0])
				if err != nil {
					return nil, err
				}
				return fn(env, seq)
			}}, nil
		}
	}
	scalarFuncs["nextval"] = of(func(env *env, seq *sequence) (any, error) { return env.session.advance(env.run.ctx, seq) })
	scalarFuncs["currval"] = of(func(env *env, seq *sequence) (any, error) {
		n, ok := env.session.currvals[seq.oid]
		if !ok {
			return nil, errorf("55000", "currval of sequence %q is not yet defined in this session", seq.desc.Name)
		}
		return n, nil
	})
	scalarFuncs["lastval"] = func(a *analyzer, args []expr) (expr, error) {
		if len(args) != 0 {
			return nil, nil
		}
		return &funcExpr{t: TypeInt8, fn: func(env *env, _ []any) (any, error) {
			if !env.session.lastvalSet {
				return nil, errorf("55000", "lastval is not yet defined in this session")
			}
			return env.session.lastval, nil
		}}, nil
	}
	scalarFuncs["setval"] = func(a *analyzer, args []expr) (expr, error) {
		if len(args) < 2 || len(args) > 3 {
			return nil, nil
		}
		arg, err := named(a, args[0])
		if err != nil {
			return nil, err
		}
		out := []expr{arg}
		for i, t := range []Type{TypeInt8, TypeBool}[:len(args)-1] {
			x, err := a.coerce(args[i+1], t)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return &funcExpr{args: out, t: TypeInt8, strict: true, fn: func(env *env, v []any) (any, error) {
			seq, err := findSequence(env, v[0])
			if err != nil {
				return nil, err
			}
			called := len(v) < 3 || v[2] == true
			return v[1], env.session.setSequence(env.run.ctx, seq, v[1].(int64), called)
		}}, nil
	}
}

// createSequence runs CREATE SEQUENCE.
func (a *analyzer) createSequence(st *pg.CreateSeqStmt) (string, error) {
	schema := st.Sequence.Schemaname
	if schema == "" {
		schema = "public"
	}
	if schema != "public" {
		return "", errorf("3F000", "schema %q does not exist", schema)
	}
	if st.Sequence.Relpersistence == "t" {
		return "", errorf("0A000", "temporary sequences are not supported")
	}
	name := st.Sequence.Relname
	if exists, err := a.relationExists(schema, name); err != nil {
		return "", err
	} else if exists {
		if st.IfNotExists {
			a.s.notice("42P07", "relation %q already exists, skipping", name)
			return "CREATE SEQUENCE", nil
		}
		return "", errorf("42P07", "relation %q already exists", name)
	}
	d := SequenceDesc{Database: a.s.database, Schema: schema, Name: name, Increment: 1}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	var min, max, start *int64
	for _, n := range st.Options {
		o := n.GetDefElem()
		v, isInt := defElemInt(o.Arg)
		switch o.Defname {
		case "increment":
			d.Increment = v
		case "minvalue":
			if o.Arg != nil {
				min = &v
			}
		case "maxvalue":
			if o.Arg != nil {
				max = &v
			}
		case "start":
			start = &v
		case "cycle":
			d.Cycle = o.Arg.GetBoolean().GetBoolval()
			continue
		case "cache":
			// Accepted, no effect (see above).
		case "as":
			t, err := typeOf(o.Arg.GetTypeName())
			if err != nil {
				return "", err
			}
			if t.family() != famInt || t.OID == TypeOid.OID {
				return "", errorf("22023", "sequence type must be smallint, integer, or bigint")
			}
			lo, hi = intRange(t)
			continue
		case "owned_by":
			if items := o.Arg.GetList().GetItems(); len(items) == 1 && strings.EqualFold(stringOf(items[0]), "none") {
				continue
			}
			return "", errorf("0A000", "CREATE SEQUENCE ... OWNED BY a column is not supported")
		default:
			return "", errorf("0A000", "CREATE SEQUENCE option %s is not supported", o.Defname)
		}
		if !isInt && o.Arg != nil {
			return "", errorf("22023", "option %s needs an integer", o.Defname)
		}
	}
	if d.Increment == 0 {
		return "", errorf("22023", "INCREMENT must not be zero")
	}
	if d.Increment > 0 {
		d.Min, d.Max = 1, hi
	} else {
		d.Min, d.Max = lo, -1
	}
	if min != nil {
		d.Min = *min
	}
	if max != nil {
		d.Max = *max
	}
	if d.Min < lo || d.Max > hi {
		return "", errorf("22023", "MINVALUE and MAXVALUE must lie within the sequence's type")
	}
	if d.Min >= d.Max {
		return "", errorf("22023", "MINVALUE (%d) must be less than MAXVALUE (%d)", d.Min, d.Max)
	}
	d.Start = d.Min
	if d.Increment < 0 {
		d.Start = d.Max
	}
	if start != nil {
		d.Start = *start
	}
	if d.Start < d.Min {
		return "", errorf("22023", "START value (%d) cannot be less than MINVALUE (%d)", d.Start, d.Min)
	}
	if d.Start > d.Max {
		return "", errorf("22023", "START value (%d) cannot be greater than MAXVALUE (%d)", d.Start, d.Max)
	}
	id, err := nextCounter(a.ctx, a.tx, []byte(idKey))
	if err != nil {
		return "", err
	}
	d.ID = uint64(id)
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return "CREATE SEQUENCE", a.tx.Put(a.ctx, seqDescKey(d.Database, d.Schema, d.Name), b)
}

// defElemInt reads an option's integer (false: it is none).
func defElemInt(n *pg.Node) (int64, bool) {
	if n == nil {
		return 0, false
	}
	if i := n.GetInteger(); i != nil {
		return int64(i.Ival), true
	}
	if f := n.GetFloat(); f != nil {
		v, err := strconv.ParseInt(f.Fval, 10, 64)
		return v, err == nil
	}
	return 0, false
}

// dropSequences runs DROP SEQUENCE: the descriptor and the state go.
func (a *analyzer) dropSequences(st *pg.DropStmt) (string, error) {
	for _, o := range st.Objects {
		schema, name := objectName(o)
		key := seqDescKey(a.s.database, schema, name)
		b, found, err := a.tx.Get(a.ctx, key)
		if err != nil {
			return "", err
		}
		if !found {
			if st.MissingOk {
				a.s.notice("00000", "sequence %q does not exist, skipping", name)
				continue
			}
			return "", errorf("42P01", "sequence %q does not exist", name)
		}
		var d SequenceDesc
		if err := json.Unmarshal(b, &d); err != nil {
			return "", errorf("XX001", "could not decode a sequence descriptor: %v", err)
		}
		if err := a.tx.Delete(a.ctx, key); err != nil {
			return "", err
		}
		if err := a.tx.Delete(a.ctx, sequenceOf(d).key); err != nil {
			return "", err
		}
	}
	return "DROP SEQUENCE", nil
}

// sequenceRelations are pg_class's rows for the schema's sequences.
func sequenceRelations(c *catalogView) [][]any {
	var out [][]any
	for _, s := range c.sequences {
		out = append(out, []any{s.oid, s.desc.Name, int64(oidPublic), int64(0), int64(0), int64(oidSuperuser), int64(0), s.oid,
			int64(0), int64(0), float64(1), int64(0), int64(0), false, false,
			"p", "S", int64(3), int64(0), false, false, false,
			false, false, true, "n", false, int64(0),
			nil, nil, nil})
	}
	return out
}
