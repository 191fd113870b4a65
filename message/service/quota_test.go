package service

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/exopeer/exopeer/message"
)

// TestQuotaJudge: the pure rule. A contact's burst goes at once; past
// it a message waits for its cost to refill (slowed), and is refused
// when that wait would pass maxSlow; a daily budget, the contact's or the
// node's, refuses what would pass it; a new day starts from zero.
func TestQuotaJudge(t *testing.T) {
	l := quotaLimits{rate: 2, burst: 3, bytesRate: 1000, bytesBurst: 4000, maxSlow: time.Second, perContactDay: 10_000, perNodeDay: 12_000}
	t0 := time.Unix(1_790_000_000, 0)
	const day = 20_000
	e, node := &quotaEntry{}, &daily{}
	step := func(name string, n int64, at time.Time, wantDelay time.Duration, wantReason string) {
		t.Helper()
		v := l.judge(e, node, n, at, day)
		if v.delay != wantDelay || v.reason != wantReason {
			t.Fatalf("%s: %+v, want delay %v, reason %q", name, v, wantDelay, wantReason)
		}
		if v.reason == "" {
			l.take(e, node, n, at, day)
		}
	}
	step("1st of the burst", 100, t0, 0, "")
	step("2nd of the burst", 100, t0, 0, "")
	step("3rd of the burst", 100, t0, 0, "")
	step("over the burst: half a second at 2/s", 100, t0, 500*time.Millisecond, "")
	step("further over: 1 s", 100, t0, time.Second, "")
	step("past maxSlow: refused", 100, t0, 0, reasonRate)
	step("refused, not charged: still refused", 100, t0, 0, reasonRate)
	step("a second later, 2 tokens back: 0.5 s", 100, t0.Add(time.Second), 500*time.Millisecond, "")
	step("bytes within the bucket", 3000, t0.Add(10*time.Second), 0, "")
	step("bytes over their rate: 2,500 of debt at 1,000/s", 3500, t0.Add(10*time.Second), 0, reasonRate)
	step("bytes within maxSlow: 900 of debt", 1900, t0.Add(10*time.Second), 900*time.Millisecond, "")
	if got := e.day.used; got != 100*6+3000+1900 {
		t.Fatalf("contact's day: %d bytes, want %d", got, 100*6+3000+1900)
	}
	step("the contact's day", 4000, t0.Add(20*time.Second), 0, "")
	step("past the contact's day", 600, t0.Add(30*time.Second), 0, reasonContactDay)
	e2 := &quotaEntry{}
	if v := l.judge(e2, node, 3000, t0, day); v.reason != reasonNodeDay {
		t.Fatalf("another contact past the node's day: %+v, want %s", v, reasonNodeDay)
	}
	if v := l.judge(e, node, 600, t0.Add(40*time.Second), day+1); v.reason != "" {
		t.Fatalf("the next day: %+v, want admitted", v)
	}
}

// TestUnixDay: days are UTC, also before 1970.
func TestUnixDay(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0}, {time.Unix(86399, 0), 0}, {time.Unix(86400, 0), 1}, {time.Unix(-1, 0), -1}, {time.Unix(-86400, 0), -1}, {time.Unix(-86401, 0), -2},
	} {
		if got := unixDay(c.t); got != c.want {
			t.Errorf("unixDay(%v) = %d, want %d", c.t.UTC(), got, c.want)
		}
	}
}

// quotaService is a Service with only what admit uses.
func quotaService(d ds.Datastore, tune func(*Config)) *Service {
	c := Config{Now: func() time.Time { return time.Unix(1_790_000_000, 0) }}
	if tune != nil {
		tune(&c)
	}
	c = c.withDefaults()
	return &Service{ds: d, cfg: c, log: slog.New(slog.DiscardHandler), quota: newQuotas(c)}
}

