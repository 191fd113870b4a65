package service

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/message"
)

// TestCourierRetriesAfterReadError: a pending message the courier could
// not read again before delivering it (a store error) is tried again
// after the backoff, not left until the next wake-up (the pass took the
// contact as done: nothing due for 10 min).
func TestCourierRetriesAfterReadError(t *testing.T) { bubble(t, testCourierRetriesAfterReadError) }

func testCourierRetriesAfterReadError(t *testing.T) {
	alice, bob := courierPair(t)
	alice.store.mu.Lock()
	alice.store.failGet = errors.New("store: read failed")
	alice.store.mu.Unlock()
	now := time.Now()
	env := &message.Envelope{
		ID: message.ID{7}, Cell: alice.cell.Public().(ed25519.PublicKey), To: bob.list.Cell, Device: alice.h.ID(),
		Sent: now.UnixMilli(), Seq: 1000, Text: "pending",
	}
	if err := alice.svc.put(t.Context(), newMessage(env, bob.list.Cell, Out, Sent), now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	synctest.Wait()
	alice.store.mu.Lock()
	alice.store.failGet = nil
	alice.store.mu.Unlock()
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"pending"}) {
		t.Fatalf("bob holds %q a minute after alice's store reads again", got)
	}
}
