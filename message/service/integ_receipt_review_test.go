package service

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestReceiptOfStoredMessage: bob gets alice's message through the
// blind mailbox, reads it and sends a read receipt, which reaches alice
// while her record is still "stored" (bob's ack is in the mailbox, not
// read yet; her direct tries are answered busy). receiveReceipt marks
// "delivered" messages only, so it marks nothing; when alice later
// reads the ack, the message becomes "delivered" and stays there: bob
// never sends that receipt again (it was acknowledged), and the "read"
// is lost until bob reads a later message.
func TestReceiptOfStoredMessage(t *testing.T) { bubble(t, testReceiptOfStoredMessage) }

func testReceiptOfStoredMessage(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = bob.svc.Close()
	sendPending(t, alice, "Bob", "one")
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Stored); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q as stored", got)
	}
	_ = alice.svc.Close()
	disconnect(t, alice, bob)

	bob.start(t) // reads the slot, acks in the mailbox
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, bob, Delivered); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("bob holds %q", got)
	}
	if mk, err := bob.svc.Read(t.Context(), "Alice", ""); err != nil || mk.Marked != 1 || !mk.Receipt {
		t.Fatalf("bob reads: %+v, %v", mk, err)
	}
	_ = bob.svc.Close()
	// Bob's quotas now answer alice busy (her direct tries fail), and
	// alice reads no mailbox at first: her record stays "stored" while
	// bob's receipt comes.
	bob.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 1 }
	bob.start(t)
	alice.mdht = nil
	alice.start(t)
	time.Sleep(20 * time.Minute)
	synctest.Wait()
	if got := held(t, alice, Stored); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("alice holds %q, want still stored (bob busy, no mailbox read)", got)
	}
	if st := bob.svc.Courier(); st.Receipts != 1 {
		t.Fatalf("bob's courier: %+v, want his receipt delivered to alice", st)
	}
	_ = alice.svc.Close()
	alice.mdht = m
	alice.start(t) // reads bob's ack
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Read); !slices.Equal(got, []string{"one"}) {
		t.Errorf("alice holds %q as read: bob read it and his receipt came, want read", got)
	}
	_ = alice.svc.Close()
	_ = bob.svc.Close()
}
