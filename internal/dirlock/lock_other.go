//go:build !unix && !windows

package dirlock

import (
	"fmt"
	"os"
	"runtime"
)

// Lock fails: this system has no file locks exopeer knows how to take,
// and running two nodes on one data dir would corrupt it.
func Lock(path string) (*os.File, error) {
	return nil, fmt.Errorf("lock %s: file locking is not supported on %s", path, runtime.GOOS)
}

func Unlock(f *os.File) error { return f.Close() }
