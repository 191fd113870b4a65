package service

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// TestQuotaRefusalKeepsSession: a message Alice's quotas refuse (Bob is
// past his bytes of the day) was refused before it was opened, so Bob's
// session with Alice is still good; yet a refusal frame carries no
// detail, and Bob's delivery takes every refusal for a session Alice
// cannot open: it drops the session and makes a new one from Alice's
// prekeys, which she refuses too (and drops again). Each refused Send,
// and each courier retry, fetches Alice's bundle (a DHT lookup or a
// stream to her) and runs a PQXDH handshake for nothing; a node's quota
// makes its contacts churn their sessions with it.
func TestQuotaRefusalKeepsSession(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 8 << 10 }
	_ = alice.svc.Close()
	alice.start(t)
	if _, err := bob.svc.Send(t.Context(), "Alice", "the first"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	if got := bob.prek.fetches(); got != 1 {
		t.Fatalf("bob fetched %d bundles for his first message, want 1", got)
	}
	n := floodUntilRefused(t, bob, "Alice")
	for i := range 3 {
		if _, err := bob.svc.Send(t.Context(), "Alice", fmt.Sprint("refused ", i)); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("bob sends past his day: %v, want refused", err)
		}
	}
	if st := alice.svc.Quota(); st.RefusedContactDay < 4 {
		t.Fatalf("alice's quota %+v: want bob's refusals for his day", st)
	}
	if got := bob.prek.fetches(); got != 1 {
		t.Fatalf("after %d messages delivered and 4 refused by alice's quota, bob fetched %d bundles of alice's, want still 1 (a quota refusal is no broken session)", n+1, got)
	}
}

// TestQuotaRefusalSpendsNoPrekeys: Bob floods Alice over her rate; the
// messages refused leave Bob's session with her as good as it was, but
// Bob drops it at each refusal and starts a new one on her prekeys; the
// next of those initial messages her rate admits takes one of her
// one-time prekeys. Her quota refusals thus spend her one-time prekeys
// (and stack sessions with Bob's device on her side), the opposite of
// what a rate limit is for.
func TestQuotaRefusalSpendsNoPrekeys(t *testing.T) { bubble(t, testQuotaRefusalSpendsNoPrekeys) }

func testQuotaRefusalSpendsNoPrekeys(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.InRate, c.InBurst, c.MaxSlow = 1, 2, 2*time.Second }
	onClock(t, alice, bob)
	ctx := t.Context()
	otp := func() (n int) {
		_ = alice.prek.View(func(k *ratchet.Prekeys) error { n = k.OneTimeCount(); return nil })
		return n
	}
	if _, err := bob.svc.Send(ctx, "Alice", "the first"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	before := otp()
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() { _, _ = bob.svc.Send(ctx, "Alice", fmt.Sprint("flood ", round, " ", i)) })
		}
		wg.Wait()
		time.Sleep(10 * time.Second) // alice's rate refills
		if _, err := bob.svc.Send(ctx, "Alice", fmt.Sprint("after the flood ", round)); err != nil {
			t.Fatalf("bob sends after flood %d: %v", round, err)
		}
	}
	if st := alice.svc.Quota(); st.RefusedRate == 0 {
		t.Fatalf("alice's quota %+v: want some of bob's refused for the rate", st)
	}
	if after := otp(); after != before {
		t.Fatalf("alice's one-time prekeys: %d before bob's floods, %d after (bob's session with her was good throughout)", before, after)
	}
}

// TestSlowedHoldsNoNodeSlots: a contact's message the quotas slow waits
// out its delay while holding one of the node's Config.MaxFramesIn
// frame slots, read and idle; a contact flooding from enough devices
// (a cell may list 64, each with MaxFramesInPerDevice = 128 frames in
// at once, and the default rate × MaxSlow is 25,000 frames) so holds
// every slot for MaxSlow at a time, and every other contact's frames
// wait unread behind it. Here Alice's node reads 4 frames at once;
// Bob, over his rate, is slowed by up to 8 s; Carol, far under hers,
// waits seconds for her message to be read.
func TestSlowedHoldsNoNodeSlots(t *testing.T) { bubble(t, testSlowedHoldsNoNodeSlots) }

func testSlowedHoldsNoNodeSlots(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	alice.maxIn = 4
	alice.tune = func(c *Config) { c.InRate, c.InBurst, c.MaxSlow = 1, 1, 8*time.Second }
	onClock(t, alice, bob, carol)
	ctx := t.Context()
	if _, err := carol.svc.Send(ctx, "Alice", "carol's first"); err != nil {
		t.Fatalf("carol sends: %v", err)
	}
	time.Sleep(10 * time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range 8 {
		wg.Go(func() { _, _ = bob.svc.Send(ctx, "Alice", fmt.Sprint("flood ", i)) })
	}
	synctest.Wait() // bob's frames read, some slowed
	start := time.Now()
	if _, err := carol.svc.Send(ctx, "Alice", "during bob's flood"); err != nil {
		t.Fatalf("carol sends during bob's flood: %v", err)
	}
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("carol's message, within her quota, took %v to be acknowledged: it waited for a frame slot held by bob's slowed messages (quota %+v)", d, alice.svc.Quota())
	}
}

