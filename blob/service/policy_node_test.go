package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
)

// TestPolicyNone: a device with policy none keeps no file, reads one on
// demand (only the leaves under the range come in), keeps it when pinned
// by hand and drops it when unpinned; a removed file loses its pins on
// every device and a collection frees its blocks.
func TestPolicyNone(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 81)
	b := nodetest.Join(t, a, 82, cell.RoleChain|cell.RoleStore, policy(service.PolicyNone))
	data := content(6, 6<<20+5)
	f, err := a.Blobs().AddFileReader(ctx, "film.mp4", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := waitFile(t, a, f.ID.String(), nil).Held
	onB := waitFile(t, b, "film.mp4", nil)
	if onB.Pinned || onB.Held != 0 || onB.MediaType != "video/mp4" {
		t.Fatalf("on a device with policy none: %+v", onB)
	}
	// On demand: a range of 1 MiB fetches the leaves under it (two at
	// most) and the root.
	checkRange(t, b, f.Cap, data, 3<<20+100, 1<<20)
	got, err := b.Blobs().File(ctx, f.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Held == 0 || got.Held > 2*(1<<20)+(1<<20)/2 || got.Pinned {
		t.Errorf("after reading 1 MiB: holds %d of %d bytes, pinned %v", got.Held, full, got.Pinned)
	}
	if rs := reasons(t, b, f.Cap.Root); rs != nil {
		t.Errorf("read on demand, yet pinned for %v", rs)
	}

	// Pinned by hand: kept and fetched whole.
	if err := b.Blobs().PinFile(ctx, "film.mp4"); err != nil {
		t.Fatal(err)
	}
	waitFile(t, b, f.ID.String(), func(f service.File) bool { return f.Pinned && f.Held == full })
	if _, err := b.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, b, f.ID.String(), nil); got.Held != full {
		t.Errorf("a collection took a pinned file's blocks: holds %d of %d", got.Held, full)
	}
	// Unpinned by hand: the next collection takes it.
	if err := b.Blobs().UnpinFile(ctx, f.ID.String()); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, b, f.ID.String(), nil); got.Pinned {
		t.Errorf("unpinned, yet %+v", got)
	}
	if _, err := b.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := waitFile(t, b, f.ID.String(), nil); got.Held != 0 {
		t.Errorf("unpinned and collected, yet holds %d", got.Held)
	}

	// Removed on b: unpinned on a, whose next collection frees it.
	if err := b.Blobs().RemoveFile(ctx, "film.mp4"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 60*time.Second, "a unpinning the removed file", func() bool {
		return reasons(t, a, f.Cap.Root) == nil
	})
	if _, err := a.Blobs().File(ctx, f.ID.String()); !errors.Is(err, service.ErrNoFile) {
		t.Errorf("File of a removed file: %v, want ErrNoFile", err)
	}
	st, err := a.Blobs().GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Freed < full || usage(t, a) != 0 {
		t.Errorf("GC after removal freed %d of %d bytes; %d left", st.Freed, full, usage(t, a))
	}
}

