package peer

import "syscall"

// unitOf is the size of the blocks statfs counts: on Linux the fragment
// size, f_frsize (statfs(2)); f_bsize is the best transfer size, which
// may differ (NFS, some FUSE file systems). A file system that reports no
// fragment size counts in f_bsize.
func unitOf(st *syscall.Statfs_t) uint64 {
	if st.Frsize > 0 {
		return uint64(st.Frsize)
	}
	return uint64(st.Bsize)
}
