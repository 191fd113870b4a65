package simnet

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesMailbox: two people with one phone each, never online at
// the same time, and a DHT node that is always on. Alice's phone sends
// while Bob's is off: the message is left in a blind mailbox ("stored"),
// and her phone goes off. Bob's phone comes back, reads the mailbox and
// records the message, once, and goes off. Alice's phone comes back and
// finds Bob's ack: the message is "delivered".
func TestMessagesMailbox(t *testing.T) {
	const seed = 1414
	dirs := []string{t.TempDir(), t.TempDir()}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		hub := addNode(t, ctx, n, NodeConfig{})
		a := newPerson(t, ctx, n, "Alice", "Alice-phone", NodeConfig{Bootstrap: []*Node{hub}, Dir: dirs[0]})
		b := newPerson(t, ctx, n, "Bob", "Bob-phone", NodeConfig{Bootstrap: []*Node{hub}, Dir: dirs[1]})
		alice, bob := a.devices[0], b.devices[0]
		time.Sleep(10 * time.Second) // the routing tables fill as identify runs
		befriend(t, ctx, a, b)
		// Bob's prekey bundle is on the DHT before his phone goes off.
		if _, ok := waitUntil(2*time.Minute, time.Second, func() bool { return dhtBundle(alice, bob) != nil }); !ok {
			fail("Bob's bundle is not on the DHT")
		}
		if err := n.Crash(bob); err != nil {
			fail("Crash: %v", err)
		}
		want := []string{"while you sleep"}
		m, err := alice.Peer().Messages().Send(ctx, "Bob", want[0])
		if !errors.Is(err, messages.ErrUnreachable) || m.State != messages.Sent {
			fail("Alice sends to Bob, off: %+v, %v", m, err)
		}
		holds(t, seed, ctx, alice, "Bob", want, messages.Stored, 5*time.Minute)
		if err := n.Crash(alice); err != nil {
			fail("Crash: %v", err)
		}
		if err := n.Restart(ctx, bob); err != nil {
			fail("Restart: %v", err)
		}
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, 10*time.Minute)
		if st := bob.Peer().Messages().Mailbox(); st.Received != 1 {
			fail("Bob's mailboxes: %+v, want 1 received", st)
		}
		time.Sleep(time.Minute) // the ack written
		if err := n.Crash(bob); err != nil {
			fail("Crash: %v", err)
		}
		if err := n.Restart(ctx, alice); err != nil {
			fail("Restart: %v", err)
		}
		holds(t, seed, ctx, alice, "Bob", want, messages.Delivered, 10*time.Minute)
		if st := alice.Peer().Messages().Mailbox(); st.Acked != 1 {
			fail("Alice's mailboxes: %+v, want 1 acked", st)
		}
	})
}
