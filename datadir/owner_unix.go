//go:build unix

package datadir

import (
	"io/fs"
	"os"
	"syscall"
)

// ownerOther returns the owner of fi and whether that is another user than
// this process's.
func ownerOther(fi fs.FileInfo) (uid int, other bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	uid = int(st.Uid)
	return uid, uid != os.Geteuid()
}
