package simnet

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesMailboxNewEpoch: two people never online at the same time
// (phones), a DHT node always on. Alice's cell has two devices, Bob's
// one. A first message goes through the blind mailbox, so Alice's cell
// learns which of its mailbox keys Bob's holds. Alice then removes her
// second device while Bob's phone is off: a new key epoch, a new mailbox
// key, on a newer device list that Bob's cell does not have. Her phone
// sends again while Bob's is off: it seals under the key Bob holds, so
// Bob's phone, back, still finds the message; the frame carries her
// newer list, and Bob's ack goes under her new key. Her phone, back,
// finds it there, and her next message is sealed under the new key: Bob,
// who reads with that key only now, gets it too.
func TestMessagesMailboxNewEpoch(t *testing.T) {
	const seed = 1417
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		hub := addNode(t, ctx, n, NodeConfig{})
		a0 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{hub}, Dir: dirs[0]})
		a1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{hub}, Dir: dirs[1]})
		bob := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{hub}, Dir: dirs[2]})
		time.Sleep(10 * time.Second) // the routing tables fill as identify runs
		if _, err := a0.Peer().Cell().Create(ctx, "Alice", "Alice-phone"); err != nil {
			fail("Alice creates a cell: %v", err)
		}
		if err := joinCell(ctx, a0, a1, "Alice-laptop"); err != nil {
			fail("%v", err)
		}
		if _, err := bob.Peer().Cell().Create(ctx, "Bob", "Bob-phone"); err != nil {
			fail("Bob creates a cell: %v", err)
		}
		cards := map[*Node]string{}
		for _, p := range []struct {
			nd   *Node
			devs []*Node
		}{{a0, []*Node{a0, a1}}, {bob, []*Node{bob}}} {
			if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
				c, err := p.nd.Peer().Contacts().Card(ctx, "")
				if err != nil || c.Devices.Mailbox == nil {
					return false
				}
				for _, d := range p.devs {
					if !c.Devices.Has(d.ID) {
						return false
					}
				}
				cards[p.nd] = c.Text()
				return true
			}); !ok {
				fail("node %d has no card with its devices and a mailbox key", p.nd.Index)
			}
		}
		if _, err := a0.Peer().Contacts().Add(ctx, cards[bob], "Bob"); err != nil {
			fail("Alice adds Bob: %v", err)
		}
		if _, err := bob.Peer().Contacts().Add(ctx, cards[a0], "Alice"); err != nil {
			fail("Bob adds Alice: %v", err)
		}
		if _, ok := waitUntil(2*time.Minute, time.Second, func() bool { return dhtBundle(a0, bob) != nil }); !ok {
			fail("Bob's bundle is not on the DHT")
		}
		keys := func() ([]byte, uint64) {
			l, err := a0.Peer().Contacts().DeviceList(ctx)
			if err != nil {
				fail("DeviceList: %v", err)
			}
			return l.Mailbox, l.Version
		}
		k1, _ := keys()

		// Alice's laptop is off from here on; her phone and Bob's take
		// turns.
		for _, nd := range []*Node{a1, bob} {
			if err := n.Crash(nd); err != nil {
				fail("Crash: %v", err)
			}
		}
		send := func(text string) {
			t.Helper()
			m, err := a0.Peer().Messages().Send(ctx, "Bob", text)
			if !errors.Is(err, messages.ErrUnreachable) || m.State != messages.Sent {
				fail("Alice sends %q to Bob, off: %+v, %v", text, m, err)
			}
		}
		turn := func(on, off *Node) {
			t.Helper()
			if err := n.Crash(off); err != nil {
				fail("Crash: %v", err)
			}
			if err := n.Restart(ctx, on); err != nil {
				fail("Restart: %v", err)
			}
		}
		// stored waits until Alice's phone left text in a blind mailbox.
		stored := func(text string) {
			t.Helper()
			if _, ok := waitUntil(5*time.Minute, time.Second, func() bool {
				ms, err := conversation(ctx, a0, "Bob")
				return err == nil && len(ms) > 0 && ms[len(ms)-1].Text == text && ms[len(ms)-1].State == messages.Stored
			}); !ok {
				fail("Alice's phone did not leave %q in a blind mailbox", text)
			}
		}
		want := []string{"first"}
		send(want[0])
		holds(t, seed, ctx, a0, "Bob", want, messages.Stored, 5*time.Minute)
		turn(bob, a0)
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, 10*time.Minute)
		time.Sleep(time.Minute) // the ack written
		turn(a0, bob)
		holds(t, seed, ctx, a0, "Bob", want, messages.Delivered, 10*time.Minute)

		// Alice removes her laptop: a new epoch, a new mailbox key.
		if _, err := a0.Peer().Cell().Remove(ctx, a1.ID, true); err != nil {
			fail("Remove: %v", err)
		}
		var k2 []byte
		if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
			l, err := a0.Peer().Contacts().DeviceList(ctx)
			if err != nil || l.Has(a1.ID) || l.Mailbox == nil || bytes.Equal(l.Mailbox, k1) {
				return false
			}
			k2 = l.Mailbox
			return true
		}); !ok {
			fail("Alice's phone signed no list without the laptop and with a new mailbox key")
		}
		want = append(want, "after the laptop went")
		send(want[1])
		stored(want[1])
		turn(bob, a0)
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, 10*time.Minute)
		if c, err := bob.Peer().Contacts().Get(ctx, "Alice"); err != nil || !bytes.Equal(c.Devices.Mailbox, k2) || c.Devices.Has(a1.ID) {
			fail("Bob holds Alice's list %+v (%v), want her newer one", c.Devices, err)
		}
		time.Sleep(time.Minute) // the ack written
		turn(a0, bob)
		holds(t, seed, ctx, a0, "Bob", want, messages.Delivered, 10*time.Minute)

		// Bob reads Alice's blind mailboxes with her new key only now.
		want = append(want, "under the new key")
		send(want[2])
		stored(want[2])
		turn(bob, a0)
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, 10*time.Minute)
		if st := bob.Peer().Messages().Mailbox(); st.Received != 1 {
			fail("Bob's mailboxes since his restart: %+v, want 1 received", st)
		}
	})
}
