package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/message"
)

// abandonOne makes alice and bob (pair), holds bob's records (gate),
// and has a Send of alice's cancelled once its frame is at bob's: the
// frame is abandoned, unanswered. open lets bob's records go on.
func abandonOne(t *testing.T) (alice, bob *device, open func()) {
	t.Helper()
	alice, bob = pair(t)
	arrived, open := gate(bob)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(ctx, "Bob", "abandoned")
		sent <- err
	}()
	<-arrived
	cancel()
	if err := <-sent; !errors.Is(err, context.Canceled) {
		open()
		t.Fatalf("the cancelled Send: %v", err)
	}
	return alice, bob, open
}

// TestAbandonedFrameKeepsItsSlot: a Send its caller cancels while its
// frame is unanswered returns at once, but its frame keeps its delivery
// slot and its stream until the answer comes (so that no more than
// MaxDeliveriesPerDevice frames are ever unanswered); then both are
// freed and the stream stays, for the next messages.
func TestAbandonedFrameKeepsItsSlot(t *testing.T) { bubble(t, testAbandonedFrameKeepsItsSlot) }

func testAbandonedFrameKeepsItsSlot(t *testing.T) {
	alice, bob, open := abandonOne(t)
	defer open()
	e := alice.svc.cache.acquire(bob.h.ID())
	defer alice.svc.cache.release(e)
	synctest.Wait()
	if n := len(e.out); n != 1 {
		t.Fatalf("%d delivery slots held after the cancel, want the abandoned frame's 1", n)
	}
	open()
	synctest.Wait()
	if n := len(e.out); n != 0 {
		t.Fatalf("%d delivery slots held once answered, want 0", n)
	}
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams once answered, want the stream kept", got)
	}
	if _, err := alice.svc.Send(t.Context(), "Bob", "next"); err != nil {
		t.Fatal(err)
	}
}

// TestAbandonedFrameUnanswered: a frame whose Send gave up and that gets
// no answer frees its slot once its stream is reset, at the latest
// Config.Timeout after it was written.
func TestAbandonedFrameUnanswered(t *testing.T) { bubble(t, testAbandonedFrameUnanswered) }

func testAbandonedFrameUnanswered(t *testing.T) {
	alice, bob, open := abandonOne(t)
	defer open()
	e := alice.svc.cache.acquire(bob.h.ID())
	defer alice.svc.cache.release(e)
	time.Sleep(alice.svc.cfg.Timeout + time.Second)
	synctest.Wait()
	if n := len(e.out); n != 0 {
		t.Fatalf("%d delivery slots held past the timeout, want 0", n)
	}
	if got := streamsOf(alice, bob); got != 0 {
		t.Fatalf("%d streams past the timeout, want the unanswered one reset", got)
	}
}

// TestAckOfAnotherMessage: a device that acknowledges another message
// than the frame's fails the delivery and its stream is ended, since its
// answers no longer match the frames.
func TestAckOfAnotherMessage(t *testing.T) { bubble(t, testAckOfAnotherMessage) }

func testAckOfAnotherMessage(t *testing.T) {
	alice, bob := pair(t)
	e := alice.svc.cache.acquire(bob.h.ID())
	e.pool.closeAll() // the next Send opens a stream to the handler below
	alice.svc.cache.release(e)
	bob.h.SetStreamHandler(Protocol, func(st network.Stream) {
		r := bufio.NewReader(st)
		for {
			if _, err := readFrame(r); err != nil {
				_ = st.Reset()
				return
			}
			b, _ := message.Ack(message.ID{0xBA, 0xD}).Encode()
			if _, err := st.Write(b); err != nil {
				return
			}
		}
	})
	_, err := alice.svc.Send(t.Context(), "Bob", "x")
	if !errors.Is(err, message.ErrBadFrame) {
		t.Fatalf("Send: %v, want an error wrapping message.ErrBadFrame", err)
	}
	synctest.Wait()
	if got := streamsOf(alice, bob); got != 0 {
		t.Fatalf("%d streams left to the device that acknowledged another message, want 0", got)
	}
}

// TestReadAheadBoundedAcrossDevices: the frames read and not answered
// are bounded across every device too (Config.MaxFramesIn): two
// contacts' devices with a window of frames each (64, over the bound of
// 40) have at most 40 read together, each at most its fair share (half
// of the node's slots, taken alone), and both some.
func TestReadAheadBoundedAcrossDevices(t *testing.T) {
	bubble(t, testReadAheadBoundedAcrossDevices)
}

func testReadAheadBoundedAcrossDevices(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	for _, d := range []*device{alice, carol} {
		d.befriend("Bob", bob)
		bob.befriend(d.name, d)
		if _, err := d.svc.Send(t.Context(), "Bob", "hello"); err != nil {
			t.Fatal(err)
		}
	}
	const bound = message.Window + 8
	_ = bob.svc.Close()
	bob.maxIn = bound
	bob.start(t)
	arrived, open := gate(bob)
	defer open()
	var wg sync.WaitGroup
	for _, d := range []*device{alice, carol} {
		var frames []byte
		for j := range message.Window {
			_, f := sealFrame(t, d, bob, fmt.Sprintf("%s %d", d.name, j))
			frames = append(frames, f...)
		}
		st := rawStream(t, d, bob)
		wg.Go(func() { _, _ = st.Write(frames) }) // pushed back: returns at the reset
	}
	synctest.Wait() // every frame read waits for its record
	read := bob.svc.framesIn.Load()
	if read > bound {
		t.Fatalf("bob read %d frames ahead of its answers from two devices, the bound is %d (Config.MaxFramesIn)", read, bound)
	}
	if got := len(arrived); int64(got) != read {
		t.Fatalf("%d records began, %d frames read", got, read)
	}
	bob.svc.slots.mu.Lock()
	held := maps.Clone(bob.svc.slots.held)
	bob.svc.slots.mu.Unlock()
	if len(held) != 2 {
		t.Fatalf("frame slots held by %d contacts, want both: %d frames read", len(held), read)
	}
	for _, n := range held {
		if n > bound/2 {
			t.Fatalf("a contact holds %d of bob's %d frame slots, more than half", n, bound)
		}
	}
	open()
	for _, d := range devs {
		_ = d.svc.Close()
	}
	for _, d := range []*device{alice, carol} {
		for _, c := range d.h.Network().ConnsToPeer(bob.h.ID()) {
			_ = c.Close()
		}
	}
	wg.Wait()
}
