//go:build !linux

package blobdisk

import (
	"os"
	"runtime"
)

// haveSyncfs: without syncfs(2), flatfs syncs each block file (and its
// directory) as it writes it, and the syncer only records checkpoints.
const haveSyncfs = false

var syncfs = func(*os.File) error { return nil }

// syncDir makes dir's entries durable (not possible on Windows: a no-op).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
