package blocks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	leveldb "github.com/ipfs/go-ds-leveldb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// rawPeer speaks bitswap by hand on a mocknet host: it sends wantlists
// and records every block and block presence it receives, so that a test
// sees exactly what a server told it.
type rawPeer struct {
	host host.Host

	mu  sync.Mutex
	got map[cid.Cid][]string // what arrived about each CID: "block", "have", "dont-have", "want-have", "want-block", "cancel"
}

func newRawPeer(t *testing.T, mn mocknet.Mocknet) *rawPeer {
	t.Helper()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	rp := &rawPeer{host: h, got: make(map[cid.Cid][]string)}
	h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		defer s.Close()
		for {
			msg, _, err := bsmsg.FromNet(s)
			if err != nil {
				return
			}
			rp.record(msg)
		}
	})
	return rp
}

func (rp *rawPeer) record(msg bsmsg.BitSwapMessage) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, b := range msg.Blocks() {
		rp.got[b.Cid()] = append(rp.got[b.Cid()], "block")
	}
	for _, bp := range msg.BlockPresences() {
		what := "have"
		if bp.Type == pb.Message_DontHave {
			what = "dont-have"
		}
		rp.got[bp.Cid] = append(rp.got[bp.Cid], what)
	}
	for _, e := range msg.Wantlist() {
		what := "want-have"
		switch {
		case e.Cancel:
			what = "cancel"
		case e.WantType == pb.Message_Wantlist_Block:
			what = "want-block"
		}
		rp.got[e.Cid] = append(rp.got[e.Cid], what)
	}
}

// received returns what arrived so far, by CID.
func (rp *rawPeer) received() map[cid.Cid][]string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	out := make(map[cid.Cid][]string, len(rp.got))
	for c, w := range rp.got {
		out[c] = append([]string(nil), w...)
	}
	return out
}

// want is one wantlist entry of a rawPeer's request.
type want struct {
	c     cid.Cid
	block bool // want-block; false: want-have
}

// send sends one wantlist message to p, asking for DONT_HAVE answers.
func (rp *rawPeer) send(t *testing.T, p peer.ID, wants ...want) {
	t.Helper()
	msg := bsmsg.New(false)
	for i, w := range wants {
		typ := pb.Message_Wantlist_Have
		if w.block {
			typ = pb.Message_Wantlist_Block
		}
		msg.AddEntry(w.c, int32(len(wants)-i), typ, true)
	}
	s, err := rp.host.NewStream(t.Context(), p, ProtocolID)
	if err != nil {
		t.Fatalf("open bitswap stream: %v", err)
	}
	if err := msg.ToNetV1(s); err != nil {
		t.Fatalf("send wantlist: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close bitswap stream: %v", err)
	}
}