// TestQuotaEntriesBounded: the contacts' quota state held in memory is
// at most MaxQuotaEntries; a contact dropped from it resumes its day's
// count from its record (never lower), so that dropping frees memory
// without forgetting bytes.
func TestQuotaEntriesBounded(t *testing.T) {
	store := dssync.MutexWrap(ds.NewMapDatastore())
	s := quotaService(store, func(c *Config) { c.MaxInBytesPerContactPerDay = 1 << 20 })
	ctx := t.Context()
	if ok, _, r := s.admit(ctx, "first", 1000); !ok {
		t.Fatalf("first contact refused: %s", r)
	}
	for i := range MaxQuotaEntries + 10 {
		if ok, _, r := s.admit(ctx, fmt.Sprint("c", i), 10); !ok {
			t.Fatalf("contact %d refused: %s", i, r)
		}
	}
	if n := len(s.quota.entries); n > MaxQuotaEntries {
		t.Fatalf("%d entries held, want at most %d", n, MaxQuotaEntries)
	}
	if _, ok := s.quota.entries["first"]; ok {
		t.Fatal("the contact looked at least recently is still held")
	}
	if ok, _, _ := s.admit(ctx, "first", 1); !ok {
		t.Fatal("first contact refused after it was dropped")
	}
	if got := s.quota.entries["first"].day.used; got < 1001 {
		t.Fatalf("the dropped contact's day resumed at %d bytes, want at least 1,001", got)
	}
}

// TestQuotaStoreError: a quota record that cannot be written refuses
// the message (counted, reason "store") and charges nothing.
func TestQuotaStoreError(t *testing.T) {
	f := &faultyDS{Datastore: dssync.MutexWrap(ds.NewMapDatastore())}
	s := quotaService(f, nil)
	f.fail(quotaNodeKey)
	if ok, _, r := s.admit(t.Context(), "c", 100); ok || r != reasonStore {
		t.Fatalf("admitted with the node's record failing: %v %q", ok, r)
	}
	if got := s.Quota().RefusedStore; got != 1 {
		t.Fatalf("RefusedStore = %d, want 1", got)
	}
	if e := s.quota.entries["c"]; e.day.used != 0 || s.quota.node.used != 0 {
		t.Fatalf("refused but charged: contact %d, node %d", e.day.used, s.quota.node.used)
	}
}

// TestFloodSlowedThenRefused: Bob sends 12 messages to Alice at once,
// more than her rate for one contact lets through: the burst goes, the
// next are slowed (answered late, within MaxSlow), the rest refused and
// left pending in Bob's cell, recorded nowhere at Alice's; each is
// counted. Carol, another contact, still delivers meanwhile.
func TestFloodSlowedThenRefused(t *testing.T) { bubble(t, testFloodSlowedThenRefused) }

func testFloodSlowedThenRefused(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	bob.befriend("Alice", alice)
	carol.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.InRate, c.InBurst, c.MaxSlow = 1, 2, 2*time.Second }
	onClock(t, alice, bob, carol)
	ctx := t.Context()
	const flood = 12
	var wg sync.WaitGroup
	errs := make([]error, flood)
	for i := range flood {
		wg.Go(func() { _, errs[i] = bob.svc.Send(ctx, "Alice", fmt.Sprint("flood ", i)) })
	}
	synctest.Wait() // bob's slowed messages wait, the rest are refused
	if _, err := carol.svc.Send(ctx, "Alice", "from carol"); err != nil {
		t.Fatalf("carol sends during bob's flood: %v", err)
	}
	wg.Wait()
	delivered := 0
	for i, err := range errs {
		switch {
		case err == nil:
			delivered++
		case !errors.Is(err, ErrUnreachable):
			t.Fatalf("flood %d: %v, want delivered or ErrUnreachable", i, err)
		}
	}
	st := alice.svc.Quota()
	if delivered < 3 || delivered == flood || st.Slowed < 1 || st.RefusedRate < 1 {
		t.Fatalf("%d of %d delivered, quota %+v: want the burst and some slowed delivered, the rest refused", delivered, flood, st)
	}
	t.Logf("%d of %d delivered; quota %+v", delivered, flood, st)
	bobCell := hexKey(bob.cell.Public().(ed25519.PublicKey))
	in, pending := 0, 0
	for _, m := range alice.store.messages() {
		if m.Conversation == bobCell {
			in++
		}
	}
	for _, m := range bob.store.messages() {
		if m.State == Sent {
			pending++
		}
	}
	// Bob's courier may deliver some refused ones meanwhile (a Send
	// acknowledged wakes it), under the same quota: each message is
	// recorded by Alice or pending in Bob's cell, not both.
	if pending == 0 || in+pending != flood || in < delivered {
		t.Fatalf("alice recorded %d of bob's, bob holds %d pending, %d Sends acknowledged; want %d in all, some pending", in, pending, delivered, flood)
	}
}

