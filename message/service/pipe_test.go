package service

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/message"
)

// pair makes alice and bob, contacts of each other, with a session
// (one message sent), in a cell each.
func pair(t *testing.T) (alice, bob *device) {
	t.Helper()
	devs := newDevices(t, "alice", "bob")
	alice, bob = devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	if _, err := alice.svc.Send(t.Context(), "Bob", "hello"); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// sealFrame seals a message of text from from to to on from's newest
// session, its state on from's disk, as Send does: the encoded frame,
// and the message's ID.
func sealFrame(t *testing.T, from, to *device, text string) (message.ID, []byte) {
	t.Helper()
	s, ctx := from.svc, t.Context()
	env := &message.Envelope{
		Cell: from.cell.Public().(ed25519.PublicKey), To: to.cell.Public().(ed25519.PublicKey),
		Device: s.self, Text: text,
	}
	if err := s.read(env.ID[:]); err != nil {
		t.Fatal(err)
	}
	var err error
	s.cmu.Lock()
	env.Sent, env.Seq, err = s.nextLocked(ctx)
	s.cmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	e := s.cache.acquire(to.h.ID())
	defer s.cache.release(e)
	if err := s.lockEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	f, _, err := s.sealLocked(e, nil, outgoing{id: env.ID, env: env}, nil)
	v := s.cache.step(e)
	e.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.persist(ctx, e, v); err != nil {
		t.Fatal(err)
	}
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return env.ID, b
}

// rawStream opens a stream of Protocol from from to to, by hand.
func rawStream(t *testing.T, from, to *device) network.Stream {
	t.Helper()
	st, err := from.h.NewStream(t.Context(), to.h.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Reset() })
	return st
}

// gate makes every record of d's store wait until the returned open is
// called; each record sends on arrived once it waits.
func gate(d *device) (arrived <-chan struct{}, open func()) {
	ch := make(chan struct{}, 1024)
	g := make(chan struct{})
	d.store.mu.Lock()
	d.store.onPut = func() {
		ch <- struct{}{}
		<-g
	}
	d.store.mu.Unlock()
	return ch, sync.OnceFunc(func() { close(g) })
}

// streamsOf returns the open streams of Protocol between d and o.
func streamsOf(d, o *device) int {
	n := 0
	for _, c := range d.h.Network().ConnsToPeer(o.h.ID()) {
		for _, st := range c.GetStreams() {
			if st.Protocol() == Protocol {
				n++
			}
		}
	}
	return n
}

// TestPipelineAnswersInOrder: a few messages sent at once to one device
// share one stream, and its answers come in the order of the frames: while
// the first message's record is held, the others are read and recorded
// but not answered, and no Send returns; released, every Send returns
// delivered (the sender checks each acknowledgement's message ID).
func TestPipelineAnswersInOrder(t *testing.T) { bubble(t, testPipelineAnswersInOrder) }

func testPipelineAnswersInOrder(t *testing.T) {
	alice, bob := pair(t)
	ctx := t.Context()
	arrived, open := gate(bob)
	defer open()
	const n = spreadAt // on one stream: the pool spreads past it
	sent := make(chan error, n)
	go func() {
		_, err := alice.svc.Send(ctx, "Bob", "held")
		sent <- err
	}()
	<-arrived
	for i := range n - 1 {
		go func() {
			_, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("after %d", i))
			sent <- err
		}()
	}
	for range n - 1 {
		<-arrived
	}
	synctest.Wait()
	if got := bob.svc.framesIn.Load(); got != n {
		t.Fatalf("bob holds %d frames unanswered, want %d", got, n)
	}
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams to bob, want 1", got)
	}
	select {
	case err := <-sent:
		t.Fatalf("a Send returned (%v) while the first frame's answer was held", err)
	default:
	}
	open()
	for range n {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(bob.store.messages()); got != n+1 {
		t.Fatalf("bob holds %d messages, want %d", got, n+1)
	}
	for _, m := range alice.store.messages() {
		if m.State != Delivered {
			t.Fatalf("%q is %s on alice's side", m.Text, m.State)
		}
	}
}

// TestRefusalMidPipeline: a frame refused in the middle of a stream
// (one no session opens) is answered with a refusal in its place, and
// the frames after it on the stream are answered too.
func TestRefusalMidPipeline(t *testing.T) {
	alice, bob := pair(t)
	id1, f1 := sealFrame(t, alice, bob, "one")
	bad, err := message.Frame{Kind: message.KindSession, Body: make([]byte, 200)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id2, f2 := sealFrame(t, alice, bob, "two")
	st := rawStream(t, alice, bob)
	if _, err := st.Write(slices.Concat(f1, bad, f2)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(st)
	for i, want := range []message.Frame{message.Ack(id1), message.Refusal(), message.Ack(id2)} {
		got, err := readFrame(r)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if got.Kind != want.Kind || string(got.Body) != string(want.Body) {
			t.Fatalf("answer %d: kind %d %x, want kind %d %x", i, got.Kind, got.Body, want.Kind, want.Body)
		}
	}
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"hello", "one", "two"}) {
		t.Fatalf("bob holds %q", got)
	}
}

