// Package storage will hold Pebble opened on the runtime's vfs.FS, the key
// encoding, and the Raft log store (issue: replicated storage).
package storage
