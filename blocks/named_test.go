package blocks

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestSessionNamedPeers: a session naming a peer (SessionOptions.Peers:
// a contact's device that shared a blob) fetches a block from it though
// no asker names it, and a connected outsider gets no want for it; once
// the session is over, the named peer may be asked for nothing.
func TestSessionNamedPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		fetcher, stop := mockServer(t, mn)
		defer stop()
		sharer, stopS := mockServer(t, mn)
		defer stopS()
		outsider := newRawPeer(t, mn)
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		shared := randomBlock(t, 4096)
		if err := sharer.ex.Put(t.Context(), shared); err != nil {
			t.Fatal(err)
		}
		sharer.ex.Gate().Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool { return p == fetcher.host.ID() && c == shared.Cid() }))
		quiesce()

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		sess := fetcher.ex.NewSession(ctx, SessionOptions{Peers: []peer.ID{sharer.host.ID()}})
		got, err := sess.GetBlocks(ctx, []cid.Cid{shared.Cid()})
		sess.Close()
		if err != nil {
			t.Fatalf("fetch from the named peer: %v", err)
		}
		if st := sess.Stats(); st.Peers[sharer.host.ID()].Blocks != 1 || string(got[0].RawData()) != string(shared.RawData()) {
			t.Errorf("stats %+v, want the block delivered by the named peer", st)
		}
		quiesce()
		if w := outsider.received()[shared.Cid()]; len(w) != 0 {
			t.Errorf("the outsider received %v; want nothing", w)
		}
		if fetcher.ex.Gate().MayAsk(sharer.host.ID(), shared.Cid()) {
			t.Errorf("the named peer may still be asked after the session")
		}
	})
}
