package pgwire

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/orbitkernel/orbit/query"
)

// SQLSTATEs pgwire raises itself.
const (
	codeProtocolViolation    = "08P01"
	codeFeatureNotSupported  = "0A000"
	codeInvalidAuthorization = "28000"
	codeInvalidPassword      = "28P01"
	codeQueryCanceled        = "57014"
	codeAdminShutdown        = "57P01"
	codeDuplicatePrepared    = "42P05"
	codeDuplicateCursor      = "42P03"
	codeUndefinedPrepared    = "26000"
	codeUndefinedCursor      = "34000"
	codeSyntaxError          = "42601"
	codeInternal             = "XX000"
)

func newError(severity, code, format string, args ...any) *query.Error {
	return &query.Error{Severity: severity, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errShutdown ends a connection when the listener shuts down.
var errShutdown = newError("FATAL", codeAdminShutdown, "terminating connection due to administrator command")

// asQueryError gives err the SQLSTATE the client sees: the engine's
// *query.Error as is; a context the engine gave up on as PostgreSQL's
// cancel; anything else as XX000 internal_error with its text.
func asQueryError(err error, userCancel bool) *query.Error {
	var qe *query.Error
	switch {
	case errors.As(err, &qe):
		return qe
	case errors.Is(err, context.Canceled) && userCancel:
		return newError("ERROR", codeQueryCanceled, "canceling statement due to user request")
	case errors.Is(err, context.DeadlineExceeded):
		return newError("ERROR", codeQueryCanceled, "canceling statement due to statement timeout")
	default:
		return newError("ERROR", codeInternal, "%s", err.Error())
	}
}

// fatal reports whether e ends the connection.
func fatal(e *query.Error) bool { return e.Severity == "FATAL" || e.Severity == "PANIC" }

// errorResponse is e as an ErrorResponse's fields (S, V, C, M, D, H, P).
func errorResponse(e *query.Error) *pgproto3.ErrorResponse {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	code := e.Code
	if code == "" {
		code = codeInternal
	}
	return &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: code,
		Message: e.Message, Detail: e.Detail, Hint: e.Hint, Position: e.Position}
}

// noticeResponse is a notice or warning as a NoticeResponse.
func noticeResponse(e *query.Error) *pgproto3.NoticeResponse {
	r := errorResponse(e)
	if e.Severity == "" {
		r.Severity, r.SeverityUnlocalized = "NOTICE", "NOTICE"
	}
	if e.Code == "" {
		r.Code = "00000"
	}
	return (*pgproto3.NoticeResponse)(r)
}
