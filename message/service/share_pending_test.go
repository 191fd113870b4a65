package service

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestSendFilePendingQuota: SendFile is held to the pending quota as
// Send is: past MaxPendingPerContact messages to Bob not delivered it
// refuses with ErrTooManyPending, recording nothing and sharing
// nothing.
func TestSendFilePendingQuota(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	alice.befriend("Bob", bob)
	alice.tune = func(c *Config) { c.MaxPendingPerContact = 1 }
	_ = alice.svc.Close()
	alice.start(t)
	af := &fakeFiles{}
	alice.svc.files = af
	ctx := t.Context()
	if _, err := alice.svc.SendFile(ctx, "Bob", testFile, ""); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("first file: %v, want ErrUnreachable (bob refuses: alice is no contact of his)", err)
	}
	if _, err := alice.svc.SendFile(ctx, "Bob", testFile, "again"); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("second file: %v, want ErrTooManyPending", err)
	}
	if n := len(alice.store.messages()); n != 1 {
		t.Fatalf("alice's cell holds %d messages, want the 1 pending", n)
	}
	if shared, _ := af.calls(); len(shared) != 1 {
		t.Fatalf("alice shared %d times, want once (the refused message shares nothing)", len(shared))
	}
}

// TestMailboxFile: a pending message that shares a file, left in a
// blind mailbox (the writer seals it again from the record), reaches
// Bob with its attachment: his cell records the file and his files are
// asked to record it.
func TestMailboxFile(t *testing.T) { bubble(t, testMailboxFile) }

func testMailboxFile(t *testing.T) {
	alice, bob, _ := mailboxPair(t)
	af, bf := &fakeFiles{}, &fakeFiles{}
	alice.svc.files = af
	_ = bob.svc.Close()
	if m, err := alice.svc.SendFile(t.Context(), "Bob", testFile, ""); !errors.Is(err, ErrUnreachable) || m.State != Sent {
		t.Fatalf("SendFile, bob off: %+v, %v", m, err)
	}
	time.Sleep(time.Minute)
	synctest.Wait()
	if got := held(t, alice, Stored); len(got) != 1 {
		t.Fatalf("alice holds %q as stored, want the file's message", got)
	}
	_ = alice.svc.Close()
	disconnect(t, alice, bob)
	bob.files = bf
	bob.start(t)
	time.Sleep(time.Minute)
	synctest.Wait()
	ms := bob.store.messages()
	if len(ms) != 1 || ms[0].File == nil || *ms[0].File != testFile {
		t.Fatalf("bob records %+v, want the message with its file", ms)
	}
	if _, got := bf.calls(); len(got) != 1 {
		t.Fatalf("bob's files received %q, want the file once", got)
	}
	_ = bob.svc.Close()
}
