package service

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/message"
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

// TestRemovedMidStream: a device removed from its contact's list while
// its stream is open gets a refusal for its next frame, then the
// stream's end, as one that opens a stream once removed does (package
// message, # Frames: one refusal, then the end): its stream is not read
// on, frame after frame refused, for as long as it likes.
func TestRemovedMidStream(t *testing.T) { bubble(t, testRemovedMidStream) }

func testRemovedMidStream(t *testing.T) {
	alice, bob := pair(t)
	id1, f1 := sealFrame(t, alice, bob, "one")
	_, f2 := sealFrame(t, alice, bob, "two")
	_, f3 := sealFrame(t, alice, bob, "three")
	st := rawStream(t, alice, bob)
	r := bufio.NewReader(st)
	if _, err := st.Write(f1); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(r); err != nil || got.Kind != message.KindAck {
		t.Fatalf("answer to a listed device: %+v, %v", got, err)
	} else if id, _ := got.AckID(); id != id1 {
		t.Fatalf("ack of %x, want %x", id, id1)
	}
	// Bob's cell learns that alice's cell dropped her device.
	bob.cons.mu.Lock()
	bob.cons.cs = nil
	bob.cons.mu.Unlock()
	if _, err := st.Write(f2); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(r); err != nil || got.Kind != message.KindRefusal {
		t.Fatalf("answer to a removed device: %+v, %v; want a refusal", got, err)
	}
	_, _ = st.Write(f3) // may fail: bob stopped reading
	if got, err := readFrame(r); err == nil {
		t.Fatalf("answer %+v to a removed device's frame after its refusal; want the stream's end", got)
	}
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"hello", "one"}) {
		t.Fatalf("bob holds %q", got)
	}
}

// TestReceiverIdleAfterSlowFrame: the receiver does not end a stream
// the sender still keeps: its idle time (twice Config.IdleTimeout)
// counts from its last answer, not from its last frame read. A frame
// whose record takes 15 s (under Config.Timeout) is answered at 15 s;
// the sender keeps the stream until 25 s; at 21 s it is still open on
// both sides, and a message then goes on it.
func TestReceiverIdleAfterSlowFrame(t *testing.T) { bubble(t, testReceiverIdleAfterSlowFrame) }

func testReceiverIdleAfterSlowFrame(t *testing.T) {
	alice, bob := pair(t)
	idle := alice.svc.cfg.IdleTimeout
	synctest.Wait()
	arrived, open := gate(bob)
	defer open()
	sent := make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(t.Context(), "Bob", "slow")
		sent <- err
	}()
	<-arrived
	start := time.Now()
	time.Sleep(idle + idle/2) // the record takes 15 s
	open()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*idle + idle/10 - time.Since(start)) // 21 s: past the receiver's 20 s from the frame
	synctest.Wait()
	if a, b := streamsOf(alice, bob), streamsOf(bob, alice); a != 1 || b != 1 {
		t.Fatalf("streams %v after the slow frame's answer: alice %d, bob %d; want the stream kept (the sender's idle time runs to %v)",
			time.Since(start), a, b, idle+idle/2+idle)
	}
	_, gets, _ := bob.store.counts()
	if _, err := alice.svc.Send(t.Context(), "Bob", "next"); err != nil {
		t.Fatal(err)
	}
	if _, gets2, _ := bob.store.counts(); gets2 != gets+1 {
		t.Fatalf("bob read %d records for one message: it came again", gets2-gets)
	}
}

// TestCancelledSendSparesItsStream: a Send its caller cancels while its
// frame is unanswered does not reset the stream its frame shares with
// other deliveries: they are answered on it, not failed and sealed
// again (each reads its record once at bob).
func TestCancelledSendSparesItsStream(t *testing.T) {
	bubble(t, testCancelledSendSparesItsStream)
}

func testCancelledSendSparesItsStream(t *testing.T) {
	alice, bob := pair(t)
	arrived, open := gate(bob)
	defer open()
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	sentA, sentB := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(ctxA, "Bob", "cancelled")
		sentA <- err
	}()
	<-arrived
	go func() {
		_, err := alice.svc.Send(t.Context(), "Bob", "bystander")
		sentB <- err
	}()
	<-arrived
	synctest.Wait()
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams, want the two frames on one", got)
	}
	_, gets, _ := bob.store.counts()
	cancelA()
	if err := <-sentA; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled Send: %v", err)
	}
	open()
	if err := <-sentB; err != nil {
		t.Fatal(err)
	}
	if _, gets2, _ := bob.store.counts(); gets2 != gets {
		t.Fatalf("bob read %d more records: the bystander's frame was failed and sent again", gets2-gets)
	}
}
