package peer

import "syscall"

// unitOf is the size of the blocks statfs counts: on macOS, f_bsize, the
// fundamental block size (it has no f_frsize).
func unitOf(st *syscall.Statfs_t) uint64 { return uint64(st.Bsize) }
