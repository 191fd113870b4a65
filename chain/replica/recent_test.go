package replica_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/exopeer/exopeer/chain/replica"
)

// TestRecentCache: the entries a node appends are read back from the
// recent cache, up to its bound, and from disk beyond it, in one read
// that mixes both; a reader's or the writer's change to a payload does
// not change what the next reader gets; Tip is the arrival count and the
// last CID.
func TestRecentCache(t *testing.T) {
	ctx := t.Context()
	n := realNode(t, 40, t.TempDir(), replica.Config{})
	makeCell(t, n)
	r := n.Chain()
	count, _, err := r.Tip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := replica.RecentEntries + 5
	payloads := make([][]byte, total)
	for i := range payloads {
		payloads[i] = fmt.Appendf(nil, "payload %d", i)
	}
	es, err := r.AppendMany(ctx, payloads)
	if err != nil {
		t.Fatal(err)
	}
	if got := replica.RecentLen(r); got != replica.RecentEntries {
		t.Fatalf("recent cache holds %d entries, want its bound %d", got, replica.RecentEntries)
	}
	payloads[total-1][0] = 'X' // the writer's slice is not the cache's
	got, err := r.Arrivals(ctx, count, total)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("read %d arrivals, want %d", len(got), total)
	}
	for i, e := range got {
		want := fmt.Appendf(nil, "payload %d", i)
		if e.CID != es[i].CID || e.Index != count+uint64(i) || !bytes.Equal(e.Payload, want) || e.Author != es[i].Author || e.Pos != es[i].Pos {
			t.Fatalf("arrival %d: %s index %d %q, want %s index %d %q", i, e.CID, e.Index, e.Payload, es[i].CID, count+uint64(i), want)
		}
	}
	got[total-1].Payload[0] = 'Y' // nor is a reader's
	again, err := r.Arrivals(ctx, count+uint64(total-1), 1)
	if err != nil || len(again) != 1 || string(again[0].Payload) != fmt.Sprint("payload ", total-1) {
		t.Fatalf("read again: %v, %v", again, err)
	}
	tip, last, err := r.Tip(ctx)
	if err != nil || tip != count+uint64(total) || last != es[total-1].CID {
		t.Fatalf("Tip: %d %s %v, want %d %s", tip, last, err, count+uint64(total), es[total-1].CID)
	}
}
