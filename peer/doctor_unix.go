//go:build linux || darwin

package peer

import (
	"syscall"

	"github.com/exopeer/exopeer/doctor"
)

// diskOf is the free and total space of the file system holding dir.
func diskOf(dir string) doctor.Disk {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return doctor.Disk{Path: dir, Err: err.Error()}
	}
	return diskFrom(dir, &st)
}

// diskFrom is the space st counts: blocks available to an unprivileged
// user (Bavail) and in all, each of unitOf(st) bytes.
func diskFrom(dir string, st *syscall.Statfs_t) doctor.Disk {
	u := unitOf(st)
	return doctor.Disk{Path: dir, Free: st.Bavail * u, Total: st.Blocks * u}
}
