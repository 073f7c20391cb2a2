package query

import (
	"context"
	"fmt"
)

// Column describes one column of a result, as PostgreSQL's RowDescription
// does.
type Column struct {
	Name string
	// TableOID and Attr name the table column it comes from (0 when it is
	// computed).
	TableOID uint32
	Attr     int16
	// TypeOID is the PostgreSQL type (pg_type.oid: 20 int8, 25 text, ...).
	TypeOID uint32
	// TypeSize is pg_type.typlen (-1 for variable length).
	TypeSize int16
	// TypeMod is the type modifier (-1: none).
	TypeMod int32
	// Format is 0 (text) or 1 (binary): how the values in a portal's rows
	// are encoded.
	Format int16
}

// Error is a SQL error or notice with its SQLSTATE, as PostgreSQL words
// it. Engine methods return it (wrapped or not) for every error a client
// should see; errors.As finds it.
type Error struct {
	// Severity is "ERROR", "FATAL", "WARNING" or "NOTICE".
	Severity string
	// Code is the SQLSTATE ("42P01", "23505", ...).
	Code    string
	Message string
	Detail  string
	Hint    string
	// Position is the 1-based character position in the statement's text
	// the error refers to (0: none).
	Position int32
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (SQLSTATE %s)", e.Severity, e.Message, e.Code)
}

// errorf returns an ERROR with code.
func errorf(code, format string, args ...any) *Error {
	return &Error{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...)}
}

// Transaction status as ReadyForQuery reports it.
const (
	StatusIdle   byte = 'I' // not in a transaction block
	StatusInTxn  byte = 'T' // in a transaction block
	StatusFailed byte = 'E' // in a failed transaction block: statements are refused until ROLLBACK
)

// Statement is one parsed statement, ready to be bound to parameters
// (PostgreSQL's prepared statement).
type Statement interface {
	// Params are the parameters' type OIDs ($1 is Params()[0]), those the
	// client gave and those inferred.
	Params() []uint32
	// Columns describe the rows it returns (all in text format); nil: it
	// returns no rows.
	Columns() []Column
	// Bind gives the parameters' values (nil: NULL), each in the format
	// paramFormats says (PostgreSQL's rules: none given, all text; one,
	// all that; else one each), and asks for results in resultFormats
	// (same rules). The result is a portal to execute.
	Bind(params [][]byte, paramFormats, resultFormats []int16) (Portal, error)
}

// Portal is a bound statement (PostgreSQL's portal).
type Portal interface {
	// Columns are as the statement's, with the formats asked for.
	Columns() []Column
	// Execute runs the statement, or goes on with it where the last
	// Execute stopped, sending each row to emit (values in their column's
	// format, nil for NULL). maxRows > 0 stops after that many rows with
	// suspended set (PortalSuspended); otherwise it runs to the end and
	// tag is the command tag ("SELECT 3", "INSERT 0 1", "CREATE TABLE").
	// An error from emit ends the execution with that error.
	Execute(ctx context.Context, maxRows int, emit func(row [][]byte) error) (tag string, suspended bool, err error)
	// Copy describes a COPY statement's data transfer (nil for every
	// other statement). A COPY ... TO STDOUT runs by Execute, each row one
	// value: a line of the format (CopyData). A COPY ... FROM STDIN runs
	// by CopyIn.
	Copy() *Copy
	// CopyIn runs a COPY ... FROM STDIN, reading the client's data
	// through next (each CopyData's bytes; io.EOF at CopyDone; any other
	// error, such as a CopyFail's, aborts it).
	CopyIn(ctx context.Context, next func() ([]byte, error)) (tag string, err error)
}
