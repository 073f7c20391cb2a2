package sim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Disk is a node's simulated disk: Pebble's crashable in-memory filesystem
// behind an errorfs injector, seen by each incarnation of the node through a
// view of its own.
//
// Every fault decision is a hash of (seed, node, incarnation, path, kind of
// operation, index of that operation on that path), never a draw from a
// shared random stream, and each incarnation counts its own operations. A
// crashed incarnation's leftover goroutines (Pebble's) can therefore not shift
// the decisions of the next one, and a path used by one goroutine sees the
// same faults however the others interleave.
type Disk struct {
	n    *Node
	view *diskView // the running (or last) incarnation's

	mu             sync.Mutex // Pebble's goroutines read the knobs too
	writeErrorRate float64
	readErrorRate  float64
	syncLatency    time.Duration
	tornPercent    int
	injected       uint64
	// corrupted is set by Corrupt, cleared by Repaired (scheduler only).
	corrupted bool
}

func newDisk(n *Node) *Disk {
	return &Disk{n: n, view: newDiskView(nil, 0, vfs.NewCrashableMem())}
}

// SetErrorRates sets the probabilities that a write (write, sync, create,
// rename, remove, ...) or a read fails with an injected I/O error.
func (d *Disk) SetErrorRates(write, read float64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeErrorRate, d.readErrorRate = write, read
}

// SetSyncLatency sets the mean virtual time a sync takes when a task of the
// node calls it directly; the task pays it at its next wait. Pebble syncs
// its WAL on a goroutine of its own, which is outside virtual time: see the
// README, "How the simulator works".
func (d *Disk) SetSyncLatency(mean time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncLatency = mean
}

// SetTornPercent sets, for crashes, the chance that each unsynced 4 KiB block
// of a file, or each unsynced directory entry, survives anyway. Zero keeps
// exactly the synced state.
func (d *Disk) SetTornPercent(pct int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tornPercent = pct
}

// HealErrors stops injecting I/O errors; latency stays.
func (d *Disk) HealErrors() { d.SetErrorRates(0, 0) }

// Injected is the number of I/O errors injected so far.
func (d *Disk) Injected() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.injected
}

// mount gives a new incarnation its view of the disk as the last crash left it.
func (d *Disk) mount() {
	d.view = newDiskView(d, d.n.inc, d.view.mem)
}

// crash replaces the disk's contents with what a crash leaves.
func (d *Disk) crash() {
	d.mu.Lock()
	pct := d.tornPercent
	d.mu.Unlock()
	v := d.view
	v.mu.Lock()
	dirty := make(map[string]bool, len(v.dirty))
	for p := range v.dirty {
		dirty[p] = true
	}
	v.mu.Unlock()
	mem := tornClone(v.mem, dirty, pct, mix(d.n.s.seed, uint64(d.n.id), uint64(d.n.inc), 0x70726e))
	d.view = newDiskView(d, d.n.inc, mem) // read-only until the next mount
}

// diskView is one incarnation's filesystem: an errorfs injector with its own
// operation counters, and a record of which names changed since their
// directory was last synced.
type diskView struct {
	d   *Disk
	inc uint32
	mem *vfs.MemFS
	fs  vfs.FS

	mu  sync.Mutex
	ops map[opKey]uint64
	// dirs holds the directories opened with OpenDir.
	dirs map[string]bool
	// dirty holds the paths whose directory entry changed (created,
	// renamed, linked, removed) since their parent directory's last sync:
	// after a crash such a name may point to its old file, to its new one,
	// or (if new) to nothing.
	dirty map[string]bool
}

type opKey struct {
	path string
	kind errorfs.OpKind
}

func newDiskView(d *Disk, inc uint32, mem *vfs.MemFS) *diskView {
	v := &diskView{d: d, inc: inc, mem: mem, ops: map[opKey]uint64{}, dirs: map[string]bool{}, dirty: map[string]bool{}}
	v.fs = namesFS{FS: errorfs.Wrap(mem, v), v: v}
	return v
}

