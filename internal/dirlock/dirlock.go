// Package dirlock is the lock that keeps a second node off a data dir: an
// exclusive lock on a file (flock on Unix, LockFileEx on Windows) that the
// kernel drops when the process dies, so that a crash never leaves a stale
// lock. The holder writes its PID into the file.
//
// It is package datadir's, on its own so that the control API's client can
// tell whether a node runs on a dir without importing the rest of datadir
// (which parses multiaddrs and opens leveldb).
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked means another node holds the lock: it is running on the data
// dir.
var ErrLocked = errors.New("datadir: data dir is in use by another exopeer node")

// lockedBy names the holder of a lock file from the PID it wrote.
func lockedBy(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

// Free reports whether the lock at path is free, that is whether no node
// holds it; a missing file is free. It takes and releases the lock to find
// out.
func Free(path string) (bool, error) {
	if _, err := os.Stat(path); err != nil {
		return true, nil
	}
	f, err := Lock(path)
	if errors.Is(err, ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, Unlock(f)
}
