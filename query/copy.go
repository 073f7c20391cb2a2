package query

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"io"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// COPY ... FROM STDIN and COPY ... TO STDOUT, in the text, CSV and binary
// formats. A COPY FROM is one transaction (all rows or none), so it is
// bounded by Options.MaxRows like any statement's rows.

// Copy describes a COPY statement's data transfer (Portal.Copy).
type Copy struct {
	// In: COPY ... FROM STDIN (the client sends the data, and the wire
	// calls Portal.CopyIn); otherwise COPY ... TO STDOUT (Execute emits
	// each row as one value: its line).
	In bool
	// Binary: the binary format; otherwise text (text or CSV).
	Binary bool
	// Columns is the number of columns.
	Columns int
}

// copyOptions are a COPY statement's options.
type copyOptions struct {
	format    string // "text", "csv" or "binary"
	delimiter string
	null      string
	header    bool
	quote     string
}

func parseCopyOptions(opts []*pg.Node) (copyOptions, error) {
	o := copyOptions{format: "text"}
	var delimiter, null *string
	for _, n := range opts {
		d := n.GetDefElem()
		var arg string
		if d.Arg != nil {
			switch {
			case d.Arg.GetString_() != nil:
				arg = d.Arg.GetString_().Sval
			case d.Arg.GetBoolean() != nil:
				arg = strconv.FormatBool(d.Arg.GetBoolean().Boolval)
			case d.Arg.GetInteger() != nil:
				arg = strconv.Itoa(int(d.Arg.GetInteger().Ival))
			}
		}
		switch d.Defname {
		case "format":
			switch strings.ToLower(arg) {
			case "text", "csv", "binary":
				o.format = strings.ToLower(arg)
			default:
				return o, errorf("22023", "COPY format %q not recognized", arg)
			}
		case "delimiter":
			if len(arg) != 1 {
				return o, errorf("22023", "COPY delimiter must be a single one-byte character")
			}
			delimiter = &arg
		case "null":
			null = &arg
		case "header":
			o.header = d.Arg == nil || arg == "true" || arg == "1" || strings.EqualFold(arg, "on")
		case "quote":
			if len(arg) != 1 {
				return o, errorf("22023", "COPY quote must be a single one-byte character")
			}
			o.quote = arg
		case "freeze":
			// FREEZE tunes PostgreSQL's visibility bookkeeping; rows
			// copied here are visible exactly as if it were off.
		default:
			return o, errorf("0A000", "COPY option %q is not supported", d.Defname)
		}
	}
	o.delimiter, o.null = "\t", `\N`
	if o.format == "csv" {
		o.delimiter, o.null = ",", ""
		if o.quote == "" {
			o.quote = `"`
		}
	} else if o.quote != "" {
		return o, errorf("0A000", "COPY quote available only in CSV mode")
	}
	if delimiter != nil {
		o.delimiter = *delimiter
	}
	if null != nil {
		o.null = *null
	}
	if o.header && o.format == "text" {
		return o, errorf("0A000", "COPY HEADER available only in CSV mode")
	}
	return o, nil
}

// copyPlan is an analysed COPY.
type copyPlan struct {
	st      *pg.CopyStmt
	opts    copyOptions
	insert  *insertPlan // COPY FROM: the rows go through INSERT's path
	query   *selectPlan // COPY TO
	types   []Type      // the copied columns' types
	maxRows int
}

func (a *analyzer) analyzeCopy(st *pg.CopyStmt) (*copyPlan, error) {
	if st.Filename != "" || st.IsProgram {
		e := errorf("0A000", "COPY to or from a file or program is not supported")
		e.Hint = `Use COPY ... FROM STDIN / TO STDOUT, or psql's \copy.`
		return nil, e
	}
	if st.WhereClause != nil {
		return nil, errorf("0A000", "COPY FROM ... WHERE is not supported")
	}
	opts, err := parseCopyOptions(st.Options)
	if err != nil {
		return nil, err
	}
	p := &copyPlan{st: st, opts: opts, maxRows: a.s.e.opts.MaxRows}
	if st.IsFrom {
		ins := &pg.InsertStmt{Relation: st.Relation}
		for _, n := range st.Attlist {
			ins.Cols = append(ins.Cols, pg.MakeResTargetNodeWithName(stringOf(n), -1))
		}
		if p.insert, err = a.analyzeInsert(ins); err != nil {
			return nil, err
		}
		for _, i := range p.insert.targets {
			p.types = append(p.types, p.insert.t.Columns[i].Type)
		}
		return p, nil
	}
	sel := st.Query.GetSelectStmt()
	if sel == nil {
		// COPY table [(columns)] TO STDOUT is SELECT columns FROM table.
		targets := []*pg.Node{pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{pg.MakeAStarNode()}, -1), -1)}
		if len(st.Attlist) > 0 {
			targets = nil
			for _, n := range st.Attlist {
				targets = append(targets, pg.MakeResTargetNodeWithVal(pg.MakeColumnRefNode([]*pg.Node{n}, -1), -1))
			}
		}
		sel = &pg.SelectStmt{TargetList: targets, FromClause: []*pg.Node{{Node: &pg.Node_RangeVar{RangeVar: st.Relation}}}}
	}
	if p.query, err = a.analyzeSelect(sel); err != nil {
		return nil, err
	}
	for i := 0; i < p.query.visible; i++ {
		p.types = append(p.types, p.query.outputs[i].typ())
	}
	return p, nil
}

