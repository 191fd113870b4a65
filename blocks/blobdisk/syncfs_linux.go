package blobdisk

import (
	"os"

	"golang.org/x/sys/unix"
)

// haveSyncfs: this system syncs one file system at a time (syncfs(2)), so
// blob blocks are written without an fsync each.
const haveSyncfs = true

// syncfs flushes every dirty page and inode of the file system that holds
// the open directory f. Linux ≥ 5.8 also reports a writeback error met
// since f was opened or since the last call on f, whoever else saw it
// first: so f stays open for the whole run. A variable, for tests.
var syncfs = func(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}

// syncDir makes dir's entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
