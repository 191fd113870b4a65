package simnet

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestReindexKeepsSessions: a store member's reindex (Reset empties the
// index, then the chain is applied again) changes no contact, so the
// sessions with the contacts' devices stay. The sweeper of sessions of
// removed devices (message/service/removal.go) takes the store's watch
// event of the emptied index as a contact change, and the contacts it
// then reads from the index, not caught up, name no device: it drops
// every session of every contact, which each contact then pays for with
// a handshake (and its messages in flight on them are refused). It
// fails about every third reindex; ten are made.
func TestReindexKeepsSessions(t *testing.T) {
	const seed = 161
	dirs := []string{t.TempDir(), t.TempDir()}
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
		for _, p := range []struct {
			nd       *Node
			to, text string
		}{{a0, "Bob", "one"}, {b0, "Alice", "two"}} {
			if m, err := p.nd.Peer().Messages().Send(ctx, p.to, p.text); err != nil || m.State != messages.Delivered {
				fail("node %d sends %q: %+v, %v", p.nd.Index, p.text, m, err)
			}
		}
		// The sweeper watches the contacts once the cell is there: at its
		// first tick after the cell was made.
		time.Sleep(messages.SweepEvery + time.Second)
		if k, err := a0.Peer().Messages().SessionsWith(ctx, b0.ID); err != nil || k == 0 {
			fail("a0 holds %d sessions with b0 (%v) before the reindex, want some", k, err)
		}
		// The sweep must read the contacts while the chain is applied
		// again: a race, lost about every third time; ten reindexes.
		for i := range 10 {
			if _, err := a0.Peer().Store().Reindex(ctx); err != nil {
				fail("Reindex: %v", err)
			}
			time.Sleep(10 * time.Second)
			if k, err := a0.Peer().Messages().SessionsWith(ctx, b0.ID); err != nil || k == 0 {
				fail("a0 holds %d sessions with b0 (%v) after reindex %d of its store, want those it held: no contact changed", k, err, i+1)
			}
		}
	})
}