func (p *copyPlan) columns() []Column { return nil }

func (p *copyPlan) spec() *Copy {
	return &Copy{In: p.st.IsFrom, Binary: p.opts.format == "binary", Columns: len(p.types)}
}

// copyOut runs COPY TO: each row as one line.
func (p *copyPlan) copyOut(r *run) ([][]any, string, error) {
	rows, err := p.query.execute(r)
	if err != nil {
		return nil, "", err
	}
	out := make([][]any, 0, len(rows)+2)
	if p.opts.format == "binary" {
		out = append(out, []any{binaryCopyHeader})
	}
	if p.opts.header {
		out = append(out, []any{p.csvLine(p.query.names[:p.query.visible], nil)})
	}
	for _, row := range rows {
		line, err := p.formatLine(row)
		if err != nil {
			return nil, "", err
		}
		out = append(out, []any{line})
	}
	if p.opts.format == "binary" {
		out = append(out, []any{[]byte{0xFF, 0xFF}})
	}
	return out, "COPY " + strconv.Itoa(len(rows)), nil
}

var binaryCopyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (p *copyPlan) formatLine(row []any) ([]byte, error) {
	switch p.opts.format {
	case "binary":
		b := binary.BigEndian.AppendUint16(nil, uint16(len(row)))
		for i, v := range row {
			if v == nil {
				b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
				continue
			}
			enc, err := encodeBinary(p.types[i], v)
			if err != nil {
				return nil, err
			}
			b = append(binary.BigEndian.AppendUint32(b, uint32(len(enc))), enc...)
		}
		return b, nil
	case "csv":
		fields := make([]string, len(row))
		quote := make([]bool, len(row))
		for i, v := range row {
			if v == nil {
				fields[i] = p.opts.null
				continue
			}
			fields[i] = textOf(p.types[i], v)
			quote[i] = fields[i] == p.opts.null // a value that reads as NULL is quoted
		}
		return p.csvLine(fields, quote), nil
	}
	var b bytes.Buffer
	for i, v := range row {
		if i > 0 {
			b.WriteString(p.opts.delimiter)
		}
		if v == nil {
			b.WriteString(p.opts.null)
			continue
		}
		for _, c := range []byte(string(formatText(p.types[i], v))) {
			switch c {
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if string(c) == p.opts.delimiter {
					b.WriteByte('\\')
				}
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// csvLine writes fields as a CSV line, quoting those that need it or
// that quote says to.
func (p *copyPlan) csvLine(fields []string, quote []bool) []byte {
	var b bytes.Buffer
	q := p.opts.quote
	for i, f := range fields {
		if i > 0 {
			b.WriteString(p.opts.delimiter)
		}
		if (quote != nil && quote[i]) || strings.ContainsAny(f, p.opts.delimiter+q+"\r\n") {
			f = q + strings.ReplaceAll(f, q, q+q) + q
		}
		b.WriteString(f)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// copyIn runs COPY FROM with the data read through next (io.EOF: the
// end), in the statement's transaction.
func (p *copyPlan) copyIn(r *run, data []byte) (string, error) {
	rows, err := p.parse(data)
	if err != nil {
		return "", err
	}
	if err := r.take(len(rows), p.maxRows); err != nil {
		return "", err
	}
	n := 0
	var changes []rowChange // the rows written, for the foreign keys
	for line, fields := range rows {
		row := make([]any, len(p.insert.t.Columns))
		given := make([]bool, len(row))
		for j, ci := range p.insert.targets {
			if fields[j] == nil {
				given[ci] = true
				continue
			}
			v, err := p.value(j, fields[j])
			if err != nil {
				if e, ok := err.(*Error); ok {
					e.Detail = "COPY " + p.insert.t.Name + ", line " + strconv.Itoa(line+1) + ", column " + p.insert.t.Columns[ci].Name
				}
				return "", err
			}
			row[ci], given[ci] = v, true
		}
		if err := p.insert.fillDefaults(r, row, given); err != nil {
			return "", err
		}
		if _, err := p.insert.insertRow(r, row, nil, &changes); err != nil {
			return "", err
		}
		n++
	}
	if err := r.foreignKeys(p.insert.t, changes); err != nil {
		return "", err
	}
	return "COPY " + strconv.Itoa(n), nil
}

// value reads field j (text, or binary in the binary format).
func (p *copyPlan) value(j int, f *string) (any, error) {
	t := p.types[j]
	if p.opts.format == "binary" {
		return decodeParam(t, 1, []byte(*f))
	}
	return assignValue(*f, TypeUnknown, t)
}

// parse splits COPY FROM's data into rows of fields (nil: NULL).
func (p *copyPlan) parse(data []byte) ([][]*string, error) {
	want := len(p.types)
	var rows [][]*string
	switch p.opts.format {
	case "binary":
		return parseBinaryCopy(data, want)
	case "csv":
		rd := csv.NewReader(bytes.NewReader(data))
		rd.Comma = rune(p.opts.delimiter[0])
		rd.FieldsPerRecord = -1
		rd.LazyQuotes = false
		first := true
		for {
			rec, err := rd.Read()
			if err == io.EOF {
				return rows, nil
			}
			if err != nil {
				return nil, errorf("22P04", "invalid CSV data: %v", err)
			}
			if first && p.opts.header {
				first = false
				continue
			}
			first = false
			if len(rec) == 1 && rec[0] == `\.` {
				return rows, nil
			}
			if len(rec) != want {
				return nil, errorf("22P04", "%s", columnCountError(len(rec), want))
			}
			fields := make([]*string, want)
			for i, s := range rec {
				// encoding/csv cannot tell "" from an empty field; both
				// are the empty string unless NULL is the empty string,
				// when both are NULL (a quoted "" should stay ''; a
				// known difference, docs/sql.md).
				if s != p.opts.null {
					s := s
					fields[i] = &s
				}
			}
			rows = append(rows, fields)
		}
	}
	if len(data) == 0 {
		return nil, nil
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == `\.` {
			break
		}
		parts := strings.Split(line, p.opts.delimiter)
		if len(parts) != want {
			return nil, errorf("22P04", "%s", columnCountError(len(parts), want))
		}
		fields := make([]*string, want)
		for i, s := range parts {
			if s == p.opts.null {
				continue
			}
			v, err := unescapeCopyText(s)
			if err != nil {
				return nil, err
			}
			fields[i] = &v
		}
		rows = append(rows, fields)
	}
	return rows, nil
}

func columnCountError(got, want int) string {
	if got < want {
		return "missing data for column"
	}
	return "extra data after last expected column"
}

// unescapeCopyText undoes the text format's backslash escapes.
func unescapeCopyText(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		default:
			if s[i] >= '0' && s[i] <= '7' {
				j := i
				for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(s[i:j], 8, 8)
				b.WriteByte(byte(v))
				i = j - 1
				continue
			}
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// parseBinaryCopy reads the binary COPY format.
func parseBinaryCopy(data []byte, want int) ([][]*string, error) {
	bad := errorf("22P04", "invalid COPY file format")
	if !bytes.HasPrefix(data, binaryCopyHeader[:11]) || len(data) < 19 {
		return nil, errorf("22P04", "COPY file signature not recognized")
	}
	ext := binary.BigEndian.Uint32(data[15:19])
	data = data[19:]
	if uint32(len(data)) < ext {
		return nil, bad
	}
	data = data[ext:]
	var rows [][]*string
	for {
		if len(data) == 0 {
			return rows, nil // the end of the data without a trailer, as PostgreSQL allows
		}
		if len(data) < 2 {
			return nil, bad
		}
		n := int16(binary.BigEndian.Uint16(data))
		data = data[2:]
		if n == -1 {
			return rows, nil
		}
		if int(n) != want {
			return nil, errorf("22P04", "row field count is %d, expected %d", n, want)
		}
		fields := make([]*string, want)
		for i := range fields {
			if len(data) < 4 {
				return nil, bad
			}
			l := int32(binary.BigEndian.Uint32(data))
			data = data[4:]
			if l == -1 {
				continue
			}
			if l < 0 || int(l) > len(data) {
				return nil, bad
			}
			s := string(data[:l])
			fields[i] = &s
			data = data[l:]
		}
		rows = append(rows, fields)
	}
}

// readCopyData gathers a COPY FROM's data: every CopyData until next
// says io.EOF (CopyDone).
func readCopyData(next func() ([]byte, error)) ([]byte, error) {
	var data []byte
	for {
		chunk, err := next()
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		data = append(data, chunk...)
		if len(data) > maxCopyBytes {
			return nil, errorf("54000", "COPY FROM data beyond %d bytes in one statement", maxCopyBytes)
		}
	}
}

// maxCopyBytes bounds the data one COPY FROM holds (it is one
// transaction).
const maxCopyBytes = 256 << 20
