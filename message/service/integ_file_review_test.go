package service

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestMailboxFileRetried: a file message reaches bob through the blind
// mailbox while his files cannot record the file (disk full). The
// receive path records the message, then fails on the file: the frame
// is refused (dropped from the slot, no ack), so that alice sends it
// again (share.go, received: "a failure has the message sent again").
// Alice does, through the mailbox; by then bob's files work. The second
// frame must get the file recorded. Today frameIn sees the message
// recorded already and acks it without handing it to the receive path,
// so Files.Received is never called again: bob holds the message with a
// file his files never listed.
func TestMailboxFileRetried(t *testing.T) { bubble(t, testMailboxFileRetried) }

func testMailboxFileRetried(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	af, bf := &fakeFiles{}, &fakeFiles{fail: errors.New("disk full")}
	alice.files, bob.files = af, bf
	alice.svc.files = af
	_ = bob.svc.Close()
	if _, err := alice.svc.SendFile(t.Context(), "Bob", testFile, ""); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("SendFile to bob, off: %v, want ErrUnreachable", err)
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	if f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, 0))); f != 1 {
		t.Fatalf("the slot alice → bob holds %d frames, want 1", f)
	}
	_ = alice.svc.Close()
	disconnect(t, alice, bob)

	bob.start(t) // his files fail: the frame is refused
	time.Sleep(time.Minute)
	synctest.Wait()
	if _, got := bf.calls(); len(got) != 0 {
		t.Fatalf("bob's files recorded %q while failing", got)
	}
	_ = bob.svc.Close()
	bf.mu.Lock()
	bf.fail = nil
	bf.mu.Unlock()

	alice.start(t) // her writer leaves the message again
	time.Sleep(time.Minute)
	synctest.Wait()
	if f, _ := kinds(slotEntries(t, m, slotOf(t, alice, bob, 0))); f != 1 {
		t.Fatalf("the slot alice → bob holds %d frames after alice's second write, want 1", f)
	}
	_ = alice.svc.Close()

	bob.start(t)
	time.Sleep(time.Minute)
	synctest.Wait()
	if _, got := bf.calls(); len(got) != 1 {
		t.Errorf("bob's files recorded %q after the message came again, want the file once", got)
	}
	_ = bob.svc.Close()
}
