package service

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"testing/synctest"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// noPutDHT is a fakeDHT whose puts all fail.
type noPutDHT struct{ *fakeDHT }

func (noPutDHT) PutSigned(context.Context, string, []byte) error {
	return errors.New("fake: put timed out")
}

// TestMailboxRefusedFrameRemembered: a frame the receive path refuses in
// a slot that cannot be written back (every put fails) is handed to the
// receive path once, not at every poll: the next polls skip it.
func TestMailboxRefusedFrameRemembered(t *testing.T) { bubble(t, testMailboxRefusedFrameRemembered) }

func testMailboxRefusedFrameRemembered(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	f, err := message.Frame{Kind: message.KindSession, Body: bytes.Repeat([]byte{7}, 200)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	putEntries(t, m, slotOf(t, bob, alice, 0), []mailbox.Entry{mailbox.Frame(message.ID{7}, bob.h.ID(), alice.h.ID(), f)}, 1)
	alice.mdht = noPutDHT{m}
	// A poll every minute (the steady poll's interval doubles at each
	// poll that finds nothing new, and this one never does).
	alice.tune = func(c *Config) { c.MailboxPoll, c.MailboxPollMax = time.Minute, time.Minute }
	alice.start(t)
	time.Sleep(10 * time.Minute)
	synctest.Wait()
	st := alice.svc.Mailbox()
	_ = alice.svc.Close()
	if st.Refused["frame"] != 1 || st.Skipped < 5 || st.Dropped != 0 {
		t.Fatalf("a refused frame in a slot never written back: %+v, want refused once, then skipped", st)
	}
}

// TestRefusedFramesBound: the memory of refused frames holds at most
// MaxRefusedFrames, forgetting the oldest first.
func TestRefusedFramesBound(t *testing.T) {
	var s Service
	key := func(i int) refusedFrame { return refusedFrame{record: "r", seq: uint64(i)} }
	for i := range MaxRefusedFrames + 10 {
		s.rememberRefused(key(i))
		s.rememberRefused(key(i))
	}
	if len(s.mstate.refused) != MaxRefusedFrames || len(s.mstate.order) != MaxRefusedFrames {
		t.Fatalf("%d refused frames remembered (%d in order), the most is %d", len(s.mstate.refused), len(s.mstate.order), MaxRefusedFrames)
	}
	if s.refusedBefore(key(9)) || !s.refusedBefore(key(10)) || !s.refusedBefore(key(MaxRefusedFrames+9)) {
		t.Fatal("not the oldest forgotten first")
	}
}

// TestMailboxQuotaRefusedFrameLeft: a frame the quotas refuse (over
// bob's daily budget) stays in its slot, to be tried at a later poll:
// it is not dropped as a frame refused for another reason is.
func TestMailboxQuotaRefusedFrameLeft(t *testing.T) { bubble(t, testMailboxQuotaRefusedFrameLeft) }

func testMailboxQuotaRefusedFrameLeft(t *testing.T) {
	alice, bob, m := mailboxPair(t)
	_ = alice.svc.Close()
	_ = bob.svc.Close()
	f, err := message.Frame{Kind: message.KindSession, Body: bytes.Repeat([]byte{7}, 4000)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	slot := slotOf(t, bob, alice, 0)
	putEntries(t, m, slot, []mailbox.Entry{mailbox.Frame(message.ID{7}, bob.h.ID(), alice.h.ID(), f)}, 1)
	alice.tune = func(c *Config) { c.MaxInBytesPerContactPerDay = 1000 }
	alice.start(t)
	time.Sleep(3 * time.Minute)
	synctest.Wait()
	st, q := alice.svc.Mailbox(), alice.svc.Quota()
	_ = alice.svc.Close()
	if q.RefusedContactDay == 0 {
		t.Fatalf("the quotas did not refuse the frame: %+v", q)
	}
	if n := len(slotEntries(t, m, slot)); n != 1 || st.Dropped != 0 || st.Skipped != 0 {
		t.Fatalf("a frame the quotas refused: %d entries left, %+v; want it left, to be tried again", n, st)
	}
}
