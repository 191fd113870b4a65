package dirlock

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockAndFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	if free, err := Free(path); err != nil || !free {
		t.Fatalf("Free with no file = %v, %v; want free", free, err)
	}
	f, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if free, err := Free(path); err != nil || free {
		t.Errorf("Free while held = %v, %v; want not free", free, err)
	}
	_, err = Lock(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second Lock: %v, want ErrLocked naming this process", err)
	}
	if err := Unlock(f); err != nil {
		t.Fatal(err)
	}
	if free, err := Free(path); err != nil || !free {
		t.Errorf("Free after Unlock = %v, %v; want free", free, err)
	}
}
