package storage

import (
	"errors"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A damaged store: data that fails its checksums is never served, and
// never repaired in place. The node stops (a crash), its store refuses to
// open (ErrCorrupt), and an operator — the simulator's admin task, or `orbit
// node remove` then a wiped `--join` — removes the node's replicas from
// their ranges, wipes the store and adds the node back, so that its peers
// send it their data afresh (consensus.Tombstone keeps the old replicas'
// mail away from the new ones).

// damaged reports whether dir holds the damage marker, and its reason.
func damaged(fs vfs.FS, dir string) (string, bool) {
	f, err := fs.Open(fs.PathJoin(dir, damagedMarker))
	if err != nil {
		return "", false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return string(b), true
}

// markDamaged writes the damage marker, synced, best effort: a disk that
// fails this write fails the next checksum too.
func markDamaged(fs vfs.FS, dir, reason string) {
	f, err := fs.Create(fs.PathJoin(dir, damagedMarker), vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, err = f.Write([]byte(reason))
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return
	}
	if d, err := fs.OpenDir(dir); err == nil {
		_ = errors.Join(d.Sync(), d.Close())
	}
}

// Wipe deletes the store in dir, damaged or not, leaving an empty
// directory: the first step of rebuilding a node from its peers.
func Wipe(fs vfs.FS, dir string) error {
	if err := fs.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return fs.MkdirAll(dir, 0o755)
}
