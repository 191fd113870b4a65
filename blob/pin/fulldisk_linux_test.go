package pin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	blockformat "github.com/ipfs/go-block-format"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/datadir"
)

// fullDiskEnv, set in the re-executed test binary, names the directory on
// which it mounts the small file system; fullDiskSize is that file
// system's size.
const (
	fullDiskEnv  = "EXOPEER_PIN_FULLDISK_DIR"
	fullDiskSize = 12 << 20
)

// TestDiskFullMidImport fills a real file system during an import: a
// tmpfs of 12 MiB, mounted in a new user and mount namespace by this test
// binary run again (nothing outside sees it; it goes with the process).
// There a data dir holds a pinned blob; an import of 32 MiB through a
// Holding into the data dir's flatfs fails with an error wrapping ENOSPC;
// the data dir then opens again, every block of the pinned blob reads
// back, and a collection frees the blocks the import left, after which an
// import fits again. Skipped where user namespaces are not allowed (or
// failed, with NETNSTEST_REQUIRE=1, as in CI).
func TestDiskFullMidImport(t *testing.T) {
	if dir := os.Getenv(fullDiskEnv); dir != "" {
		fullDiskChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDiskFullMidImport$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fullDiskEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		why := fmt.Sprintf("cannot run a test in a new user and mount namespace: %v", err)
		if os.Getenv("NETNSTEST_REQUIRE") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	if testing.Verbose() || err != nil {
		t.Logf("in the namespace:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("the test in the namespace failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestDiskFullMidImport") {
		t.Fatal("the test in the namespace did not pass")
	}
}

// fullDiskChild is the test, in the namespace.
func fullDiskChild(t *testing.T, dir string) {
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(fullDiskSize)+",mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	defer syscall.Unmount(dir, 0)
	ctx := t.Context()
	data := filepath.Join(dir, "exopeer")
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	d, err := datadir.OpenDir(data)
	if err != nil {
		t.Fatal(err)
	}
	open := func() (*blocks.Store, *Pins) {
		s := blocks.NewStoreWith(d.Datastore, d.Blobs)
		return s, New(d.Datastore, s, nil)
	}
	s, pins := open()
	e := &env{store: s, pins: pins, rng: rng}

	kept := e.newDAG(t, 3, 64<<10) // about 600 KiB, pinned
	if err := s.PutOwn(ctx, kept.all); err != nil {
		t.Fatal(err)
	}
	if err := pins.Pin(ctx, kept.root, "manual"); err != nil {
		t.Fatal(err)
	}

	// The import: 1 MiB leaves, four to a batch, written through a
	// Holding as blob.Import writes them, until the disk is full.
	h := pins.Holding(ownPutter{s})
	var written int
	var importErr error
	for i := 0; i < 32 && importErr == nil; i += 4 {
		batch := make([]blockformat.Block, 4)
		for j := range batch {
			leaf := make([]byte, 1<<20)
			for k := 0; k < len(leaf); k += 8 {
				v := rng.Uint64()
				for b := range 8 {
					leaf[k+b] = byte(v >> (8 * b))
				}
			}
			batch[j] = blocks.NewBlock(leaf)
		}
		if importErr = h.PutMany(ctx, batch); importErr == nil {
			written += len(batch)
		}
	}
	if !errors.Is(importErr, syscall.ENOSPC) {
		t.Fatalf("import of 32 MiB on a %d MiB disk: err = %v, want one wrapping ENOSPC", fullDiskSize>>20, importErr)
	}
	t.Logf("the import failed after %d leaves: %v", written, importErr)
	if !strings.Contains(importErr.Error(), "no space left on device") {
		t.Errorf("error %q does not say the disk is full", importErr)
	}
	h.Release() // the import gives up; its root was never pinned
	if err := d.Close(); err != nil {
		t.Fatalf("closing the data dir on a full disk: %v", err)
	}

	// The data dir opens again; the pinned blob reads back; a collection
	// frees the import's blocks.
	if d, err = datadir.OpenDir(data); err != nil {
		t.Fatalf("reopening the data dir after the disk filled: %v", err)
	}
	defer d.Close()
	s, pins = open()
	e = &env{store: s, pins: pins, rng: rng}
	for _, b := range kept.all {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("pinned block %s after the disk filled: %v", b.Cid(), err)
		}
	}
	before, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pins.GC(ctx)
	if err != nil {
		t.Fatalf("GC on the full disk: %v", err)
	}
	if st.Deleted != before.Blocks-int64(len(kept.all)) || st.Deleted < int64(written) || st.Kept != int64(len(kept.all)) {
		t.Errorf("GC = %+v with %+v stored, %d pinned and %d written by the import; want the import's blocks deleted", st, before, len(kept.all), written)
	}
	e.wantHeld(t, "pinned", true, kept.all...)
	// The space is back: the same import (a smaller one) fits.
	more := e.newDAG(t, 2, 1<<20)
	if err := s.PutOwn(ctx, more.all); err != nil {
		t.Fatalf("an import of 4 MiB after the collection: %v", err)
	}
}

// ownPutter writes with PutOwn, as an import does.
type ownPutter struct{ s *blocks.Store }

func (p ownPutter) PutMany(ctx context.Context, bs []blockformat.Block) error {
	return p.s.PutOwn(ctx, bs)
}
