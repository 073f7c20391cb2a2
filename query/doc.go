// Package query will hold SQL: parse, plan and execute over txn.
package query
