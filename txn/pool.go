package txn

import (
	"fmt"
	"sync/atomic"

	"github.com/orbitkernel/orbit/kernel"
)

// NewPool returns a pool of up to size DBs made by newDB, named prefix-1,
// prefix-2, ... (a DB serves one task at a time).
func NewPool(rt kernel.Runtime, size int, prefix string, newDB func(name string) (*DB, error)) *kernel.Pool[*DB] {
	var made atomic.Int64
	return kernel.NewPool(rt, prefix, size, func() (*DB, error) {
		return newDB(fmt.Sprintf("%s-%d", prefix, made.Add(1)))
	})
}
