package sim

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
)

// Libraries we do not control may draw from crypto/rand.Reader: etcd Raft
// randomizes its election timeout with rand.Int(rand.Reader, …). Under the
// simulator that would make elections, and so whole runs, differ between two
// runs of one seed. The simulator therefore replaces crypto/rand.Reader, for
// the whole process, with a reader that serves a simulated task from its
// node's seeded source and everyone else from the real one.
//
// The reader finds the task by goroutine: tasks register their goroutine
// while they live. Parallel simulations in one process stay independent,
// since each task draws from its own node's source.

var (
	installReader sync.Once
	taskOfGoid    sync.Map // goroutine ID → *task
	// ForeignCryptoReads counts crypto/rand reads from goroutines that are
	// not simulated tasks (Pebble's, the test's). They are not seeded; a
	// determinism failure with this counter moving points here.
	ForeignCryptoReads atomic.Uint64
)

type seededCryptoReader struct{ real io.Reader }

func (r seededCryptoReader) Read(p []byte) (int, error) {
	v, ok := taskOfGoid.Load(goid())
	if !ok {
		ForeignCryptoReads.Add(1)
		return r.real.Read(p)
	}
	rng := v.(*task).node.rt.rng
	for i := 0; i < len(p); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(p[i:], w[:])
	}
	return len(p), nil
}

func installCryptoReader() {
	installReader.Do(func() {
		cryptorand.Reader = seededCryptoReader{real: cryptorand.Reader}
	})
}
