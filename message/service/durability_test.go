package service

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// seqOf is the counter in a message's order key.
func seqOf(t *testing.T, m Message) uint64 {
	t.Helper()
	var seq uint64
	if _, err := fmt.Sscanf(m.Order[len(m.Order)-16:], "%x", &seq); err != nil {
		t.Fatalf("order key %q: %v", m.Order, err)
	}
	return seq
}

// TestStateDurableBeforeFrame: a frame never leaves before the session
// state that produced it is durable, and an acknowledgement never before
// the receiver's is. A sender whose session write fails sends nothing
// (the message stays sent, the recipient holds nothing); restarted on
// what is on its disk, it goes on on the same session (a message key
// that went out is never used again: the recipient opens the next
// message). A sender whose record of the message fails sends nothing. A
// receiver whose session write fails does not acknowledge. The message
// that did not leave stays pending, and the courier delivers it once the
// sender is restarted.
func TestStateDurableBeforeFrame(t *testing.T) { bubble(t, testStateDurableBeforeFrame) }

func testStateDurableBeforeFrame(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	if _, err := alice.svc.Send(ctx, "Bob", "first"); err != nil {
		t.Fatal(err)
	}

	alice.fault.fail(sessionsPrefix)
	m, err := alice.svc.Send(ctx, "Bob", "never left")
	if err == nil || m.State == Delivered {
		t.Fatalf("sent with its session write failing: %+v, %v", m, err)
	}
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("the frame left before its state was on disk: bob holds %q", got)
	}
	alice.fault.fail(ds.NewKey("/"))
	_ = alice.svc.Close() // a crash: only what is on disk is left
	alice.keepRun = true  // the state on disk is what is checked
	alice.start(t)
	synctest.Wait() // the courier's first pass delivers the pending message
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"first", "never left"}) {
		t.Fatalf("the pending message not delivered after the restart: bob holds %q", got)
	}
	if _, err := alice.svc.Send(ctx, "Bob", "after the crash"); err != nil {
		t.Fatal(err)
	}
	if n := alice.prek.fetches(); n != 1 {
		t.Fatalf("%d bundles fetched: the session did not survive the failed write", n)
	}

	// The message not in the sender's chain: its frame does not leave.
	alice.store.failPuts(errDiskFull)
	if _, err := alice.svc.Send(ctx, "Bob", "not recorded"); !errors.Is(err, errDiskFull) {
		t.Fatalf("sent with its record failing: %v", err)
	}
	alice.store.failPuts(nil)
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"first", "never left", "after the crash"}) {
		t.Fatalf("the frame left before its record was in the chain: bob holds %q", got)
	}

	bob.fault.fail(sessionsPrefix)
	m, err = alice.svc.Send(ctx, "Bob", "not acknowledged")
	if !errors.Is(err, ErrUnreachable) || m.State != Sent {
		t.Fatalf("acknowledged with the receiver's session write failing: %+v, %v", m, err)
	}
	bob.fault.fail(ds.NewKey("/"))
	if _, err := alice.svc.Send(ctx, "Bob", "again"); err != nil {
		t.Fatal(err)
	}
	if got := texts(bob.store.messages()); !slices.Equal(got, []string{"first", "never left", "after the crash", "not acknowledged", "again"}) {
		t.Fatalf("bob holds %q", got)
	}
}