// TestResetWithFramesInFlight: a stream reset while its frames are
// being recorded fails their deliveries; each is tried again on a new
// stream, every Send returns delivered, and each message is once in
// bob's store.
func TestResetWithFramesInFlight(t *testing.T) { bubble(t, testResetWithFramesInFlight) }

func testResetWithFramesInFlight(t *testing.T) {
	alice, bob := pair(t)
	ctx := t.Context()
	arrived, open := gate(bob)
	const n = 8
	sent := make(chan error, n)
	for i := range n {
		go func() {
			_, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("m%d", i))
			sent <- err
		}()
	}
	for range n {
		<-arrived
	}
	defer open()
	e := alice.svc.cache.acquire(bob.h.ID())
	e.pool.mu.Lock()
	live := slices.Clone(e.pool.streams)
	e.pool.mu.Unlock()
	alice.svc.cache.release(e)
	if len(live) == 0 {
		open()
		t.Fatal("no stream to bob with frames in flight")
	}
	for _, o := range live {
		o.end(fmt.Errorf("reset by the test"), 0)
	}
	open()
	for range n {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	got := texts(bob.store.messages())
	want := []string{"hello"}
	for i := range n {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("bob holds %q, want %q", got, want)
	}
	// Each message came twice (the first frame, then the retry's), and
	// each time bob read its record first (record.go: recordIn).
	if _, gets, _ := bob.store.counts(); gets != 1+2*n {
		t.Fatalf("bob read %d records, want %d: the retries did not come", gets, 1+2*n)
	}
}

// TestReadAheadBounded: a peer that writes frames without reading the
// answers gets no more than message.Window of them read on a stream,
// and no more than MaxFramesInPerDevice across its streams: the
// receiver stops reading and the writes are pushed back.
func TestReadAheadBounded(t *testing.T) { bubble(t, testReadAheadBounded) }

func testReadAheadBounded(t *testing.T) {
	alice, bob := pair(t)
	arrived, open := gate(bob)
	defer open()
	const streams = MaxFramesInPerDevice/message.Window + 1
	var wg sync.WaitGroup
	for i := range streams {
		var frames []byte
		for j := range message.Window + 8 {
			_, f := sealFrame(t, alice, bob, fmt.Sprintf("stream %d, frame %d", i, j))
			frames = append(frames, f...)
		}
		st := rawStream(t, alice, bob)
		wg.Go(func() { _, _ = st.Write(frames) }) // pushed back: returns at the reset
		if i == 0 {
			for range message.Window {
				<-arrived
			}
			synctest.Wait()
			if got := bob.svc.framesIn.Load(); got != message.Window {
				t.Fatalf("bob read %d frames of a stream ahead of its answers, want %d", got, message.Window)
			}
		}
	}
	for range MaxFramesInPerDevice - message.Window {
		<-arrived
	}
	synctest.Wait()
	if got := bob.svc.framesIn.Load(); got != MaxFramesInPerDevice {
		t.Fatalf("bob read %d frames ahead of its answers, want %d (the device's bound)", got, MaxFramesInPerDevice)
	}
	if got := len(arrived); got != 0 {
		t.Fatalf("%d more records began past the bound", got)
	}
	open()
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	for _, c := range alice.h.Network().ConnsToPeer(bob.h.ID()) {
		_ = c.Close()
	}
	wg.Wait()
}

// TestHeaderOnly: a stream that sends a frame's header and nothing else
// holds a frame slot (the header is in hand) and is reset once its body
// did not come within Config.IdleTimeout, then holds nothing.
func TestHeaderOnly(t *testing.T) { bubble(t, testHeaderOnly) }

