package sim

import (
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Disk is a node's simulated disk: Pebble's crashable in-memory filesystem
// behind an errorfs injector.
//
// Every fault decision is a hash of (seed, node, incarnation, path, kind of
// operation, index of that operation on that path), never a draw from a
// shared random stream. Pebble runs goroutines of its own that the scheduler
// does not order; per-path decisions stay the same however those goroutines
// interleave.
type Disk struct {
	n   *Node
	mem *vfs.MemFS
	fs  vfs.FS

	// WriteErrorRate and ReadErrorRate are the probabilities that a write
	// (write, sync, create, rename, remove, ...) or a read fails with an
	// injected I/O error.
	WriteErrorRate, ReadErrorRate float64
	// SyncLatency is the mean virtual time a sync takes when a task of the
	// node calls it directly; the task pays it at its next wait. (Pebble
	// syncs its WAL on a goroutine of its own, which is outside virtual time:
	// see the package README.)
	SyncLatency time.Duration
	// TornPercent is, at a crash, the chance that each unsynced 4 KiB block
	// or directory entry survives anyway. Zero keeps exactly the synced
	// state.
	TornPercent int

	mu       sync.Mutex // Pebble's goroutines call MaybeError too
	ops      map[opKey]uint64
	Injected uint64 // errors injected so far
}

type opKey struct {
	path string
	kind errorfs.OpKind
}

func newDisk(n *Node) *Disk {
	d := &Disk{n: n, mem: vfs.NewCrashableMem(), ops: map[opKey]uint64{}}
	d.fs = errorfs.Wrap(d.mem, d)
	return d
}

// mount starts an incarnation's view of the disk.
func (d *Disk) mount() {
	d.mu.Lock()
	clear(d.ops)
	d.mu.Unlock()
}

// Heal stops injecting errors and latency.
func (d *Disk) Heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.WriteErrorRate, d.ReadErrorRate, d.SyncLatency = 0, 0, 0
}

// String implements errorfs.Injector.
func (d *Disk) String() string { return "sim disk" }

// MaybeError implements errorfs.Injector: it decides, per operation, whether
// the operation fails, and charges sync latency to the calling task.
func (d *Disk) MaybeError(op errorfs.Op) error {
	d.mu.Lock()
	k := opKey{op.Path, op.Kind}
	idx := d.ops[k]
	d.ops[k] = idx + 1
	wr, rd, lat := d.WriteErrorRate, d.ReadErrorRate, d.SyncLatency
	d.mu.Unlock()

	h := mix(d.n.s.seed, uint64(d.n.id), uint64(d.n.inc), strHash(op.Path), uint64(op.Kind), idx)
	rate := rd
	if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		rate = wr
	}
	if rate > 0 && unit(h) < rate {
		d.mu.Lock()
		d.Injected++
		d.mu.Unlock()
		return errorfs.ErrInjected
	}
	if lat > 0 && isSync(op.Kind) {
		d.chargeLatency(lat, mix(h, 0x5ca1ab1e))
	}
	return nil
}

// chargeLatency bills a sync to the running task if it is the caller.
func (d *Disk) chargeLatency(mean time.Duration, h uint64) {
	s := d.n.s
	if s.runningGoid.Load() != goid() {
		return // a goroutine of Pebble's, outside virtual time
	}
	// We are the running task's own goroutine: reading s.running is safe.
	t := s.running
	t.owed += int64(float64(mean) * expFromUnit(unit(h)))
}

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

// crash replaces the disk's contents with what a crash leaves: the synced
// state and, with TornPercent, a deterministic subset of the rest.
func (d *Disk) crash() {
	d.mem = tornClone(d.mem, d.TornPercent, mix(d.n.s.seed, uint64(d.n.id), uint64(d.n.inc), 0x70726e))
	d.fs = errorfs.Wrap(d.mem, d)
}

// ErrTorn wraps a failure to build the torn image of a disk: a bug in the
// simulator, never in the component under test.
var ErrTorn = errors.New("sim: cannot build torn disk image")

// tornClone is Pebble's MemFS.CrashClone made deterministic. CrashClone draws
// its random numbers while ranging over Go maps, so which file gets which
// draw changes from run to run. Here every decision hashes the path and block
// index instead: keep each unsynced directory entry and each unsynced 4 KiB
// block with probability pct%, as CrashClone does.
func tornClone(mem *vfs.MemFS, pct int, seed uint64) *vfs.MemFS {
	synced := mem.CrashClone(vfs.CrashCloneCfg{})
	if pct <= 0 {
		return synced
	}
	full := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(0, 0))})
	keep := func(words ...uint64) bool {
		return int(mix(append([]uint64{seed}, words...)...)%100) < pct
	}
	if err := tornDir(synced, full, "/", keep); err != nil {
		panic(errors.Join(ErrTorn, err))
	}
	return synced
}

func tornDir(out, full *vfs.MemFS, dir string, keep func(...uint64) bool) error {
	names, err := full.List(dir)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		p := full.PathJoin(dir, name)
		st, err := full.Stat(p)
		if err != nil {
			return err
		}
		_, statErr := out.Stat(p)
		present := statErr == nil
		if !present && !keep(strHash(p), 0) {
			continue // the unsynced directory entry is lost
		}
		if st.IsDir() {
			if err := out.MkdirAll(p, 0o755); err != nil {
				return err
			}
			if err := tornDir(out, full, p, keep); err != nil {
				return err
			}
			continue
		}
		var base []byte
		if present {
			if base, err = readAll(out, p); err != nil {
				return err
			}
		}
		cur, err := readAll(full, p)
		if err != nil {
			return err
		}
		const block = 4096
		for i := 0; i < len(cur); i += block {
			if !keep(strHash(p), uint64(i/block)+1) {
				continue
			}
			end := min(i+block, len(cur))
			if len(base) < end {
				base = append(base, make([]byte, end-len(base))...)
			}
			copy(base[i:end], cur[i:end])
		}
		if err := writeSynced(out, p, base); err != nil {
			return err
		}
	}
	if f, err := out.OpenDir(dir); err == nil {
		err = errors.Join(f.Sync(), f.Close())
		return err
	}
	return nil
}

func readAll(fs vfs.FS, p string) ([]byte, error) {
	f, err := fs.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func writeSynced(fs vfs.FS, p string, data []byte) error {
	f, err := fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Sync(), f.Close())
}

// Files lists every file on the disk with its size, for tests and reports.
func (d *Disk) Files() map[string]int64 {
	out := map[string]int64{}
	var walk func(dir string)
	walk = func(dir string) {
		names, _ := d.mem.List(dir)
		for _, name := range names {
			p := d.mem.PathJoin(dir, name)
			if st, err := d.mem.Stat(p); err == nil {
				if st.IsDir() {
					walk(p)
				} else {
					out[p] = st.Size()
				}
			}
		}
	}
	walk("/")
	return out
}
