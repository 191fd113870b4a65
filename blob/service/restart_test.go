package service_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestFetchResumesAtStart: a fetch interrupted when its node stops is
// taken up again by the node's next start, in the background, without
// anyone asking: what it held is read locally, the rest fetched, and the
// "fetch" pin goes once it is whole.
func TestFetchResumesAtStart(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 87)
	var opts p.Options
	b := nodetest.Join(t, a, 88, cell.RoleChain, policy(service.PolicyNone), func(o *p.Options) { opts = *o })
	data := content(12, 5<<20+77)
	im, err := a.Blobs().AddBlob(ctx, bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b = cutAndRestart(t, b, opts, im.Cap)
	if rs := reasons(t, b, im.Cap.Root); !slices.Equal(rs, []string{service.ReasonFetch}) {
		t.Fatalf("after the restart pinned for %v, want fetch", rs)
	}
	nodetest.Eventually(t, 60*time.Second, "the restarted node finishing the fetch", func() bool {
		return reasons(t, b, im.Cap.Root) == nil
	})
	if got := usage(t, b); got != im.Bytes {
		t.Errorf("after the resumed fetch %d bytes held, want the blob's %d", got, im.Bytes)
	}
	checkRange(t, b, im.Cap, data, 0, len(data))
}

// TestFolderFetchResumesAtStart: a fetch of a folder interrupted when its
// node stops is taken up at the next start with the folder's entries too,
// not only its listing: the restarted node (policy none: only the
// resumed fetch wants the folder) ends up holding the whole tree.
func TestFolderFetchResumesAtStart(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 89)
	var opts p.Options
	b := nodetest.Join(t, a, 90, cell.RoleChain, policy(service.PolicyNone), func(o *p.Options) { opts = *o })
	dir := filepath.Join(t.TempDir(), "album")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{1<<20 + 5, 2<<20 + 7} {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i, ".jpg")), content(uint64(20+i), n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	added, err := a.Blobs().AddFiles(ctx, []string{dir}, service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := added[0]
	full := waitFile(t, a, f.ID.String(), nil).Held
	waitFile(t, b, f.ID.String(), nil)
	b = cutAndRestart(t, b, opts, f.Cap)
	nodetest.Eventually(t, 30*time.Second, "the restarted node holding the whole folder", func() bool {
		g, err := b.Blobs().File(ctx, f.ID.String())
		return err == nil && g.Held == full
	})
}

// TestCloseWaitsForFetch: Close ends a fetch under way (of a block
// nobody holds, with its caller's context alive: on its own it would
// never end), so that nothing of it touches the datastore or the pins
// after the node closes them. Close waits for the fetch's work; the
// caller's goroutine then takes the fetch's return a moment later, so
// the test waits for it, bounded, rather than asking at once (under the
// race detector the goroutine had not yet run when Close returned).
func TestCloseWaitsForFetch(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 91)
	h, err := mh.Sum([]byte("held by nobody"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := blob.Capability{Root: cid.NewCidV1(cid.Raw, h), Key: blob.Key{1}}
	done := make(chan error, 1)
	go func() { done <- a.Blobs().Fetch(ctx, c, nil) }()
	nodetest.Eventually(t, 30*time.Second, "the fetch pinned", func() bool {
		return slices.Equal(reasons(t, a, c.Root), []string{service.ReasonFetch})
	})
	if err := a.Blobs().Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the fetch under way did not end when Close returned")
	}
}

// cutAndRestart starts a fetch of c on b, cancels it once the first block
// has come, stops b and starts it again from opts (its data dir kept).
func cutAndRestart(t *testing.T, b *p.Node, opts p.Options, c blob.Capability) *p.Node {
	t.Helper()
	cut, cancel := context.WithCancel(t.Context())
	err := b.Blobs().Fetch(cut, c, func(pr service.Progress) {
		if pr.Blocks == 1 {
			cancel()
		}
	})
	cancel()
	if err == nil {
		t.Fatal("a cancelled fetch succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return nodetest.Start(t, opts)
}