// TestSendPendingQuota: Send refuses with ErrTooManyPending, recording
// nothing, once Alice's cell holds MaxPendingPerContact messages to Bob
// not delivered (Bob refuses them: Alice is no contact of his); her
// messages to Carol still go; the refusal is counted.
func TestSendPendingQuota(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice, bob, carol := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	alice.befriend("Carol", carol)
	carol.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.MaxPendingPerContact = 3 }
	_ = alice.svc.Close()
	alice.start(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprint("pending ", i)); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("pending %d: %v, want ErrUnreachable", i, err)
		}
	}
	if _, err := alice.svc.Send(ctx, "Bob", "one too many"); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("4th pending message: %v, want ErrTooManyPending", err)
	}
	if n := len(alice.store.messages()); n != 3 {
		t.Fatalf("alice's cell holds %d messages, want the 3 pending", n)
	}
	if m, err := alice.svc.Send(ctx, "Carol", "to carol"); err != nil || m.State != Delivered {
		t.Fatalf("alice sends to carol: %+v, %v", m, err)
	}
	if got := alice.svc.Quota().PendingRefused; got != 1 {
		t.Fatalf("PendingRefused = %d, want 1", got)
	}
}

// TestReceiptFloodAdmitted: read receipts are admitted like messages (a
// contact's device could otherwise send them without bound): Bob's
// device sends 12 receipts to Alice at once, more than her rate for
// one contact lets through; the burst goes, the next are slowed, the
// rest refused, each counted.
func TestReceiptFloodAdmitted(t *testing.T) { bubble(t, testReceiptFloodAdmitted) }

func testReceiptFloodAdmitted(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	alice.tune = func(c *Config) { c.InRate, c.InBurst, c.MaxSlow = 1, 2, 2*time.Second }
	onClock(t, alice, bob)
	sent, author, seq, err := message.ParseOrderKey("7" + strings.Repeat("f", 15) + "." + alice.h.ID().String() + "." + strings.Repeat("0", 16))
	if err != nil {
		t.Fatal(err)
	}
	const flood = 12
	var wg sync.WaitGroup
	errs := make([]error, flood)
	for i := range flood {
		r := &message.Receipt{
			ID: message.ID{byte(i + 1)}, Cell: bob.list.Cell, To: alice.list.Cell, Device: bob.h.ID(),
			Sent: sent, Author: author, Seq: seq,
		}
		wg.Go(func() {
			errs[i] = bob.svc.deliverOut(t.Context(), alice.h.ID(), outgoing{id: r.ID, rec: r}, nil, func() error { return nil })
		})
	}
	wg.Wait()
	acked := 0
	for _, err := range errs {
		if err == nil {
			acked++
		}
	}
	st := alice.svc.Quota()
	if acked < 2 || acked == flood || st.Slowed < 1 || st.RefusedRate < 1 {
		t.Fatalf("%d of %d receipts acknowledged, quota %+v: want the burst and some slowed taken, the rest refused", acked, flood, st)
	}
	t.Logf("%d of %d receipts acknowledged; quota %+v", acked, flood, st)
}

// TestTinyRateRefuses: a rate so small that a message's wait passes
// what a time.Duration holds refuses the message for the rate (the wait
// overflowing to a negative one would admit it with no delay), and a
// Config rate that is NaN or infinite is the default.
func TestTinyRateRefuses(t *testing.T) {
	l := quotaLimits{rate: 1e-12, burst: 1, bytesRate: 1, bytesBurst: 1 << 20, maxSlow: time.Second, perContactDay: 1 << 30, perNodeDay: 1 << 30}
	e, node := &quotaEntry{}, &daily{}
	now := time.Unix(1_790_000_000, 0)
	if v := l.judge(e, node, 1, now, 1); v.reason != "" || v.delay != 0 {
		t.Fatalf("the first message, in the burst: %+v", v)
	}
	l.take(e, node, 1, now, 1)
	if v := l.judge(e, node, 1, now, 1); v.reason != reasonRate {
		t.Fatalf("a second message at a rate of 1e-12 a second: %+v, want refused for the rate", v)
	}
	if d := wait(0, 1<<20, 1e-300); d <= 0 {
		t.Fatalf("wait at a rate of 1e-300: %v", d)
	}
	for _, r := range []float64{math.NaN(), math.Inf(1)} {
		if c := (Config{InRate: r}).withDefaults(); c.InRate != 5000 {
			t.Fatalf("InRate %v: %v, want the default", r, c.InRate)
		}
	}
}