// TestFetchResumes: a fetch cut short keeps what it got, pinned "fetch",
// through a collection; the next fetch takes only the rest, and reports
// progress with its totals and the peer that sent each block.
func TestFetchResumes(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 83)
	b := nodetest.Join(t, a, 84, cell.RoleChain, policy(service.PolicyNone))
	data := content(7, 9<<20)
	im, err := a.Blobs().AddBlob(ctx, bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A read brings some leaves in; then a fetch is cut after the root.
	checkRange(t, b, im.Cap, data, 3<<20+5, 1<<20)
	before := usage(t, b)
	cut, cancel := context.WithCancel(ctx)
	defer cancel()
	var first service.Progress
	err = b.Blobs().Fetch(cut, im.Cap, func(pr service.Progress) {
		if pr.Blocks == 1 {
			first = pr
			cancel()
		}
	})
	if err == nil {
		t.Fatal("a cancelled fetch succeeded")
	}
	if first.TotalBytes != im.Bytes {
		t.Errorf("total bytes %d, want the DAG's %d", first.TotalBytes, im.Bytes)
	}
	if rs := reasons(t, b, im.Cap.Root); !slices.Equal(rs, []string{service.ReasonFetch}) {
		t.Errorf("an interrupted fetch pinned for %v, want fetch", rs)
	}
	if _, err := b.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	held := usage(t, b)
	if held != before || held >= im.Bytes {
		t.Errorf("after the cut and a collection %d bytes held, %d before; the blob has %d", held, before, im.Bytes)
	}

	var mu sync.Mutex
	var last service.Progress
	if err := b.Blobs().Fetch(ctx, im.Cap, func(pr service.Progress) {
		mu.Lock()
		defer mu.Unlock()
		last = pr
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last.Blocks != int64(im.Blocks) || last.TotalBlocks != int64(im.Blocks) || last.Bytes != im.Bytes || last.TotalBytes != im.Bytes {
		t.Errorf("final progress %+v, want %d blocks, %d bytes", last, im.Blocks, im.Bytes)
	}
	fromA := last.Peers[a.ID().String()]
	if len(last.Peers) != 1 || fromA.Bytes != im.Bytes-held {
		t.Errorf("fetched %+v from peers; want only the %d bytes not held, from a", last.Peers, im.Bytes-held)
	}
	if rs := reasons(t, b, im.Cap.Root); rs != nil {
		t.Errorf("a finished fetch still pinned for %v", rs)
	}
	checkRange(t, b, im.Cap, data, 0, len(data))
}

// TestDiskBudget: past its disk budget a node collects by itself what no
// pin keeps (after a fetch, and every Check), and keeps what is pinned.
func TestDiskBudget(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 85)
	b := nodetest.Join(t, a, 86, cell.RoleChain, policy(service.PolicyNone), func(o *p.Options) {
		o.Files.DiskBudget = 1 << 20
		o.Files.Check = time.Second // and periodically, should a check after the fetch come too soon
	})
	kept, err := b.Blobs().AddBlob(ctx, bytes.NewReader(content(8, 512<<10)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	im, err := a.Blobs().AddBlob(ctx, bytes.NewReader(content(9, 3<<20)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Blobs().Fetch(ctx, im.Cap, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "b collecting past its budget", func() bool {
		u := usage(t, b)
		if u < kept.Bytes {
			t.Fatalf("b holds %d bytes, less than the %d of its pinned blob", u, kept.Bytes)
		}
		return u == kept.Bytes
	})
	checkRange(t, b, kept.Cap, content(8, 512<<10), 0, 512<<10)
}

// TestBudgetCountsTheBlobsSize: a member writes an exo.file whose size
// lies (1 KiB for a blob of 12 MiB). A device with a budget of 8 MiB
// counts the size the blob's root gives once it holds that root: it does
// not keep the file (its fetch stops, and a collection frees what came),
// while an honest file of 3 MiB, which fits, is kept.
func TestBudgetCountsTheBlobsSize(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 85)
	b := nodetest.Join(t, a, 86, cell.RoleChain|cell.RoleStore, func(o *p.Options) {
		o.Files.Policy = service.PolicyBudget
		o.Files.PinBudget = 8 << 20
	})
	big, err := a.Blobs().AddBlob(ctx, bytes.NewReader(content(8, 12<<20)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(map[string]any{"name": "liar.bin", "size": 1024, "cap": big.Cap.String(), "added": time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.NewEntityID(bytes.NewReader(content(10, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store().Put(ctx, id, []store.Trait{{Type: service.FileType, Doc: doc}}); err != nil {
		t.Fatal(err)
	}
	honest, err := a.Blobs().AddFileReader(ctx, "honest.bin", bytes.NewReader(content(9, 3<<20)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := waitFile(t, a, honest.ID.String(), nil).Held
	waitFile(t, b, honest.ID.String(), func(f service.File) bool { return f.Pinned && f.Held == want })
	// The liar: fetched as far as its root, then unpinned for its true size.
	nodetest.Eventually(t, 60*time.Second, "b dropping the file whose entity lies about its size", func() bool {
		f, err := b.Blobs().File(ctx, id.String())
		if err != nil || f.Pinned {
			return false
		}
		has, err := b.Blocks().Has(ctx, big.Cap.Root)
		return err == nil && has
	})
	if _, err := b.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := usage(t, b); got != want {
		t.Errorf("b holds %d blob bytes after a collection, want the honest file's %d", got, want)
	}
}
