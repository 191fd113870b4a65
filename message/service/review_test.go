package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/peer"
)

// slowFinder blocks its first FindPeer until the caller's ctx ends (a
// lookup that outlives the delivery that made it), and answers the
// others with ai.
type slowFinder struct {
	ai     peer.AddrInfo
	first  chan struct{} // closed once the first call is under way
	called bool
}

func (f *slowFinder) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	if !f.called { // calls come one at a time in the test (the first blocks)
		f.called = true
		close(f.first)
		<-ctx.Done()
		return peer.AddrInfo{}, ctx.Err()
	}
	return f.ai, nil
}

// TestOpenerGivesUp: a delivery that waits for a stream another delivery
// is opening is not failed by the opener's ctx: the opener's Send is
// cancelled while the stream is being opened, the other Send, whose ctx
// is fine, opens a stream of its own and is delivered.
func TestOpenerGivesUp(t *testing.T) { bubble(t, testOpenerGivesUp) }

func testOpenerGivesUp(t *testing.T) {
	alice, bob := pair(t)
	// No stream, no connection, no address of bob: a stream to bob is
	// opened through the finder.
	_ = alice.h.Network().ClosePeer(bob.h.ID())
	synctest.Wait()
	alice.h.Peerstore().ClearAddrs(bob.h.ID())
	f := &slowFinder{ai: peer.AddrInfo{ID: bob.h.ID(), Addrs: bob.h.Addrs()}, first: make(chan struct{})}
	alice.svc.finder = f

	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	sentA := make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(ctxA, "Bob", "opener")
		sentA <- err
	}()
	<-f.first
	sentB := make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(t.Context(), "Bob", "rider")
		sentB <- err
	}()
	synctest.Wait() // B waits for the stream A opens
	cancelA()
	if err := <-sentA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled Send: %v, want context.Canceled", err)
	}
	if err := <-sentB; err != nil {
		t.Fatalf("the other Send failed with the opener's error: %v", err)
	}
	if got := texts(bob.store.messages()); !slices.Contains(got, "rider") {
		t.Fatalf("bob holds %q", got)
	}
}