// TestRestartAfterConcurrentSends: 16 messages sent at once (their
// session writes shared), then both devices restarted on what is on
// their disks: every message was delivered, and the next messages both
// ways go on the same sessions (no new handshake: no message key that
// went out is used again, on either side), seq never repeats.
func TestRestartAfterConcurrentSends(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	if _, err := alice.svc.Send(ctx, "Bob", "hello"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("at once %d", i)); err != nil {
				errs <- err
			}
			if _, err := bob.svc.Send(ctx, "Alice", fmt.Sprintf("back %d", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob} {
		_ = d.svc.Close()
		d.keepRun = true // the state on disk is what is checked
		d.start(t)
	}
	for i := range 3 {
		if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("after %d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.svc.Send(ctx, "Alice", fmt.Sprintf("reply %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := alice.prek.fetches() + bob.prek.fetches(); n != 1 {
		t.Fatalf("%d bundles fetched, want 1: a restart lost a session state whose frame had left", n)
	}
	for _, d := range []*device{alice, bob} {
		ms := d.store.messages()
		if len(ms) != 1+32+6 {
			t.Fatalf("%s holds %d messages, want %d", d.name, len(ms), 1+32+6)
		}
		seen := map[string]bool{}
		for _, m := range ms {
			k := fmt.Sprintf("%s/%d", m.Device, seqOf(t, m))
			if seen[k] {
				t.Fatalf("%s: seq %s twice", d.name, k)
			}
			seen[k] = true
		}
	}
}

// TestNoFrameBeforeItsState: at every moment a frame arrives (the
// receiver records its message), the sender's session state on disk is
// at least the one that sealed it, also with 16 messages sealed at once
// and their writes shared. The check: a probe sealed by the state on the
// sender's disk (what a crash right then would leave) opens with the
// receiver's sessions; had the disk been behind a frame that arrived,
// the probe would use a message key the receiver has spent.
func TestNoFrameBeforeItsState(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	for _, text := range []string{"hello", "confirmed"} {
		if _, err := alice.svc.Send(ctx, "Bob", text); err != nil {
			t.Fatal(err)
		}
	}
	const seed = 7
	probeRand := rand.NewChaCha8([32]byte{seed})
	var mu sync.Mutex
	var probes int
	var failures []string
	bob.store.onPut = func() {
		mu.Lock()
		defer mu.Unlock()
		// Bob's sessions first, then alice's disk: every frame bob opened
		// by then was sealed by a state on alice's disk before.
		e := bob.svc.cache.acquire(alice.h.ID())
		e.mu.Lock()
		bb, err := e.rec.encode()
		e.mu.Unlock()
		bob.svc.cache.release(e)
		if err != nil {
			failures = append(failures, err.Error())
			return
		}
		br, _, _ := decodeRecord(bb)
		b, err := alice.ds.Get(ctx, sessionKey(bob.h.ID()))
		if err != nil {
			failures = append(failures, fmt.Sprintf("alice's sessions on disk: %v", err))
			return
		}
		ar, _, err := decodeRecord(b)
		if err != nil || len(ar.sessions) == 0 {
			failures = append(failures, fmt.Sprintf("alice's sessions on disk: %d, %v", len(ar.sessions), err))
			return
		}
		ct, err := ar.sessions[0].sess.Encrypt(probeRand, []byte("probe"))
		if err != nil {
			failures = append(failures, err.Error())
			return
		}
		probes++
		for _, st := range br.sessions {
			if _, err := st.sess.Decrypt(ct); err == nil {
				return
			}
		}
		failures = append(failures, fmt.Sprintf("probe %d: a frame arrived before the state that sealed it was on the sender's disk", probes))
	}
	for round := range 4 {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("round %d, %d", round, i)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if probes != 64 || len(failures) > 0 {
		t.Fatalf("seed %d: %d probes, want 64; %d failures: %q", seed, probes, len(failures), failures)
	}
}

// TestRecordOutsideTheLock: the receiver records a message with the
// sending device's lock released, so a second message from the device is
// opened while the first is being recorded: the first record waits here
// until the second's begins (were the record under the lock, neither
// would go on, and both sends would fail at Config.Timeout).
func TestRecordOutsideTheLock(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	if _, err := alice.svc.Send(ctx, "Bob", "hello"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	second := make(chan struct{})
	bob.store.onPut = func() {
		switch calls.Add(1) {
		case 1:
			select {
			case <-second:
			case <-ctx.Done():
			}
		case 2:
			close(second)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		wg.Go(func() {
			if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("at once %d", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(bob.store.messages()); got != 3 {
		t.Fatalf("bob holds %d messages, want 3", got)
	}
}

// TestCounterLease: the device's counter is written once per lease (1,000
// messages, or the clock past the time floor), not per message; after a
// restart, seq resumes above every seq handed out and the sent time
// never goes back, even when the clock does (order keys stay in the
// sender's order).
func TestCounterLease(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	var clock atomic.Int64 // Unix ms
	clock.Store(1_790_000_000_000)
	alice.now = func() time.Time { return time.UnixMilli(clock.Load()) }
	_ = alice.svc.Close()
	alice.start(t)

	var sent []Message
	send := func(text string) {
		t.Helper()
		m, err := alice.svc.Send(ctx, "Bob", text)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	before := alice.fault.written(counterKey)
	for i := range 5 {
		send(fmt.Sprintf("m%d", i))
		clock.Add(10)
	}
	if n := alice.fault.written(counterKey) - before; n != 1 {
		t.Fatalf("%d counter writes for 5 messages within the lease, want 1", n)
	}
	clock.Add(2_000) // past the time floor: a new lease
	send("later")
	if n := alice.fault.written(counterKey) - before; n != 2 {
		t.Fatalf("%d counter writes once the clock passed the floor, want 2", n)
	}
	// A restart with the clock gone back.
	_ = alice.svc.Close()
	clock.Add(-60_000)
	alice.start(t)
	send("after the restart")
	send("and the next")
	for i := 1; i < len(sent); i++ {
		p, m := sent[i-1], sent[i]
		if seqOf(t, m) <= seqOf(t, p) || m.Sent.Before(p.Sent) || m.Order <= p.Order {
			t.Fatalf("message %d (seq %d, sent %v, order %s) not after message %d (seq %d, sent %v, order %s)",
				i, seqOf(t, m), m.Sent, m.Order, i-1, seqOf(t, p), p.Sent, p.Order)
		}
	}
	if got := texts(bob.store.messages()); len(got) != len(sent) || got[len(got)-1] != "and the next" {
		t.Fatalf("bob holds %q, not in the sender's order", got)
	}
}

// TestNoNeedlessWrites: once a session is confirmed, a message costs the
// sender one session write (before its frame leaves), no counter write
// within the lease, no store read, and two store writes (sent,
// delivered); the receiver one session write and one store write, after
// one store read (a duplicate is possible there). Every store write
// carries the trait's Created time, so the store reads nothing to keep
// it.
func TestNoNeedlessWrites(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	ctx := t.Context()
	var clock atomic.Int64
	clock.Store(1_790_000_000_000)
	alice.now = func() time.Time { return time.UnixMilli(clock.Load()) }
	_ = alice.svc.Close()
	alice.start(t)
	for _, text := range []string{"handshake", "confirmed"} {
		if _, err := alice.svc.Send(ctx, "Bob", text); err != nil {
			t.Fatal(err)
		}
	}
	as, ac := alice.fault.written(sessionsPrefix), alice.fault.written(counterKey)
	bs := bob.fault.written(sessionsPrefix)
	ap, ag, _ := alice.store.counts()
	bp, bg, _ := bob.store.counts()
	const n = 5
	for i := range n {
		if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ap2, ag2, anc := alice.store.counts()
	bp2, bg2, bnc := bob.store.counts()
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"sender's session writes", alice.fault.written(sessionsPrefix) - as, n},
		{"sender's counter writes", alice.fault.written(counterKey) - ac, 0},
		{"sender's store writes", ap2 - ap, 2 * n},
		{"sender's store reads (one before \"delivered\": a receipt may have come first)", ag2 - ag, n},
		{"receiver's session writes", bob.fault.written(sessionsPrefix) - bs, n},
		{"receiver's store writes", bp2 - bp, n},
		{"receiver's store reads", bg2 - bg, n},
		{"store writes with no Created (all along)", anc + bnc, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s for %d messages: %d, want %d", c.what, n, c.got, c.want)
		}
	}
}

// TestSessionCacheBound: the cache holds at most its bound of devices
// not in use, evicting those whose state is on disk; one in use is never
// evicted (the cache is over its bound by the calls under way, then
// back); an evicted device's sessions come back from disk (no new
// handshake).
func TestSessionCacheBound(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol", "dave")
	alice := devs[0]
	ctx := t.Context()
	alice.svc.cache.max = 2
	for _, d := range devs[1:] {
		alice.befriend(d.name, d)
		d.befriend("Alice", alice)
	}
	for round := range 2 {
		for _, d := range devs[1:] {
			if _, err := alice.svc.Send(ctx, d.name, fmt.Sprintf("round %d", round)); err != nil {
				t.Fatal(err)
			}
			if n := alice.svc.cache.len(); n > 2 {
				t.Fatalf("%d devices cached, bound 2", n)
			}
		}
	}
	if n := alice.prek.fetches(); n != 3 {
		t.Fatalf("%d bundles fetched for 3 devices, want 3: an evicted device's sessions were lost", n)
	}
	// In use: not evicted, over the bound for as long.
	var held []*peerEntry
	for _, d := range devs[1:] {
		held = append(held, alice.svc.cache.acquire(d.h.ID()))
	}
	if n := alice.svc.cache.len(); n != 3 {
		t.Fatalf("%d devices cached with 3 in use, want 3", n)
	}
	for _, e := range held {
		alice.svc.cache.release(e)
	}
	e := alice.svc.cache.acquire(peer.ID("another"))
	alice.svc.cache.release(e)
	if n := alice.svc.cache.len(); n > 2 {
		t.Fatalf("%d devices cached once released, bound 2", n)
	}
}
