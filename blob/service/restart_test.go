package service_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

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
	cut, cancel := context.WithCancel(ctx)
	err = b.Blobs().Fetch(cut, im.Cap, func(pr service.Progress) {
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
	b = nodetest.Start(t, opts)
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
