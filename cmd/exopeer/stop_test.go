package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/datadir"
)

// TestStopLeavesDirOfHungNode: a node that hangs on stop makes `exopeer run`
// give up after stopTimeout with an error, and the data dir stays open and
// locked under the hung node (its store is not closed under it, and no
// other node can take the dir) until the node really stops; then the dir is
// closed.
func TestStopLeavesDirOfHungNode(t *testing.T) {
	dir := loopbackDir(t)
	release := make(chan struct{})
	entered := make(chan struct{})
	stopHook = func() {
		close(entered)
		<-release
	}
	t.Cleanup(func() { stopHook = nil })

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"run", "--dir", dir}, &out, &errb) }()
	waitFor(t, 20*time.Second, "the node to start", func() bool { return strings.Contains(out.String(), "press Ctrl-C") })

	cancel()
	<-entered
	code := <-done // after stopTimeout: the hook holds the node
	if code != 1 || !strings.Contains(errb.String(), "did not stop within") {
		t.Errorf("run ended with exit %d: %s", code, errb.String())
	}
	d, err := datadir.OpenDir(dir)
	if err == nil {
		d.Close()
		t.Error("the data dir was closed and unlocked under the hung node")
	} else if !errors.Is(err, datadir.ErrLocked) {
		t.Errorf("OpenDir under the hung node: %v, want ErrLocked", err)
	}

	// The node stops at last: the dir is closed after it.
	close(release)
	waitFor(t, 20*time.Second, "the dir to be closed after the node", func() bool {
		d, err := datadir.OpenDir(dir)
		if err != nil {
			return false
		}
		return d.Close() == nil
	})
}

// TestRunMakesDataDirPrivate: `exopeer run` on an existing data dir that
// others can enter makes it and its datastore 0700 and says so.
func TestRunMakesDataDirPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := loopbackDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stop := runNode(t, dir)
	code, out := stop()
	if code != 0 || !strings.Contains(out, "made it private") || !strings.Contains(out, dir) {
		t.Errorf("run ended with %d, want a warning naming %s:\n%s", code, dir, out)
	}
	for _, p := range []string{dir, filepath.Join(dir, datadir.DatastoreDir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode = %04o, want 0700", p, fi.Mode().Perm())
		}
	}
}