// mockServer is an Exchange on a mocknet host, serving blocks from an
// in-memory store. Inside a synctest bubble, t.Cleanup runs too late to
// stop the store's goroutines: the caller calls stop before returning.
func mockServer(t *testing.T, mn mocknet.Mocknet) (srv *node, stop func()) {
	t.Helper()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	d, err := leveldb.NewDatastore("", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(d)
	ex, err := NewExchange(h, s, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &node{host: h, store: s, ex: ex}, func() {
		if err := ex.Close(); err != nil {
			t.Errorf("closing exchange: %v", err)
		}
		if err := mn.Close(); err != nil {
			t.Errorf("closing mocknet: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("closing datastore: %v", err)
		}
		time.Sleep(time.Minute) // timers of stragglers fire
	}
}

// quiesce lets every message in flight arrive: a virtual minute (bitswap's
// send workers and mocknet's delivery run), then until every goroutine of
// the bubble is blocked.
func quiesce() {
	time.Sleep(time.Minute)
	synctest.Wait()
}

// TestGateRefusedPeerGetsNothing: a server holds blocks that its gate lets
// one peer (a member) read; another peer (an outsider) that knows their
// CIDs asks for them with want-have and want-block, DONT_HAVE requested,
// and gets no block, no HAVE and no DONT_HAVE: nothing that tells it the
// server holds them. Both get the block the gate makes public, which shows
// that the outsider's requests were served in all other respects.
func TestGateRefusedPeerGetsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		srv, stop := mockServer(t, mn)
		defer stop()
		member, outsider := newRawPeer(t, mn), newRawPeer(t, mn)
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}

		// 4 KiB: above bitswap's 1 KiB limit for answering a want-have
		// with the block itself, so a want-have gets a HAVE.
		secret, secretToo, public := randomBlock(t, 4096), randomBlock(t, 4096), randomBlock(t, 4096)
		missing := randomBlock(t, 64).Cid() // vouched for, never stored
		if err := srv.ex.PutMany(t.Context(), []blockformat.Block{secret, secretToo, public}); err != nil {
			t.Fatal(err)
		}
		srv.ex.Gate().Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool {
			return p == member.host.ID() && (c == secret.Cid() || c == secretToo.Cid() || c == missing)
		}))
		srv.ex.Gate().Register(OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return c == public.Cid() }))

		wants := []want{{secret.Cid(), false}, {secretToo.Cid(), true}, {missing, true}, {public.Cid(), true}}
		member.send(t, srv.host.ID(), wants...)
		outsider.send(t, srv.host.ID(), wants...)
		quiesce()

		wantMember := map[cid.Cid][]string{
			secret.Cid():    {"have"},
			secretToo.Cid(): {"block"},
			missing:         {"dont-have"},
			public.Cid():    {"block"},
		}
		if diff := cmp.Diff(wantMember, member.received()); diff != "" {
			t.Errorf("what the member received (-want +got):\n%s", diff)
		}
		wantOutsider := map[cid.Cid][]string{public.Cid(): {"block"}}
		if diff := cmp.Diff(wantOutsider, outsider.received()); diff != "" {
			t.Errorf("what the outsider received (-want +got):\n%s", diff)
		}
	})
}

// TestGateAsksOnlyAllowed: a node fetches a private block from the one
// peer its gate lets it ask for it (a member), and a public block through
// a public session, from a peer no asker names; a connected outsider,
// which speaks bitswap by hand, receives no want, want-have broadcast
// included, and no cancel for the private block, and does receive the
// public block's wants.
func TestGateAsksOnlyAllowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		fetcher, stop := mockServer(t, mn)
		defer stop()
		member, stopM := mockServer(t, mn)
		defer stopM()
		seeder, stopS := mockServer(t, mn)
		defer stopS()
		outsider := newRawPeer(t, mn)
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}

		private, public := randomBlock(t, 4096), randomBlock(t, 4096)
		if err := member.ex.Put(t.Context(), private); err != nil {
			t.Fatal(err)
		}
		if err := seeder.ex.Put(t.Context(), public); err != nil {
			t.Fatal(err)
		}
		member.ex.Gate().Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool { return p == fetcher.host.ID() && c == private.Cid() }))
		seeder.ex.Gate().Register(OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return c == public.Cid() }))
		fetcher.ex.Gate().RegisterAsker(AskerFunc(func(p peer.ID, c cid.Cid) bool { return p == member.host.ID() && c == private.Cid() }))
		quiesce() // bitswap hears of every connection

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := fetcher.ex.Get(ctx, private.Cid()); err != nil {
			t.Fatalf("fetch the private block from the member: %v", err)
		}
		sess := fetcher.ex.NewSession(ctx, SessionOptions{Public: true})
		got, err := sess.GetBlocks(ctx, []cid.Cid{public.Cid()})
		sess.Close()
		if err != nil {
			t.Fatalf("fetch the public block from the seeder: %v", err)
		}
		if st := sess.Stats(); st.Peers[seeder.host.ID()].Blocks != 1 || string(got[0].RawData()) != string(public.RawData()) {
			t.Errorf("public block: stats %+v, want it delivered by the seeder", st)
		}
		quiesce()

		rec := outsider.received()
		if w := rec[private.Cid()]; len(w) != 0 {
			t.Errorf("the outsider received %v for the private block; want nothing", w)
		}
		if len(rec[public.Cid()]) == 0 {
			t.Errorf("the outsider was never asked for the public block")
		}
		// Nothing is left asked of anyone for the public block now: a
		// fetch after the session asks only whom the askers allow.
		if fetcher.ex.Gate().MayAsk(outsider.host.ID(), public.Cid()) {
			t.Errorf("the public block may still be asked of anyone after its session")
		}
	})
}

