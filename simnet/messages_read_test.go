package simnet

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesRead: Alice and Bob, one device each. Alice's two
// messages are delivered; her device goes off; Bob reads the
// conversation: his side is read at once, and once Alice's device is
// back, Bob's courier delivers the receipt and her side is read too.
// With both online, an inbox Alice watches sees her next message go
// from delivered to read when Bob reads it, without a restart. With
// receipts off for Alice, Bob's read marks his side only: Alice's
// message stays delivered, however long.
func TestMessagesRead(t *testing.T) {
	const seed = 1403
	dirs := []string{t.TempDir(), t.TempDir()}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a := newPerson(t, ctx, n, "Alice", "alice", NodeConfig{Dir: dirs[0]})
		b := newPerson(t, ctx, n, "Bob", "bob", NodeConfig{Bootstrap: []*Node{a.devices[0]}, Dir: dirs[1]})
		befriend(t, ctx, a, b)
		alice, bob := a.devices[0], b.devices[0]
		want := []string{"one", "two"}
		for _, text := range want {
			if m, err := alice.Peer().Messages().Send(ctx, "Bob", text); err != nil || m.State != messages.Delivered {
				fail("Alice sends %q: %+v, %v", text, m, err)
			}
			time.Sleep(time.Second)
		}
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, time.Minute)

		// Alice is off when Bob reads.
		if err := n.Crash(alice); err != nil {
			fail("Crash: %v", err)
		}
		r, err := bob.Peer().Messages().Read(ctx, "Alice", "")
		if err != nil || r.Marked != 2 || !r.Receipt {
			fail("Bob reads: %+v, %v; want 2 marked and a receipt", r, err)
		}
		holds(t, seed, ctx, bob, "Alice", want, messages.Read, time.Minute)
		time.Sleep(20 * time.Minute)
		if err := n.Restart(ctx, alice); err != nil {
			fail("Restart: %v", err)
		}
		// The receipts' backoff is at most 10 min.
		holds(t, seed, ctx, alice, "Bob", want, messages.Read, 15*time.Minute)
		if st := bob.Peer().Messages().Courier(); st.Receipts < 1 {
			fail("Bob's courier: %+v, want a receipt delivered", st)
		}

		// Live: Alice watches her inbox with Bob; her next message goes
		// delivered, then read, on the watch.
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		inbox, err := alice.Peer().Messages().Inbox(wctx, "Bob")
		if err != nil {
			fail("Inbox: %v", err)
		}
		three, err := alice.Peer().Messages().Send(ctx, "Bob", "three")
		if err != nil {
			fail("Alice sends three: %v", err)
		}
		want = append(want, "three")
		holds(t, seed, ctx, bob, "Alice", want, "", time.Minute)
		if _, err := bob.Peer().Messages().Read(ctx, "Alice", ""); err != nil {
			fail("Bob reads: %v", err)
		}
		seen := false
		deadline := time.After(5 * time.Minute)
		for !seen {
			select {
			case m, ok := <-inbox:
				if !ok {
					fail("the inbox ended")
				}
				seen = m.ID == three.ID && m.State == messages.Read
			case <-deadline:
				fail("the inbox Alice watches never showed %q read", "three")
			}
		}
		cancel()
		for range inbox {
		}

		// Receipts off for Alice: Bob's read is his own.
		if _, err := bob.Peer().Contacts().SetReceipts(ctx, "Alice", false); err != nil {
			fail("SetReceipts: %v", err)
		}
		if _, err := alice.Peer().Messages().Send(ctx, "Bob", "four"); err != nil {
			fail("Alice sends four: %v", err)
		}
		want = append(want, "four")
		holds(t, seed, ctx, bob, "Alice", want, "", time.Minute)
		r, err = bob.Peer().Messages().Read(ctx, "Alice", "")
		if err != nil || r.Marked != 1 || r.Receipt {
			fail("Bob reads with receipts off: %+v, %v; want 1 marked, no receipt", r, err)
		}
		time.Sleep(time.Hour)
		got, err := conversation(ctx, alice, "Bob")
		if err != nil || len(got) != 4 || got[3].Text != "four" || got[3].State != messages.Delivered {
			fail("Alice holds %+v (%v), want four delivered (receipts off)", got, err)
		}
		got, err = conversation(ctx, bob, "Alice")
		if err != nil || len(got) != 4 || got[3].State != messages.Read {
			fail("Bob holds %+v (%v), want four read", got, err)
		}
	})
}