// String implements errorfs.Injector.
func (v *diskView) String() string { return "sim disk" }

// MaybeError implements errorfs.Injector: it decides, per operation, whether
// the operation fails, and charges sync latency to the calling task.
func (v *diskView) MaybeError(op errorfs.Op) error {
	d := v.d
	d.mu.Lock()
	faulty := d.writeErrorRate > 0 || d.readErrorRate > 0 || d.syncLatency > 0
	d.mu.Unlock()
	if !faulty {
		return nil
	}
	// Only operations whose number is fixed by what the tasks did may be
	// counted and judged; judging any other would make the same seed fail
	// differently. Those are the operations a task of this incarnation
	// makes itself, and those Pebble's goroutines make while such a task
	// runs: with storage.Options.Deterministic, a flush or compaction runs
	// only while the task that started it waits, and the write-ahead log's
	// syncs happen once per synced commit, while the committing task waits.
	// Not counted: the log writer's plain writes (how many depends on when
	// it wakes), closes (Pebble's file cache closes files on a goroutine of
	// its own), and anything while another node's task runs or no task does
	// (a crashed incarnation's goroutines).
	t := d.n.s.runningTask.Load()
	if t == nil || t.node != d.n || t.inc != v.inc {
		return nil
	}
	onTask := d.n.s.runningGoid.Load() == goid()
	log := strings.HasSuffix(op.Path, ".log")
	if !onTask && (op.Kind == errorfs.OpFileClose || log && !isSync(op.Kind)) {
		return nil
	}
	k := opKey{op.Path, op.Kind}
	if log && !onTask {
		// Counted across log files: which file number a log gets, and
		// whether Pebble recycles an old one, depends on when its flushes
		// finish; the sequence of synced commits does not.
		k.path = "(write-ahead log)"
	}
	v.mu.Lock()
	idx := v.ops[k]
	v.ops[k] = idx + 1
	v.mu.Unlock()
	d.mu.Lock()
	wr, rd, lat := d.writeErrorRate, d.readErrorRate, d.syncLatency
	switch {
	case onTask && log:
		// A task touches a write-ahead log only to rotate it (a flush):
		// Pebble meets an error there with a panic that unlocks a mutex it
		// does not hold, a fatal error no recover() stops. The log's syncs
		// for commits, on Pebble's log writer, still fail as drawn.
		wr, rd = 0, 0
	case v.isDir(op.Path):
		// Pebble panics on a failed directory sync wherever it happens
		// (fsync errors are unrecoverable), on its own goroutines too:
		// right for a server, whose process dies, but a panic no recover()
		// reaches ends the whole simulation. Directories never fail; the
		// files in them (the MANIFEST included) do.
		wr, rd = 0, 0
	}
	d.mu.Unlock()

	h := mix(d.n.s.seed, uint64(d.n.id), uint64(v.inc), strHash(k.path), uint64(op.Kind), idx)
	if d.n.s.tracew != nil {
		// Into the trace file (not its hash): when two runs of a seed
		// diverge, the first operation judged differently is the lead.
		d.n.s.traceDisk(d.n.id, onTask, k.path, op.Kind, idx)
	}
	rate := rd
	if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		rate = wr
	}
	if rate > 0 && unit(h) < rate {
		d.mu.Lock()
		d.injected++
		d.mu.Unlock()
		return errorfs.ErrInjected
	}
	if lat > 0 && isSync(op.Kind) {
		// The sync is billed to the running task: it made it, or (a log
		// sync on Pebble's log writer goroutine) it waits for it to finish
		// its synced commit.
		t.owed += int64(float64(lat) * expFromUnit(unit(mix(h, 0x5ca1ab1e))))
	}
	return nil
}

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}

func canon(p string) string { return path.Clean("/" + p) }

func (v *diskView) isDir(p string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.dirs[canon(p)]
}

