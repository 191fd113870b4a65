package service

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/ratchet"
)

// skippedSession returns a receiving session holding n skipped message
// keys, as a device of a contact makes one by sending message n+1 of a
// chain first.
func skippedSession(t testing.TB, n int) *ratchet.Session {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	var sec ratchet.Secret
	a, err := ratchet.NewInitiator(&ratchet.Exopeer, bytes.NewReader(bytes.Repeat([]byte{8}, 64)), sec, []byte("ad"), priv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ratchet.NewResponder(&ratchet.Exopeer, sec, []byte("ad"), priv)
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
	return b
}

// TestSessionCacheBytes: the sessions kept in memory are bounded in
// bytes, not only in devices. The bound is MaxCachedDevices devices of
// MaxSessions sessions each, and a contact's device makes a session hold
// up to ratchet.MaxSkippedKeys skipped keys (it sends message 1,000 of a
// chain first, twice), 4 sessions with each of the 64 devices a contact's
// list may name: the cache can hold some hundreds of MB (before the
// cache, a message read its device's sessions from disk and let them go).
func TestSessionCacheBytes(t *testing.T) {
	t.Skip("defect: the session cache is bounded in devices, not bytes: full of sessions a contact's devices filled with skipped keys, it holds hundreds of MB (a design question: a byte budget, or not keeping the skipped keys in memory)")
	const budget = 64 << 20
	sess := skippedSession(t, 999)
	enc, err := sess.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := newSessionCache()
	total := 0
	for i := range 2 * MaxCachedDevices {
		e := c.acquire(peer.ID(fmt.Sprintf("device %d", i)))
		e.loaded = true
		for range MaxSessions {
			e.rec.sessions = append(e.rec.sessions, stored{sess: sess})
		}
		c.release(e)
	}
	c.mu.Lock()
	for _, e := range c.m {
		total += len(e.rec.sessions) * len(enc)
	}
	c.mu.Unlock()
	if total > budget {
		t.Fatalf("the cache holds %d sessions' worth of %d bytes each (999 skipped keys): %d MB, over %d MB", c.len()*MaxSessions, len(enc), total>>20, budget>>20)
	}
}
