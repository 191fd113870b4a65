package simnet

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/cell"
	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesNewDevices: Alice (a0) and Bob (b0), one device each,
// talk. A device added to Alice's cell afterwards (a1) holds the whole
// conversation, from the chain. A device added to Bob's cell (b1) can be
// written to as soon as Bob's signed device list names it and Alice's
// cell holds that list: with b0 crashed, a0's message is delivered, to
// b1, on the first try; and b1 holds the whole conversation too.
func TestMessagesNewDevices(t *testing.T) {
	const seed = 141
	dirs := make([]string, 4)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a := newPerson(t, ctx, n, "Alice", "a0", NodeConfig{Dir: dirs[0]})
		b := newPerson(t, ctx, n, "Bob", "b0", NodeConfig{Bootstrap: []*Node{a.devices[0]}, Dir: dirs[1]})
		befriend(t, ctx, a, b)
		a0, b0 := a.devices[0], b.devices[0]
		var want []string
		send := func(from *Node, to, text string) {
			t.Helper()
			m, err := from.Peer().Messages().Send(ctx, to, text)
			if err != nil || m.State != messages.Delivered {
				fail("node %d sends %q to %s: %+v, %v", from.Index, text, to, m, err)
			}
			want = append(want, text)
			time.Sleep(time.Second) // the next message's time is later
		}
		send(a0, "Bob", "one")
		send(b0, "Alice", "two")

		// holds waits until nd holds want with name, in order.
		holds := func(nd *Node, name string) {
			t.Helper()
			var got []string
			if _, ok := waitUntil(2*time.Minute, 200*time.Millisecond, func() bool {
				pg, err := nd.Peer().Messages().Conversation(ctx, name, "", 0)
				got = got[:0]
				for _, m := range pg.Messages {
					got = append(got, m.Text)
				}
				return err == nil && slices.Equal(got, want)
			}); !ok {
				fail("node %d holds %q with %s, want %q", nd.Index, got, name, want)
			}
		}

		// A device added to Alice's cell sees the whole history.
		a1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a0}, Dir: dirs[2]})
		join(t, ctx, a0, a1, cell.RoleChain|cell.RoleStore)
		holds(a1, "Bob")

		// A device added to Bob's cell: b0, the admin, signs a list
		// naming it, and its next message carries the list to Alice.
		b1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{b0}, Dir: dirs[3]})
		join(t, ctx, b0, b1, cell.RoleChain|cell.RoleStore)
		if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
			l, err := b0.Peer().Contacts().DeviceList(ctx)
			return err == nil && l.Has(b1.ID)
		}); !ok {
			fail("b0 signed no device list naming b1")
		}
		send(b0, "Alice", "three")
		if c, err := a0.Peer().Contacts().Get(ctx, "Bob"); err != nil || !c.Devices.Has(b1.ID) {
			fail("a0 does not hold Bob's list naming b1 after b0's message: %v", err)
		}
		holds(b1, "Alice")
		if err := n.Crash(b0); err != nil {
			fail("Crash: %v", err)
		}
		send(a0, "Bob", "four") // only b1 of Bob's cell is up
		holds(b1, "Alice")
		holds(a1, "Bob")
	})
}
