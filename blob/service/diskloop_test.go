package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// msgCounter counts the log records with one message.
type msgCounter struct {
	msg string
	n   *atomic.Int64
}

func (c msgCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c msgCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return nil
}
func (c msgCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c msgCounter) WithGroup(string) slog.Handler      { return c }

// TestDiskBudgetPinnedOver: when what the device keeps pinned alone is
// over its disk budget, a collection (which frees nothing) is not run
// again at every check: only once something more is stored or unpinned
// (then it is).
func TestDiskBudgetPinnedOver(t *testing.T) {
	ctx := t.Context()
	var n atomic.Int64
	a := nodetest.CellNode(t, 93, func(o *p.Options) {
		o.Files.DiskBudget = 256 << 10
		o.Files.Check = 50 * time.Millisecond
		o.Logger = slog.New(msgCounter{"blob blocks over the disk budget: collecting", &n})
	})
	f, err := a.Blobs().AddFileReader(ctx, "big.bin", bytes.NewReader(content(10, 1<<20)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // 40 checks
	if got := n.Load(); got > 3 {
		t.Errorf("%d collections in 2 s over a budget that pinned blocks alone exceed; want at most 3", got)
	}
	// Removed, it is collected at the next check.
	if err := a.Blobs().RemoveFile(ctx, f.ID.String()); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "the removed file collected", func() bool { return usage(t, a) == 0 })
}