// TestGateRevocationStopsQueuedSends: a member wants a block the server
// does not hold yet; the member loses its right (it is removed from the
// cell); then the block arrives. The want the server accepted earlier
// must not get the block out to the peer that may no longer read it.
func TestGateRevocationStopsQueuedSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		srv, stop := mockServer(t, mn)
		defer stop()
		stays, goes := newRawPeer(t, mn), newRawPeer(t, mn)
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		later := randomBlock(t, 4096)
		var removed atomic.Bool
		srv.ex.Gate().Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool {
			if c != later.Cid() {
				return false
			}
			return p == stays.host.ID() || (p == goes.host.ID() && !removed.Load())
		}))
		stays.send(t, srv.host.ID(), want{later.Cid(), true})
		goes.send(t, srv.host.ID(), want{later.Cid(), true})
		quiesce()
		// Not held yet: both were told so.
		for _, rp := range []*rawPeer{stays, goes} {
			if diff := cmp.Diff(map[cid.Cid][]string{later.Cid(): {"dont-have"}}, rp.received()); diff != "" {
				t.Fatalf("before the block arrived (-want +got):\n%s", diff)
			}
		}

		removed.Store(true)
		if err := srv.ex.Put(context.Background(), later); err != nil {
			t.Fatal(err)
		}
		quiesce()
		if diff := cmp.Diff(map[cid.Cid][]string{later.Cid(): {"dont-have", "block"}}, stays.received()); diff != "" {
			t.Errorf("the member that stays (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[cid.Cid][]string{later.Cid(): {"dont-have"}}, goes.received()); diff != "" {
			t.Errorf("the removed member (-want +got):\n%s", diff)
		}
	})
}

func TestGateOwners(t *testing.T) {
	alice, bob := peer.ID("alice"), peer.ID("bob")
	x, y := randomBlock(t, 16).Cid(), randomBlock(t, 16).Cid()
	var nilGate *Gate
	var g Gate
	check := func(when string, want map[peer.ID][]cid.Cid) {
		t.Helper()
		for _, p := range []peer.ID{alice, bob} {
			for _, c := range []cid.Cid{x, y} {
				allowed := false
				for _, w := range want[p] {
					allowed = allowed || w == c
				}
				if got := g.MayRead(p, c); got != allowed {
					t.Errorf("%s: MayRead(%s, %s) = %v, want %v", when, p, c, got, allowed)
				}
			}
		}
	}
	if nilGate.MayRead(alice, x) {
		t.Error("a nil Gate lets a peer read")
	}
	check("zero gate", nil)
	aliceX := OwnerFunc(func(p peer.ID, c cid.Cid) bool { return p == alice && c == x })
	anyoneY := OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return c == y })
	dropAliceX := g.Register(aliceX)
	check("alice may read x", map[peer.ID][]cid.Cid{alice: {x}})
	dropAnyoneY := g.Register(anyoneY)
	dropAliceXAgain := g.Register(aliceX)
	check("and y is public", map[peer.ID][]cid.Cid{alice: {x, y}, bob: {y}})
	dropAliceX()
	dropAliceX() // idempotent: the second registration of aliceX stays
	check("aliceX registered once more", map[peer.ID][]cid.Cid{alice: {x, y}, bob: {y}})
	dropAliceXAgain()
	check("only y public", map[peer.ID][]cid.Cid{alice: {y}, bob: {y}})
	dropAnyoneY()
	check("all owners gone", nil)
}

