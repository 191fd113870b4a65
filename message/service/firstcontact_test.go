package service

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
)

// TestConcurrentFirstSends: 16 messages sent at once to a device with
// no session yet make one session, not one each, and all arrive; the
// messages after them go through with no new handshake. The first
// handshake is held in Fetch until every send is blocked (synctest), so
// that all 16 find no session. Concurrent handshakes each took a bundle
// with the same one-time prekey, which the receiver accepts once, and
// pushed a session of their own, so that both sides kept MaxSessions of
// them, not the same: messages were refused on both tries and reported
// unreachable.
func TestConcurrentFirstSends(t *testing.T) {
	bubble(t, func(t *testing.T) {
		devs := newDevices(t, "alice", "bob")
		alice, bob := devs[0], devs[1]
		alice.befriend("Bob", bob)
		bob.befriend("Alice", alice)
		ctx := t.Context()
		gate := make(chan struct{})
		alice.prek.mu.Lock()
		alice.prek.gate = gate
		alice.prek.mu.Unlock()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("at once %d", i)); err != nil {
					errs <- err
				}
			})
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := alice.prek.fetches(); n != 1 {
			t.Errorf("%d bundles fetched for 16 first messages to one device, want 1", n)
		}
		for i := range 4 {
			if _, err := alice.svc.Send(ctx, "Bob", fmt.Sprintf("then %d", i)); err != nil {
				t.Fatalf("message %d after the first ones: %v", i, err)
			}
		}
		if n := alice.prek.fetches(); n != 1 {
			t.Errorf("%d bundles fetched in all, want 1", n)
		}
		if n := len(bob.store.messages()); n != 20 {
			t.Errorf("bob holds %d messages, want 20", n)
		}
	})
}
