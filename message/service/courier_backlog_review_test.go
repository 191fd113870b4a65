package service

import (
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/message"
)

// TestCourierUnreadableBacklog: more than CourierPerContact pending
// records the courier cannot read at the head of a contact's
// conversation do not hide the contact's later messages: the courier
// records each "undeliverable" (no longer pending).
func TestCourierUnreadableBacklog(t *testing.T) {
	bubble(t, testCourierUnreadableBacklog)
}

func testCourierUnreadableBacklog(t *testing.T) {
	alice, bob := courierPair(t)
	alice.store.mu.Lock()
	alice.store.limits = true
	alice.store.mu.Unlock()
	own := alice.cell.Public().(ed25519.PublicKey)
	now := time.Now()
	for i := range CourierPerContact + 1 {
		text := strings.Repeat("x", message.MaxText+1)
		if i == CourierPerContact {
			text = "after them"
		}
		env := &message.Envelope{
			ID: message.ID{byte(i + 1)}, Cell: own, To: bob.list.Cell, Device: alice.h.ID(),
			Sent: now.UnixMilli(), Seq: uint64(1000 + i), Text: text,
		}
		if err := alice.svc.put(t.Context(), newMessage(env, bob.list.Cell, Out, Sent), now); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"after them"}) {
		t.Fatalf("bob holds %q, want the message after the unreadable ones", got)
	}
	states := map[string]int{}
	for _, m := range alice.store.messages() {
		states[m.State]++
	}
	if states[Undeliverable] != CourierPerContact || states[Delivered] != 1 || len(states) != 2 {
		t.Fatalf("alice holds %v, want %d undeliverable and 1 delivered", states, CourierPerContact)
	}
	if n := alice.svc.Courier().Undeliverable; n != CourierPerContact {
		t.Fatalf("Courier().Undeliverable = %d, want %d", n, CourierPerContact)
	}
}
