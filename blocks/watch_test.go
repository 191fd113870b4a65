package blocks

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// sendRaw sends msg to p on the exchange protocol from h, as a peer
// speaking bitswap by hand would.
func sendRaw(ctx context.Context, from *node, to peer.ID, msg bsmsg.BitSwapMessage) error {
	s, err := from.host.NewStream(ctx, to, ProtocolID)
	if err != nil {
		return err
	}
	if err := msg.ToNetV1(s); err != nil {
		s.Reset()
		return err
	}
	return s.Close()
}

// A peer that sends blocks nobody asked for is cut off, and the fetch
// completes from the honest peer.
func TestJunkPeerCutOff(t *testing.T) {
	const limit = 8
	fetcher := newNode(t, Config{JunkLimit: limit}, true)
	seeder := newNode(t, Config{}, true)
	junk := newNode(t, Config{}, false) // a bare host: it speaks by hand
	connect(t, fetcher, seeder, "")
	connect(t, junk, fetcher, "")
	blks, cids := makeBlocks(32, 16<<10)
	if err := seeder.ex.PutMany(t.Context(), blks); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
	defer cancel()
	// Junk in several messages, limit+1 blocks in all: hand-made blocks
	// that no fetch of the fetcher wants.
	for i := 0; i <= limit; i += 3 {
		msg := bsmsg.New(false)
		for j := i; j < min(i+3, limit+1); j++ {
			msg.AddBlock(NewBlock(fmt.Appendf(nil, "junk %d", j)))
		}
		if err := sendRaw(ctx, junk, fetcher.host.ID(), msg); err != nil {
			t.Fatalf("sending junk: %v", err)
		}
	}
	for !slices.Contains(fetcher.ex.CutOff(), junk.host.ID()) {
		if ctx.Err() != nil {
			t.Fatalf("junk peer not cut off; cut off: %v", fetcher.ex.CutOff())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := fetcher.host.Network().Connectedness(junk.host.ID()); c == network.Connected {
		t.Errorf("fetcher still connected to the junk peer (%v)", c)
	}

	sess := fetcher.ex.NewSession(ctx, SessionOptions{})
	defer sess.Close()
	if _, err := sess.GetBlocks(ctx, cids); err != nil {
		t.Fatalf("GetBlocks: %v", err)
	}
	st := sess.Stats()
	if st.Blocks != int64(len(blks)) || st.Peers[seeder.host.ID()].Blocks != st.Blocks {
		t.Errorf("Stats = %+v; want all %d blocks from the seeder", st, len(blks))
	}
}

// A peer that stays under the limit is not cut off, and blocks a fetch
// wanted, or wanted a moment ago, are not junk.
func TestWatchCountsOnlyUnwanted(t *testing.T) {
	w, _ := newTestWatch(2)
	wanted := NewBlock([]byte("wanted"))
	done := w.want(nil, []cid.Cid{wanted.Cid()})
	w.MessageReceived("p", blockMsg(wanted, NewBlock([]byte("junk 1"))))
	done()
	// Delivered again after the want ended: a late duplicate.
	w.MessageReceived("p", blockMsg(wanted, NewBlock([]byte("junk 2"))))
	if w.isCut("p") || w.junk["p"].n != 2 {
		t.Fatalf("after 2 junk blocks (limit 2): cut %v, count %d; want not cut, 2", w.isCut("p"), w.junk["p"].n)
	}
	w.MessageReceived("p", blockMsg(NewBlock([]byte("junk 3"))))
	if !w.isCut("p") {
		t.Fatal("after 3 junk blocks (limit 2): not cut off")
	}
}

// The first peer to deliver a block a session wants is the one named, once.
func TestWatchAttribution(t *testing.T) {
	w, _ := newTestWatch(10)
	s := &Session{wanted: make(map[cid.Cid]*sessionWant)}
	b := NewBlock([]byte("b"))
	done1 := w.want(s, []cid.Cid{b.Cid()})
	done2 := w.want(s, []cid.Cid{b.Cid()}) // a second call of the session
	w.MessageReceived("first", blockMsg(b))
	w.MessageReceived("second", blockMsg(b))
	if from, first := w.delivered(s, b.Cid()); from != "first" || !first {
		t.Errorf("delivered = %q, %v; want first, true", from, first)
	}
	if _, first := w.delivered(s, b.Cid()); first {
		t.Error("the second call counted the block again")
	}
	done1()
	done2()
	if len(s.wanted) != 0 || len(w.wants) != 0 {
		t.Errorf("registrations left: session %d, watch %d", len(s.wanted), len(w.wants))
	}
}

// A cut-off peer's messages do not reach bitswap until the cut-off ends.
func TestWatchedReceiverDropsCutOffPeers(t *testing.T) {
	w, clock := newTestWatch(0)
	rec := &countingReceiver{tracer: w}
	r := watchedReceiver{rec, w}
	junkMsg := blockMsg(NewBlock([]byte("junk")))
	r.ReceiveMessage(t.Context(), "bad", junkMsg) // limit 0: cut off
	if rec.n != 1 || !w.isCut("bad") {
		t.Fatalf("first message: passed %d, cut %v; want 1, true", rec.n, w.isCut("bad"))
	}
	r.ReceiveMessage(t.Context(), "bad", junkMsg)
	r.ReceiveMessage(t.Context(), "good", bsmsg.New(false))
	if rec.n != 2 {
		t.Errorf("while cut off: %d messages passed, want 2 (the good peer's only)", rec.n)
	}
	*clock = clock.Add(w.cutOff)
	r.ReceiveMessage(t.Context(), "bad", bsmsg.New(false))
	if rec.n != 3 {
		t.Errorf("after the cut-off ended: %d messages passed, want 3", rec.n)
	}
}

// What peers can fill stays bounded.
func TestWatchBounds(t *testing.T) {
	w, clock := newTestWatch(1 << 30)
	for i := range 3 * maxJunkPeers {
		w.MessageReceived(peer.ID(fmt.Sprint("p", i)), blockMsg(NewBlock([]byte("junk"))))
		if len(w.junk) > maxJunkPeers {
			t.Fatalf("after %d peers: %d junk counts kept, bound %d", i+1, len(w.junk), maxJunkPeers)
		}
	}
	w.limit = 0
	for i := range 2 * maxCutOff {
		*clock = clock.Add(time.Millisecond)
		w.MessageReceived(peer.ID(fmt.Sprint("q", i)), blockMsg(NewBlock([]byte("junk"))))
		if len(w.cut) > maxCutOff {
			t.Fatalf("after %d peers: %d cut-offs kept, bound %d", i+1, len(w.cut), maxCutOff)
		}
	}
	// The latest offender is still cut off; the earliest was evicted.
	if !w.isCut(peer.ID(fmt.Sprint("q", 2*maxCutOff-1))) || w.isCut("q0") {
		t.Error("eviction kept the wrong cut-offs")
	}
	for i := range 2 * recentSize {
		c := NewBlock(fmt.Appendf(nil, "%d", i)).Cid()
		w.want(nil, []cid.Cid{c})()
	}
	if len(w.recent.set) != recentSize {
		t.Errorf("recent set holds %d CIDs, want %d", len(w.recent.set), recentSize)
	}
}

func newTestWatch(limit int) (*watch, *time.Time) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newWatch(limit, time.Minute, func() time.Time { return clock }, func(peer.ID) {})
	return w, &clock
}

// blockMsg is a bitswap message carrying bs.
func blockMsg(bs ...blockformat.Block) bsmsg.BitSwapMessage {
	msg := bsmsg.New(false)
	for _, b := range bs {
		msg.AddBlock(b)
	}
	return msg
}

// countingReceiver stands for bitswap behind the watched receiver: it
// counts the messages that reach it and traces them as bitswap does.
type countingReceiver struct {
	bsnetwork.Receiver
	tracer *watch
	n      int
}

func (r *countingReceiver) ReceiveMessage(_ context.Context, p peer.ID, msg bsmsg.BitSwapMessage) {
	r.n++
	r.tracer.MessageReceived(p, msg)
}

// An honest seeder's rare late duplicates, spread over a long life, do not
// add up to a cut-off: the limit is of junk within a window (CutOff).
func TestWatchJunkCountDecays(t *testing.T) {
	w, clock := newTestWatch(2)
	for i := range 10 {
		*clock = clock.Add(time.Hour)
		w.MessageReceived("p", blockMsg(NewBlock(fmt.Appendf(nil, "late %d", i))))
		if w.isCut("p") {
			t.Fatalf("after %d junk blocks an hour apart (limit 2): cut off", i+1)
		}
	}
	// A burst still is.
	for i := range 3 {
		w.MessageReceived("p", blockMsg(NewBlock(fmt.Appendf(nil, "burst %d", i))))
	}
	if !w.isCut("p") {
		t.Fatal("after 3 junk blocks at once (limit 2): not cut off")
	}
}