func (v *diskView) markDirty(names ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range names {
		v.dirty[canon(n)] = true
	}
}

// synced records a directory sync: its entries now are the durable ones.
func (v *diskView) synced(dir string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	dir = canon(dir)
	for p := range v.dirty {
		if path.Dir(p) == dir {
			delete(v.dirty, p)
		}
	}
}

// namesFS tracks directory-entry changes on their way to errorfs.
type namesFS struct {
	vfs.FS
	v *diskView
}

func (fs namesFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	fs.v.markDirty(name) // Create replaces any file of that name
	return fs.FS.Create(name, c)
}

func (fs namesFS) Link(oldname, newname string) error {
	fs.v.markDirty(newname)
	return fs.FS.Link(oldname, newname)
}

func (fs namesFS) Rename(oldname, newname string) error {
	fs.v.markDirty(oldname, newname)
	return fs.FS.Rename(oldname, newname)
}

func (fs namesFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	fs.v.markDirty(oldname, newname)
	return fs.FS.ReuseForWrite(oldname, newname, c)
}

func (fs namesFS) Remove(name string) error {
	if fs.v.d != nil && fs.v.d.n.s.runningGoid.Load() != goid() {
		// A library's own goroutine (Pebble's cleanup of obsolete files)
		// deletes at wall-clock-dependent moments, so what a crash finds
		// would differ between two runs of a seed. The simulated disk keeps
		// such files: the library must cope with obsolete files being there,
		// as it must after any crash.
		return nil
	}
	fs.v.markDirty(name)
	return fs.FS.Remove(name)
}

func (fs namesFS) RemoveAll(name string) error {
	fs.v.markDirty(name)
	return fs.FS.RemoveAll(name)
}

func (fs namesFS) MkdirAll(dir string, perm os.FileMode) error {
	for p := canon(dir); p != "/"; p = path.Dir(p) {
		fs.v.markDirty(p)
	}
	return fs.FS.MkdirAll(dir, perm)
}

func (fs namesFS) OpenDir(name string) (vfs.File, error) {
	fs.v.mu.Lock()
	fs.v.dirs[canon(name)] = true
	fs.v.mu.Unlock()
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return dirFile{File: f, v: fs.v, name: name}, nil
}

// dirFile notices when a directory is synced.
type dirFile struct {
	vfs.File
	v    *diskView
	name string
}

func (f dirFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.v.synced(f.name)
	}
	return err
}

// ErrTorn wraps a failure to build the torn image of a disk: a bug in the
// simulator, never in the component under test.
var ErrTorn = errors.New("sim: cannot build torn disk image")

// tornClone is Pebble's MemFS.CrashClone made deterministic. CrashClone draws
// its random numbers while ranging over Go maps, so which file gets which
// draw changes from run to run; here every decision hashes the path (and
// block index) instead.
//
// It starts from exactly the synced state, then:
//   - a file whose name did not change since its directory's last sync is
//     the same file before and after: each of its 4 KiB blocks written since
//     its last sync survives with probability pct%, as in CrashClone;
//   - a name that changed (or is new) either keeps its synced meaning or,
//     with probability pct%, takes the current file whole. CrashClone would
//     also tear that file's unsynced blocks, but our view cannot tell its
//     synced blocks from the rest, and tearing a synced block would be a lie;
//   - a write-ahead log (.log) keeps exactly its synced state. Pebble's log
//     writer goroutine writes unsynced commits to the file at moments of
//     wall-clock timing, so what had reached it by a crash differs from run
//     to run; its syncs, made while a committing task waits, do not.
//     Unsynced log tails are therefore always lost, never torn.
func tornClone(mem *vfs.MemFS, dirty map[string]bool, pct int, seed uint64) *vfs.MemFS {
	synced := mem.CrashClone(vfs.CrashCloneCfg{})
	if pct <= 0 {
		return synced
	}
	full := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(0, 0))})
	keep := func(words ...uint64) bool {
		return int(mix(append([]uint64{seed}, words...)...)%100) < pct
	}
	if err := tornDir(synced, full, "/", dirty, keep); err != nil {
		panic(errors.Join(ErrTorn, err))
	}
	return synced
}

