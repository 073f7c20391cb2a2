// Package adapters will hold the protocol adapters (RESP, PostgreSQL wire,
// gRPC API), each split into a pure command layer the simulator drives and a
// wire layer.
package adapters