// TestDayCountSurvivesClockStepBack: the node's clock steps back across
// midnight (an NTP correction, a wrong RTC at boot) for a moment: a
// contact's bytes counted for the day are forgotten, its count and
// record restarted on the earlier day, so once the clock is right again
// the contact, past its day's budget, is admitted with the whole budget
// again (and so is every contact against the node's budget).
func TestDayCountSurvivesClockStepBack(t *testing.T) {
	devs := newDevices(t, "alice")
	alice := devs[0]
	var clock atomic.Int64
	midnight := int64(20_718 * 86400)
	clock.Store(midnight + 3600) // 1:00 UTC
	alice.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	alice.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 10_000 }
	_ = alice.svc.Close()
	alice.start(t)
	ctx := t.Context()
	const bob = "b0b"
	if ok, _, reason := alice.svc.admit(ctx, bob, 10_000); !ok {
		t.Fatalf("bob's day's budget: refused (%s)", reason)
	}
	if ok, _, _ := alice.svc.admit(ctx, bob, 100); ok {
		t.Fatal("bob past his day: admitted")
	}
	clock.Store(midnight - 60) // a minute before midnight: the day before
	alice.svc.admit(ctx, bob, 100)
	clock.Store(midnight + 3700)
	if ok, _, _ := alice.svc.admit(ctx, bob, 5000); ok {
		t.Fatalf("bob, who took his day's budget of 10,000 bytes, has 5,000 more admitted the same day once the clock stepped back and forth (quota %+v)", alice.svc.Quota())
	}
}

// TestBucketTimeNeverBack: admit reads the clock before it takes the
// quotas' lock, so two messages of one contact may be charged out of
// their clock's order (one waited for the lock while the other's lease
// was written). The later charge, at the earlier time, moves the
// bucket's time back, and the next message is refilled twice for the
// time between: the contact gets (t2−t1)×rate messages free.
func TestBucketTimeNeverBack(t *testing.T) {
	l := quotaLimits{rate: 100, burst: 10, bytesRate: 1 << 20, bytesBurst: 1 << 20, maxSlow: time.Second, perContactDay: 1 << 30, perNodeDay: 1 << 30}
	e, node := &quotaEntry{}, &daily{}
	t0 := time.Unix(1_790_000_000, 0)
	for range 10 {
		l.take(e, node, 1, t0, 1)
	}
	t2 := t0.Add(500 * time.Millisecond) // 50 tokens of refill, at most 10 kept
	l.take(e, node, 1, t2, 1)            // the bucket: 9 at t2
	l.take(e, node, 1, t0, 1)            // charged late, clock read at t0: 8
	if got := e.msgs.level(t2, l.rate, l.burst); got > 8 {
		t.Fatalf("the bucket holds %v at t2 after two messages charged from a full one, want 8 (its time went back from t2 to t0)", got)
	}
}

// TestTwoListsChargeUnopened: when two contacts' lists name a device
// (a cell may list any device; here Bob's device is also on "Bob2"'s
// list), its frames are charged only once the envelope says whose they
// are; a frame that never opens is charged to no one. Such a device
// sends frames that do not open as fast as the node reads them, each
// tried against every session (an initial one, a handshake answered on
// the prekeys), and the rate never slows or refuses one of them.
func TestTwoListsChargeUnopened(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	seed := make([]byte, 32)
	seed[0] = 0xb2
	k2 := ed25519.NewKeyFromSeed(seed)
	l2 := contact.NewDeviceList(k2.Public().(ed25519.PublicKey), 1, []peer.ID{bob.h.ID()})
	if err := l2.Sign(k2); err != nil {
		t.Fatal(err)
	}
	alice.cons.add("Bob2", l2)
	alice.tune = func(c *Config) { c.InRate, c.InBurst, c.MaxSlow = 1, 2, time.Millisecond }
	_ = alice.svc.Close()
	alice.start(t)
	st := rawStream(t, bob, alice)
	const n = 30
	junk := bytes.Repeat([]byte{0x5a}, 200)
	go func() {
		for range n {
			b, _ := message.Frame{Kind: message.KindSession, Body: junk}.Encode()
			if _, err := st.Write(b); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(st)
	for i := range n {
		f, err := readFrame(r)
		if err != nil || (f.Kind != message.KindRefusal && f.Kind != message.KindBusy) {
			t.Fatalf("answer %d: %+v, %v; want a refusal (does not open) or busy (the rate)", i, f, err)
		}
	}
	if q := alice.svc.Quota(); q.RefusedRate == 0 {
		t.Fatalf("%d frames that do not open from one device at once, over a rate of 1/s (burst 2): none refused for the rate, quota %+v", n, q)
	}
}
