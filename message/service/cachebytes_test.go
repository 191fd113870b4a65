package service

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/ratchet"
)

// skippedPair returns a sending session and its peer's receiving
// session, the latter holding n skipped message keys, as a device of a
// contact makes one by sending message n+1 of a chain first.
func skippedPair(t testing.TB, n int) (a, b *ratchet.Session) {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var sec ratchet.Secret
	a, err = ratchet.NewInitiator(&ratchet.Exopeer, bytes.NewReader(bytes.Repeat([]byte{8}, 64)), sec, []byte("ad"), priv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ratchet.NewResponder(&ratchet.Exopeer, sec, []byte("ad"), priv)
	if err != nil {
		t.Fatal(err)
	}
	var ct []byte
	for range n + 1 {
		if ct, err = a.Encrypt(bytes.NewReader(bytes.Repeat([]byte{9}, 64)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Decrypt(ct); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// skippedSession returns a receiving session holding n skipped message
// keys.
func skippedSession(t testing.TB, n int) *ratchet.Session {
	t.Helper()
	_, b := skippedPair(t, n)
	return b
}

// fill gives the acquired entry e the record r, as a load or a step
// does, counted by c.
func fill(c *sessionCache, e *peerEntry, r peerRecord) {
	e.mu.Lock()
	e.loaded, e.rec = true, r
	c.step(e)
	e.mu.Unlock()
}

// fullRecord is a record of MaxSessions sessions holding n skipped keys
// each.
func fullRecord(t testing.TB, n int) peerRecord {
	t.Helper()
	sess := skippedSession(t, n)
	var r peerRecord
	for range MaxSessions {
		r.sessions = append(r.sessions, stored{sess: sess})
	}
	return r
}

// checkHeld checks that the bytes c counts are its records' stored
// lengths (none for an entry not loaded), and returns them. No entry may
// be in a step.
func checkHeld(t testing.TB, c *sessionCache) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for id, e := range c.m {
		b, err := e.rec.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !e.loaded {
			b = nil
		}
		if e.size != len(b) {
			t.Fatalf("%s counted at %d bytes, its record is %d", id, e.size, len(b))
		}
		sum += len(b)
	}
	if c.bytes != sum {
		t.Fatalf("the cache counts %d bytes, its records are %d", c.bytes, sum)
	}
	return sum
}

// TestSessionCacheBytes: the sessions kept in memory are bounded in
// bytes, not only in devices. The bound is MaxCachedDevices devices of
// MaxSessions sessions each, and a contact's device makes a session hold
// up to ratchet.MaxSkippedKeys skipped keys (it sends message 1,000 of a
// chain first, twice), 4 sessions with each of the 64 devices a contact's
// list may name: without a bound in bytes the cache can hold some
// hundreds of MB (before the cache, a message read its device's sessions
// from disk and let them go).
func TestSessionCacheBytes(t *testing.T) {
	const budget = 64 << 20
	if MaxCachedBytes > budget {
		t.Fatalf("MaxCachedBytes is %d MB, over %d MB", MaxCachedBytes>>20, budget>>20)
	}
	sess := skippedSession(t, 999)
	enc, err := sess.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := newSessionCache()
	var r peerRecord
	for range MaxSessions {
		r.sessions = append(r.sessions, stored{sess: sess})
	}
	for i := range 2 * MaxCachedDevices {
		e := c.acquire(peer.ID(fmt.Sprintf("device %d", i)))
		fill(c, e, r)
		c.release(e)
	}
	total := 0
	c.mu.Lock()
	for _, e := range c.m {
		total += len(e.rec.sessions) * len(enc)
	}
	c.mu.Unlock()
	if total > budget {
		t.Fatalf("the cache holds %d sessions' worth of %d bytes each (999 skipped keys): %d MB, over %d MB", c.len()*MaxSessions, len(enc), total>>20, budget>>20)
	}
	if held := checkHeld(t, c); held > MaxCachedBytes {
		t.Fatalf("the cache counts %d bytes, over its bound %d", held, MaxCachedBytes)
	}
	if n := c.len(); n < MaxCachedBytes/(MaxSessions*len(enc))-1 {
		t.Fatalf("%d devices held, evicted more than the bound asks", n)
	}
}

// TestSessionCacheBytesInUse: entries in use are never evicted, even
// over the byte bound (it is over by the calls under way); once
// released, the least recently used go until it is within the bound.
func TestSessionCacheBytesInUse(t *testing.T) {
	r := fullRecord(t, 999)
	size := r.size()
	c := newSessionCache()
	c.maxBytes = size * 5 / 2 // two records and a half
	var held []*peerEntry
	for i := range 4 {
		e := c.acquire(peer.ID(fmt.Sprint("device ", i)))
		fill(c, e, r)
		held = append(held, e)
	}
	if n, b := c.len(), checkHeld(t, c); n != 4 || b != 4*size {
		t.Fatalf("%d devices of %d bytes held with 4 in use, want 4 of %d", n, b, 4*size)
	}
	c.release(held[0]) // 4 records over a bound of 2.5: device 0 goes
	c.mu.Lock()
	_, kept := c.m[held[0].id]
	c.mu.Unlock()
	if kept || c.len() != 3 {
		t.Fatal("a released device kept over the byte bound")
	}
	for _, e := range held[1:] {
		c.release(e)
	}
	if n, b := c.len(), checkHeld(t, c); n != 2 || b > c.maxBytes {
		t.Fatalf("%d devices of %d bytes held once released, bound %d bytes", n, b, c.maxBytes)
	}
	for _, e := range held[2:] { // the most recently used stay
		c.mu.Lock()
		_, kept := c.m[e.id]
		c.mu.Unlock()
		if !kept {
			t.Fatalf("%s evicted before older devices", e.id)
		}
	}
}

// TestSessionCacheSizeFollowsSteps: an entry's size follows its record
// through the steps: it grows by the skipped keys a message makes, and
// by a new session's pending header, shrinks as skipped keys are used,
// and is taken off when it is evicted.
func TestSessionCacheSizeFollowsSteps(t *testing.T) {
	a, b := skippedPair(t, 0)
	c := newSessionCache()
	e := c.acquire("device")
	fill(c, e, peerRecord{sessions: []stored{{sess: b}}})
	base := checkHeld(t, c)
	var cts [][]byte
	for range 10 {
		ct, err := a.Encrypt(bytes.NewReader(bytes.Repeat([]byte{9}, 64)), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	open := func(ct []byte) int {
		t.Helper()
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, err := e.rec.sessions[0].sess.Decrypt(ct); err != nil {
			t.Fatal(err)
		}
		c.step(e)
		return checkHeld(t, c)
	}
	prev := open(cts[9])
	if prev <= base {
		t.Fatalf("9 keys skipped, still counted at %d bytes (%d before)", prev, base)
	}
	for _, ct := range cts[:9] {
		n := open(ct)
		if n >= prev {
			t.Fatalf("a skipped key used, counted at %d bytes (%d before)", n, prev)
		}
		prev = n
	}
	if prev != base {
		t.Fatalf("every skipped key used, counted at %d bytes, %d before", prev, base)
	}
	_, b2 := skippedPair(t, 3)
	e.mu.Lock()
	e.rec.push(stored{sess: b2, header: make([]byte, 300)})
	c.step(e)
	e.mu.Unlock()
	if n := checkHeld(t, c); n <= prev {
		t.Fatalf("a session pushed, counted at %d bytes (%d before)", n, prev)
	}
	c.max = 1
	c.release(e)
	c.release(c.acquire("another")) // evicts device
	if n := checkHeld(t, c); n != 0 || c.len() != 1 {
		t.Fatalf("%d devices of %d bytes held, want 1 of none", c.len(), n)
	}
}

// TestSessionCacheBytesOfService: the service counts each cached
// device at its record's stored length through sends, evictions and
// loads from disk (the sender's cache: a receiver's call may still be
// under way when Send returns).
func TestSessionCacheBytesOfService(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "carol")
	alice := devs[0]
	for _, d := range devs[1:] {
		alice.befriend(d.name, d)
		d.befriend("Alice", alice)
	}
	ctx := t.Context()
	alice.svc.cache.max = 1
	for round := range 2 {
		for _, d := range devs[1:] {
			if _, err := alice.svc.Send(ctx, d.name, fmt.Sprint("round ", round)); err != nil {
				t.Fatal(err)
			}
			if checkHeld(t, alice.svc.cache) == 0 {
				t.Fatal("a device's sessions held counted at no bytes")
			}
		}
	}
}
