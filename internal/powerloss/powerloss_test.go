package powerloss

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// onDisk is what the OS holds of path (what survives a SIGKILL).
func onDisk(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAppendsWaitForSync: appended bytes reach the OS only at a sync (or
// when the process itself reads or closes the file).
func TestAppendsWaitForSync(t *testing.T) {
	fs := FS(vfs.Default)
	path := filepath.Join(t.TempDir(), "log")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("synced ")); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path); got != "" {
		t.Fatalf("before any sync the OS holds %q, want nothing", got)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("unsynced")); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path); got != "synced " {
		t.Fatalf("after a sync and another write the OS holds %q, want %q", got, "synced ")
	}
	// The process sees its own writes.
	if info, err := f.Stat(); err != nil || info.Size() != int64(len("synced unsynced")) {
		t.Fatalf("Stat = %v, %v", info, err)
	}
	if _, err := f.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, path); got != "synced unsynced!" {
		t.Fatalf("after Close the OS holds %q", got)
	}
}

// TestSyncToAndSyncData hand everything over too.
func TestSyncToAndSyncData(t *testing.T) {
	fs := FS(vfs.Default)
	dir := t.TempDir()
	for name, sync := range map[string]func(vfs.File) error{
		"SyncData": func(f vfs.File) error { return f.SyncData() },
		"SyncTo":   func(f vfs.File) error { _, err := f.SyncTo(3); return err },
	} {
		path := filepath.Join(dir, name)
		f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte("abc"))
		if err := sync(f); err != nil {
			t.Fatal(err)
		}
		if got := onDisk(t, path); got != "abc" {
			t.Fatalf("%s: the OS holds %q", name, got)
		}
		f.Close()
	}
}
