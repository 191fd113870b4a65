//go:build unix

package peer

import "syscall"

// fdBudget is the file descriptors libp2p may use: half the process's
// limit, as libp2p's own auto-scaling takes. 0 if unknown.
func fdBudget() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return int(min(l.Cur, 1<<20) / 2)
}
