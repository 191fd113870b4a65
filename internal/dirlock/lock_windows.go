//go:build windows

package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/windows"
)

// Lock takes an exclusive, non-blocking lock on the first byte past the
// PID of path and writes the PID into it. Windows drops the lock when the
// process dies.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	ol := new(windows.Overlapped)
	ol.Offset = 1 << 20
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, fmt.Errorf("%w%s: %s", ErrLocked, lockedBy(path), filepath.Dir(path))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func Unlock(f *os.File) error {
	ol := new(windows.Overlapped)
	ol.Offset = 1 << 20
	err := windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
	return errors.Join(err, f.Close())
}
