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

// TestCourierSkipsUnsealable: a pending record whose envelope cannot be
// encoded (a text over message.MaxText, written by another device of
// the cell or an older version) is skipped as unreadable, not tried
// (every try would fail before anything is sent) at the head of its
// contact's queue, where it held every later message back for good.
func TestCourierSkipsUnsealable(t *testing.T) { bubble(t, testCourierSkipsUnsealable) }

func testCourierSkipsUnsealable(t *testing.T) {
	alice, bob := courierPair(t)
	own := alice.cell.Public().(ed25519.PublicKey)
	now := time.Now()
	for i, text := range []string{strings.Repeat("x", message.MaxText+1), "after it"} {
		env := &message.Envelope{
			ID: message.ID{byte(i + 1)}, Cell: own, To: bob.list.Cell, Device: alice.h.ID(),
			Sent: now.UnixMilli(), Seq: uint64(1000 + i), Text: text,
		}
		m := newMessage(env, bob.list.Cell, Out, Sent)
		if err := alice.svc.put(t.Context(), m, now); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"after it"}) {
		t.Fatalf("bob holds %q, want the message after the unsealable one", got)
	}
}
