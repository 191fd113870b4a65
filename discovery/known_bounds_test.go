package discovery

import (
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestKnownUnknownRedialWindow: while Interesting cannot judge the
// table's entries (a thin device that reaches no store member cannot read
// the contacts), a lost entry is redialled only if the table saw it
// within KnownUnknownRedial; one it accepts always is, one it refuses
// never is. Before, a device removed from the cell long ago was redialled
// for the 90 days its entry is kept.
func TestKnownUnknownRedialWindow(t *testing.T) {
	ctx := t.Context()
	d := dssync.MutexWrap(ds.NewMapDatastore())
	addr := mustAddr(t, "/ip4/11.213.0.7/tcp/4001")
	now := time.Now()
	recent, old := randomPeer(t), randomPeer(t)
	for id, seen := range map[peer.ID]time.Time{
		recent: now.Add(-KnownUnknownRedial + time.Hour),
		old:    now.Add(-KnownUnknownRedial - time.Hour),
	} {
		if err := d.Put(ctx, knownKey(id), encodeKnown(known{Addrs: []ma.Multiaddr{addr}, Seen: seen})); err != nil {
			t.Fatal(err)
		}
	}
	verdict := InterestUnknown
	cfg := testConfig()
	cfg.Known = d
	cfg.Interesting = func(peer.ID) Interest { return verdict }
	s := unstartedService(t, cfg)
	if _, err := s.loadKnown(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	for _, id := range []peer.ID{recent, old} {
		s.peers[id] = &entry{sources: []Source{SourceKnown}}
	}
	s.mu.Unlock()
	for _, tc := range []struct {
		v         Interest
		id        peer.ID
		keep      bool
		situation string
	}{
		{InterestUnknown, recent, true, "unjudged, seen within the window"},
		{InterestUnknown, old, false, "unjudged, seen before the window"},
		{InterestYes, old, true, "accepted, seen before the window"},
		{InterestNo, recent, false, "refused"},
	} {
		verdict = tc.v
		if got := s.keepKnown(tc.id); got != tc.keep {
			t.Errorf("%s: redialled %v, want %v", tc.situation, got, tc.keep)
		}
	}
}