func TestGateMessage(t *testing.T) {
	alice := peer.ID("alice")
	open, closed := randomBlock(t, 16), randomBlock(t, 16)
	openHave, closedHave := randomBlock(t, 16).Cid(), randomBlock(t, 16).Cid()
	var g Gate
	g.Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool {
		return p == alice && (c == open.Cid() || c == openHave)
	}))
	type summary struct {
		Blocks, Haves, DontHaves []cid.Cid
		Pending                  int32
	}
	sum := func(m bsmsg.BitSwapMessage) summary {
		s := summary{Haves: m.Haves(), DontHaves: m.DontHaves(), Pending: m.PendingBytes()}
		for _, b := range m.Blocks() {
			s.Blocks = append(s.Blocks, b.Cid())
		}
		return s
	}
	// Messages keep blocks and presences in maps: compare as sets.
	cidsEqual := cmp.Options{cmp.Comparer(cid.Cid.Equals), cmpopts.SortSlices(func(a, b cid.Cid) bool { return a.KeyString() < b.KeyString() })}
	for _, tt := range []struct {
		name   string
		blocks []blockformat.Block
		haves  []cid.Cid
		dont   []cid.Cid
		want   summary
		send   bool
		same   bool // the message itself is sent
	}{
		{name: "all allowed", blocks: []blockformat.Block{open}, haves: []cid.Cid{openHave},
			want: summary{Blocks: []cid.Cid{open.Cid()}, Haves: []cid.Cid{openHave}, Pending: 99}, send: true, same: true},
		{name: "all refused", blocks: []blockformat.Block{closed}, haves: []cid.Cid{closedHave}, dont: []cid.Cid{closedHave}},
		{name: "a refused DONT_HAVE", dont: []cid.Cid{closed.Cid()}},
		{name: "mixed", blocks: []blockformat.Block{closed, open}, haves: []cid.Cid{closedHave}, dont: []cid.Cid{openHave},
			want: summary{Blocks: []cid.Cid{open.Cid()}, DontHaves: []cid.Cid{openHave}}, send: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := bsmsg.New(false)
			for _, b := range tt.blocks {
				msg.AddBlock(b)
			}
			for _, c := range tt.haves {
				msg.AddHave(c)
			}
			for _, c := range tt.dont {
				msg.AddDontHave(c)
			}
			msg.SetPendingBytes(99)
			before := sum(msg)
			out, send := gateMessage(&g, alice, msg, func(c cid.Cid, _ bool) bool { return g.MayAsk(alice, c) })
			if send != tt.send {
				t.Fatalf("send = %v, want %v", send, tt.send)
			}
			if diff := cmp.Diff(before, sum(msg), cidsEqual); diff != "" {
				t.Errorf("the message given was modified (-before +after):\n%s", diff)
			}
			if !send {
				return
			}
			if same := out == msg; same != tt.same {
				t.Errorf("the message itself sent: %v, want %v", same, tt.same)
			}
			if diff := cmp.Diff(tt.want, sum(out), cidsEqual, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkGateMayRead: the cost the gate adds to each want and to each
// block or presence sent, with the owners a node has (the chain's, and a
// public one behind it that most lookups reach).
func BenchmarkGateMayRead(b *testing.B) {
	var g Gate
	member, outsider := peer.ID("member"), peer.ID("outsider")
	held := make(map[cid.Cid]struct{})
	cs := make([]cid.Cid, 1024)
	for i := range cs {
		cs[i] = randomBlock(b, 32).Cid()
		held[cs[i]] = struct{}{}
	}
	g.Register(OwnerFunc(func(p peer.ID, c cid.Cid) bool {
		_, ok := held[c]
		return p == member && ok
	}))
	public := cs[0]
	g.Register(OwnerFunc(func(_ peer.ID, c cid.Cid) bool { return c == public }))
	for _, p := range []peer.ID{member, outsider} {
		b.Run(string(p), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				g.MayRead(p, cs[i%len(cs)])
			}
		})
	}
}
