package service

import (
	"errors"
	"fmt"
	"testing"
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
