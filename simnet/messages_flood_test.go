package simnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessagesFlood: Alice takes at most 1 message a second from each
// contact (a burst of 4, answers slowed by up to 2 s). Bob sends 24
// messages at once (after a hello): the burst goes, the next are slowed, the rest are
// refused and left pending in Bob's cell. Carol's messages meanwhile are
// all delivered at once. Bob's courier then delivers his pending ones as
// Alice's quota lets it: in the end Alice holds each of Bob's messages
// once, delivered, and Bob's cell holds them all delivered.
func TestMessagesFlood(t *testing.T) {
	const seed = 1406
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
		alice := addNode(t, ctx, n, NodeConfig{Dir: dirs[0], Messages: messages.Config{InRate: 1, InBurst: 4, MaxSlow: 2 * time.Second}})
		bob := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{alice}, Dir: dirs[1]})
		carol := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{alice}, Dir: dirs[2]})
		cards := map[*Node]string{}
		for _, p := range []struct {
			nd   *Node
			name string
		}{{alice, "Alice"}, {bob, "Bob"}, {carol, "Carol"}} {
			if _, err := p.nd.Peer().Cell().Create(ctx, p.name, p.name); err != nil {
				fail("Create: %v", err)
			}
			c, err := p.nd.Peer().Contacts().Card(ctx, "")
			if err != nil {
				fail("card: %v", err)
			}
			cards[p.nd] = c.Text()
		}
		for _, p := range []struct {
			nd, other *Node
			name      string
		}{{alice, bob, "Bob"}, {alice, carol, "Carol"}, {bob, alice, "Alice"}, {carol, alice, "Alice"}} {
			if _, err := p.nd.Peer().Contacts().Add(ctx, cards[p.other], p.name); err != nil {
				fail("node %d adds %s: %v", p.nd.Index, p.name, err)
			}
		}

		for _, from := range []*Node{bob, carol} {
			if m, err := from.Peer().Messages().Send(ctx, "Alice", "hello"); err != nil || m.State != messages.Delivered {
				fail("node %d says hello: %+v, %v", from.Index, m, err)
			}
		}
		const flood = 24
		var wg sync.WaitGroup
		var mu sync.Mutex
		acked := 0
		for i := range flood {
			wg.Go(func() {
				_, err := bob.Peer().Messages().Send(ctx, "Alice", fmt.Sprintf("flood %02d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					acked++
				case !errors.Is(err, messages.ErrUnreachable):
					fail("Bob sends %d: %v", i, err)
				}
			})
		}
		synctest.Wait() // Bob's slowed messages wait for their answers
		carols := []string{"hello"}
		for i := range 3 {
			text := fmt.Sprintf("from carol %d", i)
			if m, err := carol.Peer().Messages().Send(ctx, "Alice", text); err != nil || m.State != messages.Delivered {
				fail("Carol sends %q during Bob's flood: %+v, %v", text, m, err)
			}
			carols = append(carols, text)
		}
		wg.Wait()
		st := alice.Peer().Messages().Quota()
		t.Logf("seed %d: %d of Bob's %d acknowledged at once; Alice's quota %+v", seed, acked, flood, st)
		if acked >= flood || st.Slowed == 0 || st.RefusedRate == 0 {
			fail("%d of %d acknowledged at once, quota %+v: want some slowed, some refused", acked, flood, st)
		}
		holds(t, seed, ctx, alice, "Carol", carols, messages.Delivered, time.Minute)

		// Bob's courier delivers the rest, its backoff at most 10 min.
		var got []messages.Message
		if _, ok := waitUntil(time.Hour, time.Second, func() bool {
			ms, err := conversation(ctx, bob, "Alice")
			if err != nil {
				return false
			}
			for _, m := range ms {
				if m.State != messages.Delivered {
					return false
				}
			}
			got, err = conversation(ctx, alice, "Bob")
			return err == nil && len(ms) == flood+1 && len(got) == flood+1 // and the hello
		}); !ok {
			fail("Alice holds %d of Bob's %d messages, or Bob's are not all delivered", len(got), flood+1)
		}
		seen := map[string]bool{}
		for _, m := range got {
			if seen[m.Text] || m.State != messages.Delivered {
				fail("Alice holds %q twice, or as %s", m.Text, m.State)
			}
			seen[m.Text] = true
		}
	})
}
