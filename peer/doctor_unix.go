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
	bs := uint64(st.Bsize)
	return doctor.Disk{Path: dir, Free: st.Bavail * bs, Total: st.Blocks * bs}
}
