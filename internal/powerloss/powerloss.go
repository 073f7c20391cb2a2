// Package powerloss is a test-only disk for real processes: a vfs.FS whose
// files keep what is written to them in the process's memory until it is
// synced, so that SIGKILL loses every unsynced write, as a power failure
// does to the OS's page cache. On a real file system a killed process loses
// nothing it wrote (the kernel still holds it), which hides bugs that
// acknowledge data before syncing it; the Jepsen harness runs its servers
// on this disk (orbit serve --test-faults) so that its kill nemesis bites
// like a power cut.
//
// Only appends (Write) are held back: that is how logs and sstables are
// written. A write at an offset (WriteAt), reading or inspecting the file,
// and closing it first hand the held bytes to the OS, so the process always
// sees its own writes, and a closed file is as durable as on the real file
// system (a narrower loss than a real power cut, which can also lose
// closed-but-unsynced files: enough to catch acknowledging before sync).
package powerloss

import (
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS wraps fs.
func FS(fs vfs.FS) vfs.FS { return lossyFS{fs} }

type lossyFS struct{ vfs.FS }

func (fs lossyFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return wrap(fs.FS.Create(name, category))
}

func (fs lossyFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return wrap(fs.FS.OpenReadWrite(name, category, opts...))
}

func (fs lossyFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return wrap(fs.FS.ReuseForWrite(oldname, newname, category))
}

func wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &file{File: f}, nil
}

// file holds appended bytes until a sync (or anything that must see them).
type file struct {
	vfs.File
	mu      sync.Mutex
	pending []byte
	err     error // a failed hand-over: reported by every later call
}

func (f *file) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.pending = append(f.pending, p...)
	return len(p), nil
}

// flush hands the held bytes to the OS. Call with f.mu held.
func (f *file) flushLocked() error {
	if f.err != nil {
		return f.err
	}
	for len(f.pending) > 0 {
		n, err := f.File.Write(f.pending)
		f.pending = f.pending[n:]
		if err != nil {
			f.err = err
			return err
		}
	}
	f.pending = nil
	return nil
}

func (f *file) flushed(fn func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.flushLocked(); err != nil {
		return err
	}
	return fn()
}

func (f *file) Sync() error     { return f.flushed(f.File.Sync) }
func (f *file) SyncData() error { return f.flushed(f.File.SyncData) }
func (f *file) Close() error    { return f.flushed(f.File.Close) }

func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	err = f.flushed(func() error {
		fullSync, err = f.File.SyncTo(length)
		return err
	})
	return fullSync, err
}

func (f *file) WriteAt(p []byte, off int64) (n int, err error) {
	err = f.flushed(func() error {
		n, err = f.File.WriteAt(p, off)
		return err
	})
	return n, err
}

func (f *file) Read(p []byte) (n int, err error) {
	err = f.flushed(func() error {
		n, err = f.File.Read(p)
		return err
	})
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (n int, err error) {
	err = f.flushed(func() error {
		n, err = f.File.ReadAt(p, off)
		return err
	})
	return n, err
}

func (f *file) Stat() (info vfs.FileInfo, err error) {
	err = f.flushed(func() error {
		info, err = f.File.Stat()
		return err
	})
	return info, err
}
