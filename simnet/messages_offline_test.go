package simnet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/cell"
	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesOffline: Alice has a phone and an always-on device with
// the mailbox role, Bob one device. With Bob's device down, the phone
// sends three messages (each reported pending) and goes off; Bob's
// device comes back and the mailbox device delivers them: each once, in
// the order written, on every device of both cells (the phone's too once
// it is back), delivered on Alice's side. Then the reverse: with the
// phone off, Bob's messages are received by the mailbox device, and the
// phone has them when it is back.
func TestMessagesOffline(t *testing.T) {
	const seed = 1402
	dirs := make([]string, 3)
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
		a := newPerson(t, ctx, n, "Alice", "phone", NodeConfig{Dir: dirs[0]})
		phone := a.devices[0]
		box := addDevice(t, ctx, n, a, cell.RoleChain|cell.RoleStore|cell.RoleMailbox, NodeConfig{Bootstrap: []*Node{phone}, Dir: dirs[1]})
		b := newPerson(t, ctx, n, "Bob", "bob", NodeConfig{Bootstrap: []*Node{phone}, Dir: dirs[2]})
		bob := b.devices[0]
		waitAlive(t, a.devices, time.Minute)
		befriend(t, ctx, a, b)

		// Bob is off; the phone writes three messages, then is off too.
		if err := n.Crash(bob); err != nil {
			fail("Crash: %v", err)
		}
		var want []string
		for i := range 3 {
			text := fmt.Sprintf("while Bob is off %d", i)
			m, err := phone.Peer().Messages().Send(ctx, "Bob", text)
			if !errors.Is(err, messages.ErrUnreachable) || m.State != messages.Sent {
				fail("the phone sends %q to Bob, off: %+v, %v", text, m, err)
			}
			want = append(want, text)
			time.Sleep(time.Second)
		}
		// The mailbox device holds them (the chain) before the phone goes.
		holds(t, seed, ctx, box, "Bob", want, messages.Sent, 2*time.Minute)
		if err := n.Crash(phone); err != nil {
			fail("Crash: %v", err)
		}
		if err := n.Restart(ctx, bob); err != nil {
			fail("Restart: %v", err)
		}
		// The courier's backoff is at most 10 min.
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, 15*time.Minute)
		holds(t, seed, ctx, box, "Bob", want, messages.Delivered, time.Minute)
		if st := box.Peer().Messages().Courier(); st.Delivered != 3 {
			fail("the mailbox device's courier: %+v, want 3 delivered", st)
		}
		if err := n.Restart(ctx, phone); err != nil {
			fail("Restart: %v", err)
		}
		holds(t, seed, ctx, phone, "Bob", want, messages.Delivered, 2*time.Minute)

		// The reverse: the phone off, Bob's messages reach the mailbox.
		if err := n.Crash(phone); err != nil {
			fail("Crash: %v", err)
		}
		for i := range 2 {
			text := fmt.Sprintf("while the phone is off %d", i)
			m, err := bob.Peer().Messages().Send(ctx, "Alice", text)
			if err != nil || m.State != messages.Delivered {
				fail("Bob sends %q with the phone off: %+v, %v", text, m, err)
			}
			want = append(want, text)
			time.Sleep(time.Second)
		}
		holds(t, seed, ctx, box, "Bob", want, messages.Delivered, time.Minute)
		if err := n.Restart(ctx, phone); err != nil {
			fail("Restart: %v", err)
		}
		for _, nd := range []*Node{phone, box} {
			holds(t, seed, ctx, nd, "Bob", want, messages.Delivered, 2*time.Minute)
		}
		holds(t, seed, ctx, bob, "Alice", want, messages.Delivered, time.Minute)
		if st := bob.Peer().Messages().Courier(); st.Duplicates != 0 {
			t.Logf("seed %d: Bob's device received %d duplicates", seed, st.Duplicates)
		}
	})
}

// holds waits until nd's conversation with name is want, in that
// order, each message once and in the state state (any, if empty); it fails the test
// if not within limit.
func holds(t *testing.T, seed uint64, ctx context.Context, nd *Node, name string, want []string, state string, limit time.Duration) {
	t.Helper()
	var got []messages.Message
	var err error
	if _, ok := waitUntil(limit, time.Second, func() bool {
		got, err = conversation(ctx, nd, name)
		if err != nil || len(got) != len(want) {
			return false
		}
		for i, m := range got {
			if m.Text != want[i] || state != "" && m.State != state {
				return false
			}
		}
		return true
	}); !ok {
		texts := []string{}
		for _, m := range got {
			texts = append(texts, m.Text+" ("+m.State+")")
		}
		t.Fatalf("seed %d: node %d holds %q with %s (%v), want %q %s", seed, nd.Index, texts, name, err, want, state)
	}
	ids := map[string]bool{}
	for _, m := range got {
		if ids[m.ID] {
			t.Fatalf("seed %d: node %d holds %s twice", seed, nd.Index, m.ID)
		}
		ids[m.ID] = true
	}
}