func tornDir(out, full *vfs.MemFS, dir string, dirty map[string]bool, keep func(...uint64) bool) error {
	names, err := full.List(dir)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		p := canon(full.PathJoin(dir, name))
		st, err := full.Stat(p)
		if err != nil {
			return err
		}
		old, statErr := out.Stat(p)
		present := statErr == nil
		if st.IsDir() {
			if !present {
				if !keep(strHash(p), 0) {
					continue // the new directory's entry is lost
				}
				if err := out.MkdirAll(p, 0o755); err != nil {
					return err
				}
			} else if !old.IsDir() {
				continue
			}
			if err := tornDir(out, full, p, dirty, keep); err != nil {
				return err
			}
			continue
		}
		if present && old.IsDir() || strings.HasSuffix(p, ".log") {
			continue
		}
		cur, err := readAll(full, p)
		if err != nil {
			return err
		}
		if !present || dirty[p] {
			if keep(strHash(p), 0) {
				if err := writeSynced(out, p, cur); err != nil {
					return err
				}
			}
			continue
		}
		base, err := readAll(out, p)
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
	f, err := out.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
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
	mem := d.view.mem
	out := map[string]int64{}
	var walk func(dir string)
	walk = func(dir string) {
		names, _ := mem.List(dir)
		for _, name := range names {
			p := mem.PathJoin(dir, name)
			if st, err := mem.Stat(p); err == nil {
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

// Corrupted reports whether Corrupt flipped a bit since the disk was last
// Repaired.
func (d *Disk) Corrupted() bool { return d.corrupted }

// Repaired tells the disk that its node wiped the damaged data.
func (d *Disk) Repaired() { d.corrupted = false }

// Corrupt flips one bit of data the disk holds durably, as a crashed node's
// disk rots while it is down (TigerBeetle's storage fault model: a bit flip
// in a synced sector). It picks, with rng, one of the sstables under dir and
// a bit anywhere in it, and returns what it flipped ("" if there was nothing
// to corrupt). Call it only while the node is down.
//
// Only sstables: Pebble verifies their checksums on every read. A flipped
// bit in the last 32 KiB block of the live write-ahead log is replayed as a
// torn tail (its read-ahead for a later sync offset starts at the next
// block), and the MANIFEST has no sync offsets at all (cockroachdb/pebble
// #4560): both lose synced data silently, which this simulator showed
// (docs/consensus.md, "Storage faults beyond errors"). Until the storage
// layer guards them, flipping their bits would fail runs for a known gap.
func (d *Disk) Corrupt(rng *rand.Rand, dir string) string {
	if d.n.up {
		panic("sim: Disk.Corrupt on a running node")
	}
	mem := d.view.mem
	names, err := mem.List(dir)
	if err != nil {
		return ""
	}
	sort.Strings(names)
	var files []string
	var sizes []int64
	for _, name := range names {
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		p := mem.PathJoin(dir, name)
		if fi, err := mem.Stat(p); err == nil && fi.Size() > 0 {
			files = append(files, p)
			sizes = append(sizes, fi.Size())
		}
	}
	if len(files) == 0 {
		return ""
	}
	i := rng.IntN(len(files))
	off, bit := rng.Int64N(sizes[i]), byte(1)<<rng.IntN(8)
	f, err := mem.OpenReadWrite(files[i], vfs.WriteCategoryUnspecified)
	if err != nil {
		panic(err)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		panic(err)
	}
	b[0] ^= bit
	if _, err := f.WriteAt(b[:], off); err != nil {
		panic(err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		panic(err)
	}
	d.corrupted = true
	return fmt.Sprintf("%s byte %d of %d bit %#x", files[i], off, sizes[i], bit)
}