func testHeaderOnly(t *testing.T) {
	alice, bob := pair(t)
	st := rawStream(t, alice, bob)
	if _, err := st.Write([]byte{message.FrameVersion, message.KindSession, 0, 0, 0x40, 0}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if f, err := readFrame(bufio.NewReader(st)); err == nil {
		t.Fatalf("answer %+v to a header alone", f)
	}
	if el := time.Since(start); el != bob.svc.cfg.IdleTimeout {
		t.Fatalf("the stream ended after %v, want %v", el, bob.svc.cfg.IdleTimeout)
	}
	synctest.Wait()
	if got := bob.svc.slots.inUse(); got != 0 {
		t.Fatalf("bob holds %d frame slots", got)
	}
	if got := bob.svc.framesIn.Load(); got != 0 {
		t.Fatalf("bob holds %d frames", got)
	}
	if got := streamsOf(bob, alice); got != 0 {
		t.Fatalf("bob holds %d streams", got)
	}
}

// TestIdleStreamClosed: a stream with nothing in flight is closed by the
// sender after Config.IdleTimeout, not before; the next message opens a
// new one.
func TestIdleStreamClosed(t *testing.T) { bubble(t, testIdleStreamClosed) }

func testIdleStreamClosed(t *testing.T) {
	alice, bob := pair(t)
	idle := alice.svc.cfg.IdleTimeout
	synctest.Wait()
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams after a message, want 1", got)
	}
	time.Sleep(idle - time.Millisecond)
	synctest.Wait()
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams before the idle timeout, want 1", got)
	}
	time.Sleep(time.Millisecond)
	synctest.Wait()
	if a, b := streamsOf(alice, bob), streamsOf(bob, alice); a != 0 || b != 0 {
		t.Fatalf("streams after the idle timeout: alice %d, bob %d; want none", a, b)
	}
	if _, err := alice.svc.Send(t.Context(), "Bob", "again"); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWithDeliveriesInFlight: Close with streams open and frames
// unanswered returns, the Sends return, and no goroutine is left
// (TestMain checks).
func TestCloseWithDeliveriesInFlight(t *testing.T) { bubble(t, testCloseWithDeliveriesInFlight) }

func testCloseWithDeliveriesInFlight(t *testing.T) {
	alice, bob := pair(t)
	arrived, open := gate(bob)
	defer open()
	const n = 6
	sent := make(chan error, n)
	for i := range n {
		go func() {
			_, err := alice.svc.Send(t.Context(), "Bob", fmt.Sprintf("m%d", i))
			sent <- err
		}()
	}
	for range n {
		<-arrived
	}
	if err := alice.svc.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-sent; err == nil {
			t.Fatal("a Send delivered with its service closed before the answer")
		}
	}
	open()
	if err := bob.svc.Close(); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	if a, b := streamsOf(alice, bob), streamsOf(bob, alice); a != 0 || b != 0 {
		t.Fatalf("streams after Close: alice %d, bob %d", a, b)
	}
}

// TestWindowWithinSkipBounds: the MaxDeliveriesPerDevice frames a device
// may have sealed and unanswered at once open at the receiver in any
// order (here the reverse of their sealing, over as many streams as a
// sender keeps): the keys skipped stay within ratchet.MaxSkip.
func TestWindowWithinSkipBounds(t *testing.T) {
	alice, bob := pair(t)
	ids := make([]message.ID, MaxDeliveriesPerDevice)
	frames := make([][]byte, MaxDeliveriesPerDevice)
	for i := range frames {
		ids[i], frames[i] = sealFrame(t, alice, bob, fmt.Sprintf("m%d", i))
	}
	var wg sync.WaitGroup
	for s := range MaxStreamsPerDevice {
		st := rawStream(t, alice, bob)
		var b []byte
		var want []message.ID
		for i := MaxDeliveriesPerDevice - 1 - s; i >= 0; i -= MaxStreamsPerDevice {
			b = append(b, frames[i]...)
			want = append(want, ids[i])
		}
		wg.Go(func() {
			if _, err := st.Write(b); err != nil {
				t.Error(err)
				return
			}
			r := bufio.NewReader(st)
			for _, id := range want {
				f, err := readFrame(r)
				if err != nil {
					t.Error(err)
					return
				}
				if got, ok := f.AckID(); !ok || got != id {
					t.Errorf("answer %+v, want the acknowledgement of %x", f, id)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(bob.store.messages()); got != MaxDeliveriesPerDevice+1 {
		t.Fatalf("bob holds %d messages, want %d", got, MaxDeliveriesPerDevice+1)
	}
}

// TestEvictedDeviceStreamsClosed: the streams to a device whose cache
// entry is evicted are closed with it, before their idle timeout.
func TestEvictedDeviceStreamsClosed(t *testing.T) { bubble(t, testEvictedDeviceStreamsClosed) }

func testEvictedDeviceStreamsClosed(t *testing.T) {
	alice, bob := pair(t)
	synctest.Wait()
	if got := streamsOf(alice, bob); got != 1 {
		t.Fatalf("%d streams after a message, want 1", got)
	}
	c := alice.svc.cache
	c.mu.Lock()
	c.max = 1
	c.mu.Unlock()
	c.release(c.acquire("another device")) // bob's entry, not in use, makes room
	if _, ok := c.m[bob.h.ID()]; ok {
		t.Fatal("bob's entry not evicted")
	}
	synctest.Wait()
	if a, b := streamsOf(alice, bob), streamsOf(bob, alice); a != 0 || b != 0 {
		t.Fatalf("streams after the eviction: alice %d, bob %d; want none", a, b)
	}
}
