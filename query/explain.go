package query

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// EXPLAIN: the plan as the executor will run it, one line per step, the
// access path of every table (a point read, a primary-key prefix span, a
// full scan). EXPLAIN ANALYZE (running it) is not supported yet.

// explainPlan is an analysed EXPLAIN.
type explainPlan struct {
	lines []string
}

func (p *explainPlan) columns() []Column {
	return []Column{{Name: "QUERY PLAN", TypeOID: TypeText.OID, TypeSize: -1, TypeMod: -1}}
}

func (a *analyzer) analyzeExplain(st *pg.ExplainStmt) (*explainPlan, error) {
	for _, o := range st.Options {
		d := o.GetDefElem()
		switch d.Defname {
		case "analyze":
			return nil, errorf("0A000", "EXPLAIN ANALYZE is not supported yet")
		case "verbose", "costs", "format":
			if d.Defname == "format" && d.Arg != nil && !strings.EqualFold(stringOf(d.Arg), "text") {
				return nil, errorf("0A000", "EXPLAIN formats other than text are not supported")
			}
		default:
			return nil, errorf("0A000", "EXPLAIN option %q is not supported", d.Defname)
		}
	}
	if !plannable(st.Query) {
		return nil, errorf("0A000", "EXPLAIN of %s is not supported", nodeName(st.Query))
	}
	p, err := a.plan(st.Query)
	if err != nil {
		return nil, err
	}
	var lines []string
	explainNode(p, 0, &lines)
	return &explainPlan{lines: lines}, nil
}

func (p *explainPlan) rows() [][]any {
	out := make([][]any, len(p.lines))
	for i, l := range p.lines {
		out[i] = []any{l}
	}
	return out
}

// explainNode appends the lines of a plan or source at depth.
func explainNode(n any, depth int, out *[]string) {
	line := func(format string, args ...any) {
		prefix := ""
		if depth > 0 {
			prefix = strings.Repeat("      ", depth-1) + "  ->  "
		}
		*out = append(*out, prefix+fmt.Sprintf(format, args...))
		depth++
	}
	switch p := n.(type) {
	case *selectPlan:
		if p.limit != nil || p.offset != nil {
			line("Limit")
		}
		if len(p.order) > 0 {
			line("Sort (%d keys)", len(p.order))
		}
		if p.distinct {
			line("Distinct")
		}
		if p.grouped {
			line("Aggregate (%d grouping expressions, %d aggregates)", len(p.groupBy), len(p.aggs))
		}
		if len(p.windows) > 0 {
			line("Window (%d calls)", len(p.windows))
		}
		if p.where != nil {
			line("Filter")
		}
		if p.from == nil {
			line("Result (one row)")
			return
		}
		explainNode(p.from, depth, out)
	case *tableScan:
		line("%s", p.accessPath())
	case *virtualScan:
		line("System catalog scan")
	case *joinSource:
		kind := strings.ToLower(strings.TrimPrefix(p.kind.String(), "JOIN_"))
		if len(p.keys) > 0 {
			line("Hash Join (%s join, %d keys)", kind, len(p.keys))
		} else {
			line("Nested Loop (%s join)", kind)
		}
		explainNode(p.left, depth, out)
		explainNode(p.right, depth, out)
	case *valuesSource:
		line("Values (%d rows)", len(p.rowsX))
	case *seriesSource:
		line("Function Scan on generate_series")
	case *setOpPlan:
		op := strings.TrimPrefix(p.op.String(), "SETOP_")
		if p.all {
			op += " ALL"
		}
		line("%s", op)
		explainNode(p.left, depth, out)
		explainNode(p.right, depth, out)
	case *insertPlan:
		line("Insert on %s", p.t.Name)
		if p.source != nil {
			explainNode(p.source, depth, out)
		} else {
			line("Values (%d rows)", max(len(p.rows), 1))
		}
	case *updatePlan:
		verb := "Update"
		if p.delete {
			verb = "Delete"
		}
		line("%s on %s", verb, p.t.Name)
		if p.where != nil {
			line("Filter")
		}
		line("%s", p.scan.accessPath())
	case *copyPlan:
		if p.st.IsFrom {
			line("Copy into %s", p.insert.t.Name)
		} else {
			line("Copy")
			explainNode(p.query, depth, out)
		}
	default:
		line("%T", n)
	}
}

// accessPath says how a scan reads its table.
func (s *tableScan) accessPath() string {
	if s.index != nil {
		names, _ := s.t.indexColumnText(&IndexDesc{Columns: s.index.ix.Columns[:len(s.index.pinned)]}, nil)
		return fmt.Sprintf("Index Scan using %s on %s (%s = ...)", s.index.ix.Name, s.t.Name, names)
	}
	n := 0
	for n < len(s.pinned) && s.pinned[n] != nil {
		n++
	}
	switch {
	case n > 0 && n == len(s.pinned):
		return fmt.Sprintf("Point Lookup on %s (%s = ...)", s.t.Name, strings.Join(s.keyNames(n), ", "))
	case n > 0:
		return fmt.Sprintf("Span Scan on %s (%s = ...)", s.t.Name, strings.Join(s.keyNames(n), ", "))
	}
	return "Full Scan on " + s.t.Name
}

func (s *tableScan) keyNames(n int) []string {
	var names []string
	for _, i := range s.t.pkIndexes()[:n] {
		names = append(names, s.t.Columns[i].Name)
	}
	return names
}
